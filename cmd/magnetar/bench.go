package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/magnetar/magnetar/bench"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/loadgen"
	"github.com/magnetar/magnetar/results"
)

// benchStandalone makes the in-process standalone node that `magnetar
// bench` runs against when no --url is given, keeping its data in dataDir
// (a fresh directory, removed afterwards). It is nil until the standalone
// node exists (issue #8); wiring it is one assignment where the node is
// built, e.g. in standalone.go:
//
//	func init() { benchStandalone = newStandaloneBenchTarget }
//
// Tests set it to a stand-in. While it is nil, `magnetar bench` without a
// URL says so and exits 2.
var benchStandalone func(dataDir string, logger *slog.Logger) (bench.Target, error)

// benchFlags are the flags of a benchmark run. Their registration takes the
// current values as defaults, so that the flags after the scenario name
// can be parsed into the same struct without resetting those before it.
type benchFlags struct {
	url, adminURL, durability string
	duration, interval        time.Duration
	warmup                    optDuration
	rate                      float64
	topics, partitions, size  int
	backlog                   byteSize
	slack                     time.Duration
	runs                      int
	out, dataDir, omb         string
	spinWait                  time.Duration
	limitsTime                time.Duration
	quiet                     bool
}

func defaultBenchFlags() *benchFlags {
	return &benchFlags{runs: 1, out: bench.DefaultResultsDir, dataDir: "data/bench"}
}

func (f *benchFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "url", f.url, "run against the cluster at this Pulsar service `URL` (pulsar://host:6650) instead of an in-process standalone node; default $MAGNETAR_BENCH_URL")
	fs.StringVar(&f.adminURL, "admin-url", f.adminURL, "create partitioned topics through the admin API at this `URL` (http://host:8080); default $MAGNETAR_BENCH_ADMIN_URL")
	fs.StringVar(&f.durability, "durability", f.durability, "state the durability of the --url cluster in the result (a `label`, e.g. \"fsync E3/W3/A2\"); the harness cannot ask a remote cluster")
	fs.DurationVar(&f.duration, "duration", f.duration, "measured length of the run (of each step, for a sweep); default the scenario's")
	fs.Var(&f.warmup, "warmup", "warm-up before measuring (`duration`; 0 for none); default the scenario's")
	fs.DurationVar(&f.interval, "interval", f.interval, "length of a per-interval record and progress line; default the scenario's (1s)")
	fs.Float64Var(&f.rate, "rate", f.rate, "messages per second: the fixed rate, the max-rate controller's start rate, or a sweep's 100% rate (skipping the max-rate search); default the scenario's")
	fs.IntVar(&f.topics, "topics", f.topics, "number of topics; default the scenario's")
	fs.IntVar(&f.partitions, "partitions", f.partitions, "partitions per topic; default the scenario's")
	fs.IntVar(&f.size, "size", f.size, "message size in bytes; default the scenario's")
	fs.Var(&f.backlog, "backlog", "backlog to build in a backlog scenario (`size`, e.g. 256MiB); default the scenario's")
	fs.DurationVar(&f.slack, "slack", f.slack, "how long each load phase may run beyond warm-up and measured length before it is cut off; default the scenario's")
	fs.IntVar(&f.runs, "runs", f.runs, "run the scenario this many times (one result file each), for 'bench compare' (default 1)")
	fs.StringVar(&f.out, "out", f.out, "write result files and HTML reports into `DIR` (default results/runs)")
	fs.StringVar(&f.dataDir, "data-dir", f.dataDir, "measure the disk limits in `DIR`, and keep the standalone node's data there (default data/bench)")
	fs.StringVar(&f.omb, "omb", f.omb, "also write each run in OpenMessaging Benchmark's result JSON shape to `FILE` (FILE-2.json, ... for further runs)")
	fs.DurationVar(&f.spinWait, "spin-wait", f.spinWait, "how long before each send the load generator spins instead of sleeping; negative never spins; default 1.2ms")
	fs.DurationVar(&f.limitsTime, "limits-time", f.limitsTime, "bound each machine-limit measurement (disk, fdatasync, loopback) to this long; default 5s, 3s and 2s")
	fs.BoolVar(&f.quiet, "quiet", f.quiet, "no progress line per interval")
}

