package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/magnetar/magnetar/bench"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/loadgen"
	"github.com/magnetar/magnetar/results"
)

// loadgenFlags are the flags of `magnetar loadgen`.
type loadgenFlags struct {
	fs *flag.FlagSet // the parsed set, to tell which flags were given

	url, adminURL, workload, out, durability, keys, subType string
	topics, partitions, size, producers, consumers, subs    int
	rate                                                    float64
	duration, warmup, interval, spinWait                    time.Duration
	maxMessages                                             int64
}

func (f *loadgenFlags) register(fs *flag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.url, "url", "pulsar://localhost:6650", "Pulsar service `URL` to load (default pulsar://localhost:6650)")
	fs.StringVar(&f.adminURL, "admin-url", "", "create the partitioned topics through the admin API at this `URL` (http://host:8080); without it the broker must create them")
	fs.StringVar(&f.workload, "workload", "", "OpenMessaging Benchmark workload `FILE` (YAML); the flags below that are given override its keys")
	fs.IntVar(&f.topics, "topics", 1, "number of topics (OMB topics; default 1)")
	fs.IntVar(&f.partitions, "partitions", 16, "partitions per topic, 0 for non-partitioned topics (OMB partitionsPerTopic; default 16)")
	fs.IntVar(&f.size, "size", 1024, "message size in bytes (OMB messageSize; default 1024)")
	fs.Float64Var(&f.rate, "rate", 10000, "total publish rate in msg/s, 0 for the highest sustainable rate (OMB producerRate; default 10000)")
	fs.IntVar(&f.producers, "producers", 1, "producers per topic (OMB producersPerTopic; default 1)")
	fs.IntVar(&f.consumers, "consumers", 1, "consumers per subscription (OMB consumerPerSubscription; default 1)")
	fs.IntVar(&f.subs, "subscriptions", 1, "subscriptions per topic (OMB subscriptionsPerTopic; default 1)")
	fs.DurationVar(&f.duration, "duration", time.Minute, "measured length (OMB testDurationMinutes; default 1m)")
	fs.DurationVar(&f.warmup, "warmup", 15*time.Second, "warm-up whose figures are discarded, 0 for none (OMB warmupDurationMinutes; default 15s)")
	fs.StringVar(&f.keys, "keys", string(loadgen.NoKey), "key distribution: NO_KEY (default), KEY_ROUND_ROBIN or RANDOM_NANO (OMB keyDistributor)")
	fs.StringVar(&f.subType, "subscription-type", "Failover", "Exclusive, Shared, Failover (default) or Key_Shared")
	fs.DurationVar(&f.interval, "interval", time.Second, "length of a progress line's interval (default 1s)")
	fs.Int64Var(&f.maxMessages, "max-messages", 0, "stop after this many measured messages (0: by duration only)")
	fs.DurationVar(&f.spinWait, "spin-wait", 0, "how long before each send a sender spins instead of sleeping; negative never spins; default 1.2ms")
	fs.StringVar(&f.out, "out", "", "also write the run as a result `FILE` (package results' JSON; 'magnetar bench compare' reads it)")
	fs.StringVar(&f.durability, "durability", "", "state the target's durability in the --out file (a `label`)")
}

func loadgenCommand() *command {
	f := &loadgenFlags{}
	return &command{
		name:    "loadgen",
		summary: "drive producers and consumers at a cluster and record their latency",
		detail: "Open-loop producers at a fixed rate (or OMB's max-rate controller), consumers, and four latency\n" +
			"histograms per message: publish from the intended send time, publish from the actual send, the\n" +
			"send's slip behind its schedule, and end to end (a nanosecond timestamp in the payload). Prints a\n" +
			"progress line per interval and a summary at the end; SIGINT stops it cleanly, with the summary of\n" +
			"what was measured. The workload is an OMB workload file (--workload) or the flags.",
		flags: f.register,
		run: func(ctx context.Context, p *proc, args []string) error {
			if len(args) > 0 {
				fmt.Fprintf(p.Stderr, "magnetar: loadgen: unexpected arguments %q\n", args)
				return errUsage
			}
			return loadgenRun(ctx, p, f)
		},
	}
}

