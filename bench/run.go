package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/loadgen"
	"github.com/magnetar/magnetar/results"
)

// DefaultResultsDir is where run files go unless told otherwise (ignored by
// git; a committed baseline may live beside it).
const DefaultResultsDir = "results/runs"

// TargetStandalone names the default target: a standalone node started in
// this process.
const TargetStandalone = "standalone (in-process)"

// Options configure a benchmark run. The zero value means the defaults.
type Options struct {
	FS vfs.FS // default vfs.Default
	// ResultsDir receives the result files and the HTML reports; default
	// DefaultResultsDir.
	ResultsDir string
	// DataDir is where disk limits are measured (the device the node's
	// journal will use) and where an in-process standalone node keeps its
	// data; default ResultsDir.
	DataDir string

	// Target, when set, is what the runs go against.
	Target Target
	// ServiceURL, when Target is nil, is a running cluster to run against
	// (a URLTarget with AdminURL and Durability).
	ServiceURL string
	AdminURL   string
	Durability results.Durability
	// Standalone, when neither Target nor ServiceURL is set, makes the
	// in-process standalone node (the default target), keeping its data in
	// dataDir: a fresh directory under DataDir, removed after the runs.
	// Nil means there is none (Run fails with ErrNoTarget).
	Standalone func(dataDir string) (Target, error)

	// Runs is how many times the scenario is run, one result file each,
	// against one target and one measurement of the limits; default 1.
	// Repeated runs are what Compare needs.
	Runs int
	// Overrides change the scenario's workload.
	Overrides Overrides
	// Load is the template of the load generator's options (client,
	// producer and subscription settings, SpinWait). Interval, Warmup and
	// Duration come from the scenario; CreateTopic from the target when
	// unset; Out defaults to Progress and Logger to Logger.
	Load loadgen.RunOptions
	// Progress receives one line per interval of every run; nil for none.
	Progress io.Writer
	// CPUSamplePeriod is how often process CPU is sampled during a run;
	// default 100 ms.
	CPUSamplePeriod time.Duration

	// GitRevision is recorded in the result; default the build's VCS stamp.
	GitRevision string
	Limits      LimitsOptions
	// Registry holds the scenarios; default DefaultRegistry().
	Registry *Registry
	Logger   *slog.Logger // default slog.Default()
}

// EnsureDefaults fills zero fields.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.ResultsDir == "" {
		o.ResultsDir = DefaultResultsDir
	}
	if o.DataDir == "" {
		o.DataDir = o.ResultsDir
	}
	if o.Runs == 0 {
		o.Runs = 1
	}
	if o.GitRevision == "" {
		o.GitRevision = BuildRevision()
	}
	if o.Registry == nil {
		o.Registry = DefaultRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Load.Logger == nil {
		o.Load.Logger = o.Logger
	}
	if o.Load.Out == nil {
		o.Load.Out = o.Progress
	}
	if o.Limits.Disk.FS == nil {
		o.Limits.Disk.FS = o.FS
	}
	if o.Limits.Fsync.FS == nil {
		o.Limits.Fsync.FS = o.FS
	}
	o.Limits.Disk.EnsureDefaults()
	o.Limits.Fsync.EnsureDefaults()
	o.Limits.Loopback.EnsureDefaults()
}

// Validate reports impossible settings.
func (o *Options) Validate() error {
	var errs []error
	if o.Runs < 1 {
		errs = append(errs, fmt.Errorf("bench: runs %d < 1", o.Runs))
	}
	if o.CPUSamplePeriod < 0 {
		errs = append(errs, fmt.Errorf("bench: CPU sample period %v is negative", o.CPUSamplePeriod))
	}
	return errors.Join(append(errs, o.Limits.Disk.Validate(), o.Limits.Fsync.Validate(), o.Limits.Loopback.Validate())...)
}

// Output is one run's result and where it was written.
type Output struct {
	Result *results.Result
	// ResultPath is the result file; ReportPath the HTML report beside it.
	ResultPath, ReportPath string
}

// errTimeBound is the cause of a load phase's context ending at the
// scenario's time bound.
var errTimeBound = errors.New("bench: the scenario's time bound was reached")

