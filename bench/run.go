package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/vfs"
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
	// ResultsDir receives the result file and the HTML report; default
	// DefaultResultsDir.
	ResultsDir string
	// DataDir is where disk limits are measured (the directory the broker's
	// journal will use); default ResultsDir.
	DataDir string
	// ServiceURL is a cluster to run against; empty means an in-process
	// standalone node.
	ServiceURL string
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
	if o.GitRevision == "" {
		o.GitRevision = BuildRevision()
	}
	if o.Registry == nil {
		o.Registry = DefaultRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
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
	return errors.Join(o.Limits.Disk.Validate(), o.Limits.Fsync.Validate(), o.Limits.Loopback.Validate())
}

// Run runs the scenario called name and writes its result file and report
// into opts.ResultsDir (see ResultPaths). Only "limits" runs today; every
// other scenario reports base.ErrNotImplemented until the load generator is
// wired.
func Run(ctx context.Context, name string, opts Options) (*results.Result, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s, ok := opts.Registry.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownScenario, name)
	}
	if s.Kind == KindLimits {
		return runLimits(ctx, s, opts)
	}
	return nil, fmt.Errorf("bench: scenario %q (%s): the load generator is not wired yet: %w", s.Name, s.Kind, base.ErrNotImplemented)
}

// RunLimits runs the "limits" scenario: it measures the machine's limits and
// writes them as a result file and an HTML report into opts.ResultsDir.
func RunLimits(ctx context.Context, opts Options) (*results.Result, error) {
	return Run(ctx, ScenarioLimits, opts)
}

func runLimits(ctx context.Context, s Scenario, opts Options) (*results.Result, error) {
	log := opts.Logger
	started := now()
	log.Info("bench: measuring machine limits", "scenario", s.Name, "dir", opts.DataDir)
	limits, err := MeasureLimits(ctx, opts.DataDir, opts.Limits)
	if err != nil {
		return nil, err
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
	jsonPath, htmlPath := ResultPaths(opts.ResultsDir, r)
	if err := results.WriteFile(opts.FS, jsonPath, r); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if err := results.WriteHTMLFile(opts.FS, htmlPath, r); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	log.Info("bench: limits written", "result", jsonPath, "report", htmlPath,
		"disk_MiBps", int(limits.Disk.BytesPerSec/(1<<20)), "fsync_p99", time.Duration(limits.Fsync.Latency.P99),
		"loopback_MiBps", int(limits.Loopback.BytesPerSec/(1<<20)))
	return r, nil
}

// ResultPaths are the result file and HTML report paths of r under dir.
func ResultPaths(dir string, r *results.Result) (jsonPath, htmlPath string) {
	base := filepath.Join(dir, results.BaseName(r))
	return base + ".json", base + ".html"
}

// now is the wall clock without its monotonic reading, in UTC, so that a
// result compares equal to itself after a trip through its file.
func now() time.Time { return time.Now().Round(0).UTC() }