// loadgenWorkload builds the workload from the file and the flags given.
func loadgenWorkload(f *loadgenFlags) (loadgen.Workload, error) {
	given := map[string]bool{}
	if f.fs != nil {
		f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	}
	var w loadgen.Workload
	if f.workload != "" {
		data, err := os.ReadFile(f.workload)
		if err != nil {
			return w, err
		}
		if w, err = loadgen.ParseWorkload(data); err != nil {
			return w, fmt.Errorf("%s: %w", f.workload, err)
		}
	} else {
		w = loadgen.Workload{Name: "loadgen"}
		given = nil // every flag applies, given or not
	}
	apply := func(name string, set func()) {
		if given == nil || given[name] {
			set()
		}
	}
	apply("topics", func() { w.Topics = f.topics })
	apply("partitions", func() { w.PartitionsPerTopic = f.partitions })
	apply("size", func() { w.MessageSize = f.size })
	apply("rate", func() { w.ProducerRate = f.rate })
	apply("producers", func() { w.ProducersPerTopic = f.producers })
	apply("consumers", func() { w.ConsumerPerSubscription = f.consumers })
	apply("subscriptions", func() { w.SubscriptionsPerTopic = f.subs })
	apply("keys", func() { w.KeyDistributor = loadgen.KeyDistributor(f.keys) })
	apply("duration", func() { w.TestDurationMinutes = f.duration.Minutes() })
	apply("warmup", func() {
		m := f.warmup.Minutes()
		w.WarmupDurationMinutes = &m
	})
	w.EnsureDefaults()
	return w, w.Validate()
}

func loadgenRun(ctx context.Context, p *proc, f *loadgenFlags) error {
	w, err := loadgenWorkload(f)
	if err != nil {
		fmt.Fprintf(p.Stderr, "magnetar: loadgen: %v\n", err)
		return errUsage
	}
	if f.interval <= 0 || f.maxMessages < 0 {
		fmt.Fprintln(p.Stderr, "magnetar: loadgen: --interval must be positive and --max-messages not negative")
		return errUsage
	}
	ro := loadgen.RunOptions{
		Interval: f.interval, Out: p.Stdout, Logger: p.Logger, SpinWait: f.spinWait,
		MaxMessages: f.maxMessages, SubscriptionType: f.subType,
		// Durations exactly as given (the workload carries minutes).
		Duration: w.TestDuration(), Warmup: w.Warmup(),
	}
	if ro.Warmup == 0 {
		ro.Warmup = -1
	}
	if f.adminURL != "" {
		ro.CreateTopic = bench.AdminTopicCreator(f.adminURL, nil)
	}
	if w.PayloadFile != "" {
		// OMB resolves payload files against its working directory.
		if _, err := os.Stat(w.PayloadFile); err == nil {
			ro.PayloadFS = os.DirFS(".")
		} else {
			p.Logger.Warn("loadgen: payload file not found; sending random payloads", "payloadFile", w.PayloadFile)
			w.PayloadFile = ""
		}
	}
	cpu := bench.StartCPUTrace(0)
	rep, runErr := loadgen.Run(ctx, f.url, w, ro)
	_ = cpu.Stop()
	interrupted := runErr != nil && ctx.Err() != nil
	if interrupted && rep == nil {
		fmt.Fprintln(p.Stderr, "magnetar: loadgen: interrupted before the load started")
		return nil
	}
	if runErr != nil && !interrupted {
		if errors.Is(runErr, loadgen.ErrInvalidOptions) && f.adminURL == "" && w.PartitionsPerTopic > 0 {
			fmt.Fprintln(p.Stderr, "magnetar: loadgen: hint: give --admin-url to create partitioned topics, or --partitions 0")
		}
		if errors.Is(runErr, loadgen.ErrInvalidWorkload) || errors.Is(runErr, loadgen.ErrInvalidOptions) {
			fmt.Fprintf(p.Stderr, "magnetar: loadgen: %v\n", runErr)
			return errUsage
		}
		return runErr
	}
	fmt.Fprintln(p.Stdout)
	fmt.Fprint(p.Stdout, rep.Summary())
	if f.out != "" {
		_, rev := buildVersion()
		d := results.Durability{Level: "unknown", Description: "not stated (--durability)"}
		if f.durability != "" {
			d = results.Durability{Level: f.durability, Description: "as stated with --durability"}
		}
		used := ro
		used.EnsureDefaults()
		if !used.Producer.DisableBatching {
			d.BatchingMaxDelay, d.BatchingMaxBytes = results.Duration(used.Producer.BatchingMaxDelay), used.Producer.BatchingMaxBytes
		}
		r, err := bench.ResultFromReport(rep, bench.ResultInfo{
			Scenario: "loadgen", Description: "magnetar loadgen", Target: f.url, GitRevision: rev,
			Workload:   bench.ResultWorkload(w, max(0, ro.Warmup), ro.Duration, ro.Interval),
			Durability: d, Machine: bench.DescribeMachine(vfs.Default),
			Limits: results.Limits{Cores: bench.Cores()}, CPU: cpu,
			Notes: []string{"magnetar loadgen: machine limits not measured ('magnetar bench' measures them); process CPU covers the load generator only"},
		})
		if err != nil {
			return err
		}
		if err := results.WriteFile(vfs.Default, f.out, r); err != nil {
			return err
		}
		fmt.Fprintf(p.Stdout, "result     %s\n", f.out)
	}
	if interrupted {
		fmt.Fprintln(p.Stderr, "magnetar: loadgen: interrupted; the summary covers what was measured until then")
	}
	return nil
}