// Run runs the scenario called name opts.Runs times and writes each run's
// result file and HTML report into opts.ResultsDir. It resolves the target
// first (ErrNoTarget when there is none), then measures the machine's
// limits, starts the target, runs the load, and stops the target. Every
// result carries the limits, the target's durability, the machine, the git
// revision, per-interval and cumulative percentiles with their encoded
// histograms, and process CPU. It returns the runs that completed, with
// the first error; a run interrupted by ctx writes nothing.
func Run(ctx context.Context, name string, opts Options) ([]Output, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s, ok := opts.Registry.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownScenario, name)
	}
	s, err := s.Apply(opts.Overrides)
	if err != nil {
		return nil, err
	}
	if s.Kind == KindLimits {
		var outs []Output
		for range opts.Runs {
			out, err := runLimits(ctx, s, opts)
			if err != nil {
				return outs, err
			}
			outs = append(outs, out)
		}
		return outs, nil
	}

	target, dataDir, err := opts.target()
	if err != nil {
		return nil, err
	}
	if dataDir != "" {
		defer func() { _ = opts.FS.RemoveAll(dataDir) }()
	}
	log := opts.Logger.With("scenario", s.Name)
	log.Info("bench: measuring machine limits", "dir", opts.DataDir)
	limits, err := MeasureLimits(ctx, opts.DataDir, opts.Limits)
	if err != nil {
		return nil, err
	}
	log.Info("bench: starting target", "target", target.Info().Name)
	ep, err := target.Start(ctx)
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := target.Stop(sctx); err != nil {
			log.Warn("bench: stopping the target", "err", err)
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", target.Info().Name, err)
	}
	rn := &runner{s: s, o: &opts, ep: ep, info: target.Info(), limits: limits, log: log}
	var outs []Output
	for i := range opts.Runs {
		log.Info("bench: run", "run", i+1, "of", opts.Runs, "bound", s.MaxTime())
		r, err := rn.run(ctx)
		if err != nil {
			return outs, err
		}
		out, err := writeOutput(opts.FS, opts.ResultsDir, r)
		if err != nil {
			return outs, err
		}
		log.Info("bench: result written", "result", out.ResultPath, "report", out.ReportPath)
		outs = append(outs, out)
	}
	return outs, nil
}

// target resolves the target; dataDir is the standalone node's data
// directory, to be removed after the runs ("" for other targets).
func (o *Options) target() (t Target, dataDir string, err error) {
	switch {
	case o.Target != nil:
		return o.Target, "", nil
	case o.ServiceURL != "":
		u := &URLTarget{ServiceURL: o.ServiceURL, AdminURL: o.AdminURL, Durability: o.Durability}
		if err := checkServiceURL(u.ServiceURL); err != nil {
			return nil, "", err
		}
		return u, "", nil
	case o.Standalone == nil:
		return nil, "", ErrNoTarget
	}
	dataDir = filepath.Join(o.DataDir, "standalone-"+now().Format("20060102T150405Z")+"-"+strconv.Itoa(os.Getpid()))
	if err := o.FS.MkdirAll(dataDir, 0o755); err != nil {
		return nil, "", fmt.Errorf("bench: standalone data directory: %w", err)
	}
	t, err = o.Standalone(dataDir)
	if err != nil {
		_ = o.FS.RemoveAll(dataDir)
		return nil, "", fmt.Errorf("bench: standalone node: %w", err)
	}
	return t, dataDir, nil
}

// runner runs one scenario's load phases against a started target.
type runner struct {
	s      Scenario
	o      *Options
	ep     Endpoint
	info   TargetInfo
	limits results.Limits
	log    *slog.Logger
}

// phase is one load generator run and what was seen around it.
type phase struct {
	rep   *loadgen.Report
	cpu   *CPUTrace
	ro    loadgen.RunOptions // as used, defaults filled
	notes []string
}