// optDuration is a duration flag that knows whether it was set, so that
// "--warmup 0" (none) differs from no flag (the scenario's).
type optDuration struct {
	d   time.Duration
	set bool
}

func (o *optDuration) String() string {
	if o == nil || !o.set {
		return ""
	}
	return o.d.String()
}

func (o *optDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("negative duration %v", d)
	}
	o.d, o.set = d, true
	return nil
}

// byteSize is a size flag: 1048576, 512KiB, 256MiB, 1GiB, 1GB (10^9).
type byteSize int64

func (b *byteSize) String() string {
	if b == nil || *b == 0 {
		return ""
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *byteSize) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

func parseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	num, mult := strings.TrimSpace(s), 1.0
	for _, u := range units {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || f*mult > math.MaxInt64/2 {
		return 0, fmt.Errorf("bad size %q (want e.g. 1048576, 512KiB, 256MiB, 1GiB)", s)
	}
	return int64(f * mult), nil
}

func benchCommand() *command {
	f := defaultBenchFlags()
	return &command{
		name:    "bench",
		summary: "run benchmark scenarios and report results against the machine's limits",
		args:    "[list | limits | journal | compare OLD... -- NEW... | SCENARIO [flags]]",
		detail: "Runs a named scenario (default " + bench.DefaultScenario + ") against an in-process standalone\n" +
			"node, or against a cluster with --url; measures the machine's limits in the same run; writes a\n" +
			"result file and an HTML report per run into --out; prints a summary and the report's path.\n" +
			"\n" +
			"  magnetar bench [flags] [SCENARIO [flags]]   run a scenario ('bench list' names them)\n" +
			"  magnetar bench list                         list the scenarios, their workloads and time bounds\n" +
			"  magnetar bench limits [flags]               measure only the machine's limits\n" +
			"  magnetar bench journal [--size N] [--inflight N] [--duration D] [--dir DIR] [--buffered]\n" +
			"                                              the journal alone against the device's limits\n" +
			"  magnetar bench compare [--threshold 5%] OLD.json... -- NEW.json...\n" +
			"  magnetar bench compare --old a.json,b.json --new c.json,d.json\n" +
			"                                              regression verdict from repeated runs (Mann-Whitney U,\n" +
			"                                              Holm over metrics); flags: --threshold, --alpha,\n" +
			"                                              --min-runs, --metrics. Exit 0: no regression;\n" +
			"                                              1: a metric regressed past the threshold; 2: too few\n" +
			"                                              runs to decide, or bad usage",
		flags: f.register,
		run: func(ctx context.Context, p *proc, args []string) error {
			if len(args) > 0 {
				switch args[0] {
				case "list":
					if len(args) > 1 {
						fmt.Fprintln(p.Stderr, "magnetar: bench list: takes no arguments")
						return errUsage
					}
					return benchList(p.Stdout)
				case "compare":
					return benchCompare(p, args[1:])
				case "journal":
					return benchJournal(ctx, p, args[1:])
				}
			}
			scenario := bench.DefaultScenario
			if len(args) > 0 {
				scenario = args[0]
				fs := flag.NewFlagSet("bench "+scenario, flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				f.register(fs)
				if err := fs.Parse(args[1:]); err != nil {
					if errors.Is(err, flag.ErrHelp) {
						p.cli.commandHelp(p.Stdout, benchCommand())
						return errHelpShown
					}
					fmt.Fprintf(p.Stderr, "magnetar: bench %s: %v\nRun 'magnetar help bench' for usage.\n", scenario, err)
					return errUsage
				}
				if fs.NArg() > 0 {
					fmt.Fprintf(p.Stderr, "magnetar: bench: unexpected arguments after the scenario: %q\n", fs.Args())
					return errUsage
				}
			}
			return benchRun(ctx, p, f, scenario)
		},
	}
}

// benchRun runs scenario (or the limits) with the flags f.
func benchRun(ctx context.Context, p *proc, f *benchFlags, scenario string) error {
	if f.url == "" {
		f.url = p.cli.env["MAGNETAR_BENCH_URL"]
	}
	if f.adminURL == "" {
		f.adminURL = p.cli.env["MAGNETAR_BENCH_ADMIN_URL"]
	}
	_, rev := buildVersion()
	if rev == "unknown" {
		rev = ""
	}
	opts := bench.Options{
		ResultsDir: f.out, DataDir: f.dataDir,
		ServiceURL: f.url, AdminURL: f.adminURL,
		Runs:        f.runs,
		GitRevision: rev,
		Logger:      p.Logger,
		Load:        loadgen.RunOptions{SpinWait: f.spinWait},
		Overrides: bench.Overrides{
			Rate: f.rate, Duration: f.duration, Interval: f.interval, Topics: f.topics, Partitions: f.partitions,
			MessageSize: f.size, BacklogBytes: int64(f.backlog), Slack: f.slack,
		},
	}
	if f.warmup.set {
		opts.Overrides.Warmup = f.warmup.d
		if f.warmup.d == 0 {
			opts.Overrides.Warmup = -1
		}
	}
	if f.durability != "" {
		opts.Durability = results.Durability{Level: f.durability, Description: "as stated with --durability"}
	}
	if !f.quiet {
		opts.Progress = p.Stdout
	}
	if f.limitsTime > 0 {
		opts.Limits.Disk.MaxTime, opts.Limits.Fsync.MaxTime, opts.Limits.Loopback.MaxTime = f.limitsTime, f.limitsTime, f.limitsTime
	}
	if f.runs < 1 || f.duration < 0 || f.interval < 0 || f.rate < 0 || f.limitsTime < 0 || f.slack < 0 {
		fmt.Fprintln(p.Stderr, "magnetar: bench: --runs must be at least 1, and durations, rates and counts not negative")
		return errUsage
	}
	if hook := benchStandalone; hook != nil {
		logger := p.Logger
		opts.Standalone = func(dataDir string) (bench.Target, error) { return hook(dataDir, logger) }
	}

	var outs []bench.Output
	var err error
	if scenario == bench.ScenarioLimits {
		var out bench.Output
		out, err = bench.RunLimits(ctx, opts)
		if err == nil {
			outs = append(outs, out)
		}
	} else {
		outs, err = bench.Run(ctx, scenario, opts)
	}
	for i, out := range outs {
		if werr := printBenchOutput(p, f, i, out); werr != nil && err == nil {
			err = werr
		}
	}
	switch {
	case errors.Is(err, bench.ErrNoTarget):
		fmt.Fprintln(p.Stderr, "magnetar: bench: the in-process standalone node is not available yet (issue #8), and no cluster was given,")
		fmt.Fprintln(p.Stderr, "magnetar: bench: so there is nothing to benchmark. Run against a running cluster instead:")
		fmt.Fprintln(p.Stderr, "magnetar: bench:   magnetar bench --url pulsar://HOST:6650 --admin-url http://HOST:8080   (or MAGNETAR_BENCH_URL)")
		fmt.Fprintln(p.Stderr, "magnetar: bench: 'magnetar bench limits' measures this machine's limits alone.")
		return errUsage
	case errors.Is(err, bench.ErrUnknownScenario):
		fmt.Fprintf(p.Stderr, "magnetar: bench: unknown scenario %q; 'magnetar bench list' names them\n", scenario)
		return errUsage
	case errors.Is(err, bench.ErrBadScenario):
		fmt.Fprintf(p.Stderr, "magnetar: bench: %v\n", err)
		return errUsage
	case errors.Is(err, loadgen.ErrInvalidOptions) && f.url != "" && f.adminURL == "":
		fmt.Fprintln(p.Stderr, "magnetar: bench: hint: give --admin-url (or MAGNETAR_BENCH_ADMIN_URL) to create the partitioned topics")
		return err
	case err != nil && ctx.Err() != nil:
		fmt.Fprintln(p.Stderr, "magnetar: bench: interrupted; the unfinished run was not written")
		return nil
	}
	return err
}

// printBenchOutput prints run i's summary and paths, and writes its OMB
// file when asked.
func printBenchOutput(p *proc, f *benchFlags, i int, out bench.Output) error {
	w := p.Stdout
	fmt.Fprintln(w)
	if err := results.WriteSummary(w, out.Result); err != nil {
		return err
	}
	fmt.Fprintf(w, "result     %s\nreport     %s\n", out.ResultPath, out.ReportPath)
	if f.omb == "" || out.Result.Scenario == bench.ScenarioLimits {
		return nil
	}
	path := f.omb
	if i > 0 {
		ext := filepath.Ext(path)
		path = strings.TrimSuffix(path, ext) + "-" + strconv.Itoa(i+1) + ext
	}
	if err := writeOMBFile(path, out.Result); err != nil {
		return err
	}
	fmt.Fprintf(w, "omb        %s\n", path)
	return nil
}

func writeOMBFile(path string, r *results.Result) error {
	fsys := vfs.Default
	if dir := filepath.Dir(path); dir != "" {
		if err := fsys.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	file, err := fsys.Create(path)
	if err != nil {
		return err
	}
	if err := results.WriteOMB(file, r, results.OMBOptions{}); err != nil {
		file.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// benchList prints the scenarios.
func benchList(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tKIND\tWORKLOAD\tRATE\tWARM-UP + MEASURED\tBOUND")
	for _, s := range bench.DefaultRegistry().Scenarios() {
		name := s.Name
		if name == bench.DefaultScenario {
			name += " (default)"
		}
		if s.Kind == bench.KindLimits {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\n", name, s.Kind)
			continue
		}
		wl := s.Workload
		rate := "max (controller)"
		if wl.ProducerRate > 0 {
			rate = strconv.FormatFloat(wl.ProducerRate, 'f', -1, 64) + " msg/s"
		} else if s.Kind == bench.KindSweep {
			rate = fmt.Sprintf("max, then %d steps", len(s.SweepFractions))
		}
		load := fmt.Sprintf("%s + %s", wl.Warmup, wl.Duration)
		if s.Kind == bench.KindSweep {
			load = fmt.Sprintf("%s + %s search; %s + %s per step", wl.Warmup, wl.Duration, wl.Warmup, s.StepDuration)
		}
		if s.Kind == bench.KindBacklog {
			load += fmt.Sprintf(" after a %d MiB backlog drains", wl.ConsumerBacklogSizeBytes>>20)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d x %d partitions, %d B, %dp/%dc\t%s\t%s\t%s\n", name, s.Kind, wl.Topics,
			wl.PartitionsPerTopic, wl.MessageSize, wl.ProducersPerTopic, wl.ConsumerPerSubscription, rate, load, s.MaxTime())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, s := range bench.DefaultRegistry().Scenarios() {
		fmt.Fprintf(w, "%s: %s\n", s.Name, s.Description)
	}
	_, err := fmt.Fprintln(w, "\nBOUND: each load phase is cut off there (warm-up + measured + slack), limits and start-up not included.")
	return err
}

// benchCompare gives the regression verdict between two sets of result
// files.
func benchCompare(p *proc, args []string) error {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		oldList, newList, metrics string
		threshold                 = "5%"
		alpha                     = 0.05
		minRuns                   = 3
	)
	fs.StringVar(&oldList, "old", "", "comma-separated result files of the baseline")
	fs.StringVar(&newList, "new", "", "comma-separated result files of the candidate")
	fs.StringVar(&threshold, "threshold", threshold, "smallest change of a metric's median that counts (5% or 0.05)")
	fs.Float64Var(&alpha, "alpha", alpha, "family-wise significance level over the metrics (Holm)")
	fs.IntVar(&minRuns, "min-runs", minRuns, "fewest runs a side a verdict needs")
	fs.StringVar(&metrics, "metrics", "", "comma-separated metrics (default publishRate,publish.p50,publish.p99,publish.p99.9,endToEnd.p99)")
	usage := func(format string, a ...any) error {
		fmt.Fprintf(p.Stderr, "magnetar: bench compare: "+format+"\n", a...)
		fmt.Fprintln(p.Stderr, "Usage: magnetar bench compare [--threshold 5%] OLD.json... -- NEW.json...  (or --old a,b --new c,d)")
		return errUsage
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(p.Stdout, "Usage: magnetar bench compare [flags] OLD.json... -- NEW.json...\n       magnetar bench compare [flags] --old a.json,b.json --new c.json,d.json\n\nFlags:")
			fs.SetOutput(p.Stdout)
			fs.PrintDefaults()
			return errHelpShown
		}
		return usage("%v", err)
	}
	oldFiles, newFiles, err := compareSides(fs.Args(), oldList, newList)
	if err != nil {
		return usage("%v", err)
	}
	opts := results.CompareOptions{Alpha: alpha, MinRuns: minRuns}
	if opts.MinEffect, err = parseThreshold(threshold); err != nil {
		return usage("%v", err)
	}
	for _, m := range splitList(metrics) {
		opts.Metrics = append(opts.Metrics, results.Metric(m))
	}
	oldRuns, err := results.ReadFiles(vfs.Default, oldFiles...)
	if err != nil {
		return err
	}
	newRuns, err := results.ReadFiles(vfs.Default, newFiles...)
	if err != nil {
		return err
	}
	v, err := results.Compare(oldRuns, newRuns, opts)
	if err != nil {
		return usage("%v", err)
	}
	if err := v.WriteText(p.Stdout); err != nil {
		return err
	}
	switch v.Outcome {
	case results.Regressed:
		var names []string
		for _, m := range v.Metrics {
			if m.Outcome == results.Regressed {
				names = append(names, fmt.Sprintf("%s %s", m.Metric, signedPct(m.Change)))
			}
		}
		return fmt.Errorf("regression past the %s threshold: %s", threshold, strings.Join(names, ", "))
	case results.Insufficient:
		fmt.Fprintf(p.Stderr, "magnetar: bench compare: cannot decide: %s\n", v.Reason)
		return errUsage
	}
	return nil
}

// compareSides splits the arguments at "--" into old and new files, or
// takes the --old and --new lists.
func compareSides(args []string, oldList, newList string) (oldFiles, newFiles []string, err error) {
	if oldList != "" || newList != "" {
		if len(args) > 0 {
			return nil, nil, fmt.Errorf("give the files either with --old/--new or as OLD... -- NEW..., not both")
		}
		oldFiles, newFiles = splitList(oldList), splitList(newList)
	} else {
		i := -1
		for j, a := range args {
			if a == "--" {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, nil, fmt.Errorf("separate the old and new result files with --")
		}
		oldFiles, newFiles = args[:i], args[i+1:]
	}
	if len(oldFiles) == 0 || len(newFiles) == 0 {
		return nil, nil, fmt.Errorf("need result files on both sides")
	}
	return oldFiles, newFiles, nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// parseThreshold reads "5%" or "0.05" as 0.05.
func parseThreshold(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		return 0, fmt.Errorf("bad threshold %q (want e.g. 5%% or 0.05)", s)
	}
	if pct {
		return f / 100, nil
	}
	if f >= 1 {
		return 0, fmt.Errorf("threshold %q: a fraction below 1, or a percentage such as %s%%", s, s)
	}
	return f, nil
}

func signedPct(f float64) string {
	s := strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
	if f > 0 {
		s = "+" + s
	}
	return s
}

// benchJournal runs the journal alone (bench.RunJournal) and prints its rate
// and add latency beside the device's limits measured in the same run.
func benchJournal(ctx context.Context, p *proc, args []string) error {
	var o bench.JournalOptions
	fs := flag.NewFlagSet("bench journal", flag.ContinueOnError)
	fs.SetOutput(p.Stderr)
	fs.StringVar(&o.Dir, "dir", "", "directory for the journal and the device measurements (default data/bench)")
	fs.IntVar(&o.EntrySize, "size", 1024, "payload bytes per add")
	fs.IntVar(&o.InFlight, "inflight", 256, "adds outstanding at once")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "time before measuring")
	fs.BoolVar(&o.DisableDirectIO, "buffered", false, "buffered writes plus fdatasync instead of O_DIRECT")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return errUsage
	}
	if fs.NArg() > 0 || o.EntrySize < 1 || o.InFlight < 1 || o.Duration <= 0 || o.Warmup < 0 {
		fmt.Fprintln(p.Stderr, "magnetar: bench journal: want positive --size, --inflight and --duration, and no arguments")
		return errUsage
	}
	res, err := bench.RunJournal(ctx, o)
	if err != nil {
		return err
	}
	res.WriteSummary(p.Stdout)
	return nil
}