// load runs the load generator once with workload w.
func (rn *runner) load(ctx context.Context, w results.Workload, startRate float64) (*phase, error) {
	ro := rn.o.Load
	ro.Interval = w.Interval.D()
	ro.Duration = w.Duration.D()
	ro.Warmup = w.Warmup.D()
	if ro.Warmup == 0 {
		ro.Warmup = -1 // none
	}
	if ro.CreateTopic == nil {
		ro.CreateTopic = rn.ep.CreateTopic
	}
	if ro.CreateTopic == nil && rn.ep.AdminURL != "" {
		ro.CreateTopic = AdminTopicCreator(rn.ep.AdminURL, nil)
	}
	if startRate > 0 {
		ro.MaxRateStart = startRate
	}
	bound := w.Warmup.D() + w.Duration.D() + rn.s.slack()
	pctx, cancel := context.WithTimeoutCause(ctx, bound, errTimeBound)
	defer cancel()
	cpu := StartCPUTrace(rn.o.CPUSamplePeriod)
	rep, err := loadgen.Run(pctx, rn.ep.ServiceURL, LoadgenWorkload(w), ro)
	cerr := cpu.Stop()
	ro.EnsureDefaults()
	ph := &phase{rep: rep, cpu: cpu, ro: ro}
	if cerr != nil {
		ph.notes = append(ph.notes, "process CPU could not be read: "+cerr.Error())
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(context.Cause(pctx), errTimeBound) && rep != nil && rep.Measured > 0:
		ph.notes = append(ph.notes, fmt.Sprintf("cut off at the scenario's time bound (warm-up + measured + slack = %v): the figures cover what was measured until then", bound))
	case errors.Is(context.Cause(pctx), errTimeBound):
		return nil, fmt.Errorf("bench: %s: nothing measured within the time bound of %v (warm-up + measured + slack %v): %w",
			rn.s.Name, bound, rn.s.slack(), errTimeBound)
	default:
		return nil, fmt.Errorf("bench: %s: %w", rn.s.Name, err)
	}
	return ph, nil
}

// run runs the scenario once and returns its result.
func (rn *runner) run(ctx context.Context) (*results.Result, error) {
	if rn.s.Kind == KindSweep {
		return rn.sweep(ctx)
	}
	ph, err := rn.load(ctx, rn.s.Workload, rn.s.StartRate)
	if err != nil {
		return nil, err
	}
	r, err := ResultFromReport(ph.rep, rn.resultInfo(rn.s.Workload, ph))
	if err != nil {
		return nil, err
	}
	if rn.s.Kind == KindBacklog {
		r.Notes = append(r.Notes, backlogNotes(r.Intervals, r.Workload.MessageSize)...)
	}
	rn.adjust(r)
	return r, nil
}

// resultInfo describes a run of workload w.
func (rn *runner) resultInfo(w results.Workload, ph *phase) ResultInfo {
	d := rn.info.Durability
	if !ph.ro.Producer.DisableBatching {
		d.BatchingMaxDelay = results.Duration(ph.ro.Producer.BatchingMaxDelay)
		d.BatchingMaxBytes = ph.ro.Producer.BatchingMaxBytes
	}
	notes := append(LimitNotes(rn.limits), rn.targetNotes(ph.ro)...)
	return ResultInfo{
		Scenario: rn.s.Name, Description: rn.s.Description, Target: rn.info.Name,
		GitRevision: rn.o.GitRevision, Workload: w, Durability: d,
		Machine: DescribeMachine(rn.o.FS), Limits: rn.limits, CPU: ph.cpu,
		Notes: append(notes, ph.notes...),
	}
}

// targetNotes say what the busy-core and share figures cover.
func (rn *runner) targetNotes(ro loadgen.RunOptions) []string {
	var notes []string
	switch {
	case rn.info.InProcess:
		notes = append(notes, "process CPU covers the in-process node and the load generator together")
	case rn.info.Remote:
		notes = append(notes, "the target runs on other machines: process CPU covers only the load generator, and this machine's disk and loopback limits do not bound the target (no disk or loopback share is given)")
	default:
		notes = append(notes, "the target is another process on this machine: process CPU covers only the load generator, so the busy-core figures leave out the broker's CPU")
	}
	if ro.SpinWait > 0 {
		notes = append(notes, fmt.Sprintf("senders spin-wait the last %v before each send (schedule accuracy): at rates with sends closer than that, up to one core per sender is busy waiting, and counts in process CPU", ro.SpinWait))
	}
	return notes
}

// adjust drops the figures that do not apply to the target.
func (rn *runner) adjust(r *results.Result) {
	if rn.info.Remote {
		r.Efficiency.DiskShare, r.Efficiency.LoopbackShare = 0, 0
	}
}

// sweep finds the max rate (unless given), then runs a fixed-rate step at
// each fraction of it.
func (rn *runner) sweep(ctx context.Context) (*results.Result, error) {
	s := rn.s
	started := now()
	var notes []string
	maxRate := s.MaxRate
	if maxRate == 0 {
		w := s.Workload
		w.ProducerRate = 0
		rn.log.Info("bench: sweep: finding the max rate", "for", w.Duration)
		ph, err := rn.load(ctx, w, s.StartRate)
		if err != nil {
			return nil, err
		}
		maxRate = ph.rep.PublishRate
		if !(maxRate >= 1) {
			return nil, fmt.Errorf("bench: %s: the max-rate search published %.1f msg/s: nothing to sweep", s.Name, maxRate)
		}
		notes = append(notes, fmt.Sprintf("sweep: max rate %.0f msg/s, found by a max-rate run of %v (the rate controller's last rate %.0f msg/s)",
			maxRate, ph.rep.Measured.Round(time.Millisecond), ph.rep.FinalRate))
		for _, p := range ph.rep.Problems {
			notes = append(notes, "sweep: max-rate search: "+p)
		}
	} else {
		notes = append(notes, fmt.Sprintf("sweep: max rate %.0f msg/s, as given", maxRate))
	}

	w := s.Workload
	w.Duration = results.Duration(s.StepDuration)
	var (
		r     *results.Result
		steps []results.Step
		ivs   []results.Interval
		base  time.Time
	)
	for _, f := range s.SweepFractions {
		sw := w
		sw.ProducerRate = f * maxRate
		name := strconv.FormatFloat(100*f, 'f', -1, 64) + "%"
		rn.log.Info("bench: sweep step", "step", name, "rate", int64(sw.ProducerRate))
		ph, err := rn.load(ctx, sw, 0)
		if err != nil {
			return nil, err
		}
		sr, err := ResultFromReport(ph.rep, rn.resultInfo(w, ph))
		if err != nil {
			return nil, err
		}
		if base.IsZero() {
			base = ph.rep.MeasureStart
		}
		steps = append(steps, results.Step{Name: name, TargetRate: sw.ProducerRate, Summary: sr.Summary, Histograms: sr.Histograms})
		ivs = append(ivs, intervals(ph.rep, base, ph.cpu, w.Interval.D())...)
		for _, p := range ph.rep.Problems {
			notes = append(notes, "step "+name+": load generator: "+p)
		}
		r = sr
	}
	// The last (highest-rate) step's result, with every step's figures.
	w.ProducerRate = 0
	r.Workload = w
	r.Started = started
	r.Steps = steps
	r.Intervals = ivs
	var kept []string
	for _, n := range r.Notes {
		if !strings.HasPrefix(n, "load generator: ") {
			kept = append(kept, n)
		}
	}
	r.Notes = append(kept, notes...)
	rn.adjust(r)
	return r, nil
}

// backlogNotes state, from the per-interval backlog, when the backlog
// peaked and when it was drained (to interval resolution).
func backlogNotes(ivs []results.Interval, size int) []string {
	peak := -1
	for i, iv := range ivs {
		if peak < 0 || iv.Backlog > ivs[peak].Backlog {
			peak = i
		}
	}
	if peak < 0 || ivs[peak].Backlog == 0 {
		return []string{"backlog: no backlog was seen in the per-interval records"}
	}
	p := ivs[peak]
	notes := []string{fmt.Sprintf("backlog: peak %d messages (%.1f MiB) at +%v", p.Backlog,
		float64(p.Backlog)*float64(size)/(1<<20), p.Elapsed.D().Round(time.Millisecond))}
	for i := peak + 1; i < len(ivs); i++ {
		if ivs[i].Backlog <= 1000 {
			span := ivs[i].Elapsed.D() - p.Elapsed.D()
			var consumed int64
			for _, iv := range ivs[peak+1 : i+1] {
				consumed += iv.ConsumedMsgs
			}
			notes = append(notes, fmt.Sprintf("backlog: drained (at most 1,000 left) by +%v, %v after the peak, consuming %.0f msg/s meanwhile",
				ivs[i].Elapsed.D().Round(time.Millisecond), span.Round(time.Millisecond), float64(consumed)/span.Seconds()))
			return notes
		}
	}
	return append(notes, "backlog: not drained by the end of the run")
}

// RunLimits runs the "limits" scenario: it measures the machine's limits and
// writes them as a result file and an HTML report into opts.ResultsDir.
func RunLimits(ctx context.Context, opts Options) (Output, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return Output{}, err
	}
	s, ok := opts.Registry.Lookup(ScenarioLimits)
	if !ok {
		return Output{}, fmt.Errorf("%w: %q", ErrUnknownScenario, ScenarioLimits)
	}
	return runLimits(ctx, s, opts)
}

func runLimits(ctx context.Context, s Scenario, opts Options) (Output, error) {
	log := opts.Logger
	started := now()
	log.Info("bench: measuring machine limits", "scenario", s.Name, "dir", opts.DataDir)
	limits, err := MeasureLimits(ctx, opts.DataDir, opts.Limits)
	if err != nil {
		return Output{}, err
	}
	r := &results.Result{
		FormatVersion: results.FormatVersion,
		Scenario:      s.Name,
		Description:   s.Description,
		Driver:        "magnetar",
		Target:        "none (machine limits only)",
		Started:       started,
		Finished:      now(),
		GitRevision:   opts.GitRevision,
		Machine:       DescribeMachine(opts.FS),
		Limits:        limits,
		Notes:         LimitNotes(limits),
	}
	out, err := writeOutput(opts.FS, opts.ResultsDir, r)
	if err != nil {
		return Output{}, err
	}
	log.Info("bench: limits written", "result", out.ResultPath, "report", out.ReportPath,
		"disk_MiBps", int(limits.Disk.BytesPerSec/(1<<20)), "fsync_p99", time.Duration(limits.Fsync.Latency.P99),
		"loopback_MiBps", int(limits.Loopback.BytesPerSec/(1<<20)))
	return out, nil
}

// writeOutput writes r's result file and HTML report into dir, under
// ResultPaths's names or, when those are taken (two runs started in the
// same second), with "-2", "-3", ... appended.
func writeOutput(fs vfs.FS, dir string, r *results.Result) (Output, error) {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return Output{}, fmt.Errorf("bench: results directory: %w", err)
	}
	jsonPath, htmlPath := ResultPaths(dir, r)
	for i := 2; ; i++ {
		_, err := fs.Stat(jsonPath)
		if vfs.IsNotExist(err) {
			break
		}
		if err != nil {
			return Output{}, fmt.Errorf("bench: %w", err)
		}
		if i > 1000 {
			return Output{}, fmt.Errorf("bench: no free result file name like %s", jsonPath)
		}
		base := filepath.Join(dir, results.BaseName(r)) + "-" + strconv.Itoa(i)
		jsonPath, htmlPath = base+".json", base+".html"
	}
	if err := results.WriteFile(fs, jsonPath, r); err != nil {
		return Output{}, fmt.Errorf("bench: %w", err)
	}
	if err := results.WriteHTMLFile(fs, htmlPath, r); err != nil {
		return Output{}, fmt.Errorf("bench: %w", err)
	}
	return Output{Result: r, ResultPath: jsonPath, ReportPath: htmlPath}, nil
}

// ResultPaths are the result file and HTML report paths of r under dir
// (writeOutput appends a number when they are taken).
func ResultPaths(dir string, r *results.Result) (jsonPath, htmlPath string) {
	base := filepath.Join(dir, results.BaseName(r))
	return base + ".json", base + ".html"
}

// now is the wall clock without its monotonic reading, in UTC, so that a
// result compares equal to itself after a trip through its file.
func now() time.Time { return time.Now().Round(0).UTC() }
