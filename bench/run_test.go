package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/client/clienttest"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/loadgen"
	"github.com/magnetar/magnetar/results"
)

func TestDeclaredScenarios(t *testing.T) {
	r := DefaultRegistry()
	want := []string{ScenarioLimits, Scenario1Topic16P1KiB, Scenario1Topic16P100B, ScenarioMaxRate1KiB,
		ScenarioSweep1KiB, ScenarioBacklog1KiB, Scenario10kTopics}
	var got []string
	for _, s := range r.Scenarios() {
		got = append(got, s.Name)
		if err := s.Validate(); err != nil {
			t.Errorf("declared scenario invalid: %v", err)
		}
		if s.Description == "" {
			t.Errorf("%s: no description", s.Name)
		}
		if s.Kind != KindLimits && (s.MaxTime() <= 0 || s.MaxTime() > 15*time.Minute) {
			t.Errorf("%s: bound %v", s.Name, s.MaxTime())
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("scenarios %v, want %v", got, want)
	}
	// The shapes.
	check := func(name string, topics, parts, size int, rate float64, kind Kind) {
		t.Helper()
		s, ok := r.Lookup(name)
		if !ok {
			t.Fatalf("%s missing", name)
		}
		w := s.Workload
		if w.Topics != topics || w.PartitionsPerTopic != parts || w.MessageSize != size || w.ProducerRate != rate || s.Kind != kind {
			t.Errorf("%s: %+v kind %s", name, w, s.Kind)
		}
	}
	check(Scenario1Topic16P1KiB, 1, 16, 1024, DefaultRate, KindFixedRate)
	check(Scenario1Topic16P100B, 1, 16, 100, DefaultRate, KindFixedRate)
	check(ScenarioMaxRate1KiB, 1, 16, 1024, 0, KindMaxRate)
	check(ScenarioSweep1KiB, 1, 16, 1024, 0, KindSweep)
	check(ScenarioBacklog1KiB, 1, 16, 1024, DefaultRate, KindBacklog)
	check(Scenario10kTopics, 10000, 1, 1024, DefaultRate, KindFixedRate)
	// make bench: the default scenario's load fits in two minutes with the
	// limits (about 10 s) and the node's start-up.
	d, _ := r.Lookup(DefaultScenario)
	if total := d.Workload.Duration.D() + d.Workload.Warmup.D(); total > 80*time.Second {
		t.Errorf("default scenario runs %s of load", total)
	}
	// Each call returns a fresh registry: no shared mutable state.
	if err := r.Register(Scenario{Name: "extra", Kind: KindLimits}); err != nil {
		t.Fatal(err)
	}
	if _, ok := DefaultRegistry().Lookup("extra"); ok {
		t.Fatal("registries share state")
	}
}

func TestRegistryRejects(t *testing.T) {
	good := DefaultRegistry().Scenarios()[1]
	if _, err := NewRegistry(good, good); !errors.Is(err, ErrDuplicateScenario) {
		t.Errorf("duplicate: %v", err)
	}
	bad := []func(*Scenario){
		func(s *Scenario) { s.Name = "" },
		func(s *Scenario) { s.Name = "Has Spaces" },
		func(s *Scenario) { s.Kind = "warp" },
		func(s *Scenario) { s.Workload.Topics = 0 },
		func(s *Scenario) { s.Workload.MessageSize = 0 },
		func(s *Scenario) { s.Workload.ConsumerPerSubscription = 0 },
		func(s *Scenario) { s.Workload.Duration = 0 },
		func(s *Scenario) { s.Workload.ProducerRate = 0 }, // fixed rate without a rate
		func(s *Scenario) { s.Kind = KindBacklog },        // no backlog size
		func(s *Scenario) { s.Slack = -1 },
		func(s *Scenario) {
			s.Kind = KindSweep
			s.Workload.ProducerRate = 0
			s.SweepFractions = []float64{0.5, 0.25}
		},
	}
	for i, mutate := range bad {
		s := good
		s.SweepFractions = nil
		s.StepDuration = time.Second
		mutate(&s)
		if _, err := NewRegistry(s); !errors.Is(err, ErrBadScenario) {
			t.Errorf("case %d: %v", i, err)
		}
	}
}

func TestScenarioApply(t *testing.T) {
	r := DefaultRegistry()
	get := func(name string) Scenario {
		s, _ := r.Lookup(name)
		return s
	}
	s, err := get(Scenario1Topic16P1KiB).Apply(Overrides{Rate: 1234, Duration: 3 * time.Second, Warmup: -1,
		Interval: 250 * time.Millisecond, Topics: 2, Partitions: 4, MessageSize: 64, Slack: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := s.Workload
	if w.ProducerRate != 1234 || w.Duration.D() != 3*time.Second || w.Warmup != 0 || w.Interval.D() != 250*time.Millisecond ||
		w.Topics != 2 || w.PartitionsPerTopic != 4 || w.MessageSize != 64 || s.MaxTime() != 8*time.Second {
		t.Fatalf("%+v, bound %v", w, s.MaxTime())
	}
	// Zero overrides keep everything.
	if s, err := get(ScenarioBacklog1KiB).Apply(Overrides{}); err != nil || !reflect.DeepEqual(s, get(ScenarioBacklog1KiB)) {
		t.Fatalf("zero overrides changed the scenario: %v", err)
	}
	// The rate means the start rate of max-rate and the 100% point of a sweep.
	if s, _ := get(ScenarioMaxRate1KiB).Apply(Overrides{Rate: 500}); s.StartRate != 500 || s.Workload.ProducerRate != 0 {
		t.Errorf("max-rate: %+v", s)
	}
	s, _ = get(ScenarioSweep1KiB).Apply(Overrides{Rate: 800, Duration: time.Second})
	if s.MaxRate != 800 || s.Workload.ProducerRate != 0 || s.StepDuration != time.Second {
		t.Errorf("sweep: %+v", s)
	}
	if s.MaxTime() != 6*(10*time.Second+time.Second+DefaultSlack) {
		t.Errorf("sweep with a given rate: bound %v", s.MaxTime())
	}
	for _, c := range []struct {
		name string
		o    Overrides
	}{
		{Scenario1Topic16P1KiB, Overrides{BacklogBytes: 1}},
		{Scenario1Topic16P1KiB, Overrides{Rate: -1}},
		{ScenarioLimits, Overrides{Rate: 1}},
	} {
		if _, err := get(c.name).Apply(c.o); !errors.Is(err, ErrBadScenario) {
			t.Errorf("%s %+v: %v", c.name, c.o, err)
		}
	}
}

func TestRunWithoutTarget(t *testing.T) {
	dir := t.TempDir()
	opts := Options{ResultsDir: dir, Limits: testLimits, Logger: quiet()}
	if _, err := Run(context.Background(), DefaultScenario, opts); !errors.Is(err, ErrNoTarget) {
		t.Errorf("no target: %v", err)
	}
	if _, err := Run(context.Background(), "no-such", opts); !errors.Is(err, ErrUnknownScenario) {
		t.Errorf("unknown: %v", err)
	}
	opts.ServiceURL = "http://not-pulsar:80"
	if _, err := Run(context.Background(), DefaultScenario, opts); err == nil || !strings.Contains(err.Error(), "pulsar://") {
		t.Errorf("bad URL: %v", err)
	}
	// Nothing was measured or written: the target is resolved first.
	assertEmptyDir(t, dir)
}

func TestRunLimits(t *testing.T) {
	dir := t.TempDir()
	opts := Options{ResultsDir: dir, Limits: testLimits, GitRevision: "abc123", Logger: quiet()}
	out, err := RunLimits(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	r := out.Result
	l := r.Limits
	if l.Cores <= 0 || l.Disk.BytesPerSec <= 0 || l.Fsync.Latency.P50 <= 0 || l.Fsync.Latency.P99 <= 0 || l.Loopback.BytesPerSec <= 0 {
		t.Fatalf("limits %+v", l)
	}
	if r.Scenario != ScenarioLimits || r.GitRevision != "abc123" || r.Machine.Cores != l.Cores || r.Finished.Before(r.Started) {
		t.Fatalf("result %+v", r)
	}
	if j, h := ResultPaths(dir, r); out.ResultPath != j || out.ReportPath != h {
		t.Fatalf("paths %+v", out)
	}
	back := readResult(t, out.ResultPath)
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("file differs from the returned result:\n%+v\n%+v", back, r)
	}
	if html := readAll(t, out.ReportPath); !bytes.HasPrefix(html, []byte("<!DOCTYPE html>")) || !bytes.Contains(html, []byte("write + fdatasync")) {
		t.Fatal("report incomplete")
	}
	// Exactly the two files: scratch files are gone.
	names, err := vfs.Default.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 2 {
		t.Fatalf("results dir holds %v", names)
	}
	var sum bytes.Buffer
	if err := results.WriteSummary(&sum, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.String(), "loopback TCP") {
		t.Fatalf("summary:\n%s", sum.String())
	}
}

func TestRunLimitsCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := RunLimits(ctx, Options{ResultsDir: dir, Limits: testLimits, Logger: quiet()}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	assertEmptyDir(t, dir)
}

// ---- end to end against the stub broker ----

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// stubTarget is an in-process target over client/clienttest's stub broker,
// which speaks the real protocol from memory: a stand-in for the
// standalone node.
type stubTarget struct {
	b *clienttest.Broker

	mu               sync.Mutex
	started, stopped int
}

func newStubTarget(t *testing.T) *stubTarget {
	t.Helper()
	b, err := clienttest.Start(clienttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return &stubTarget{b: b}
}

func (s *stubTarget) Start(context.Context) (Endpoint, error) {
	s.mu.Lock()
	s.started++
	s.mu.Unlock()
	return Endpoint{ServiceURL: s.b.URL(), CreateTopic: func(_ context.Context, topic string, n int) error {
		s.b.CreatePartitionedTopic(topic, n)
		return nil
	}}, nil
}

func (s *stubTarget) Stop(context.Context) error {
	s.mu.Lock()
	s.stopped++
	s.mu.Unlock()
	return nil
}

func (s *stubTarget) Info() TargetInfo {
	return TargetInfo{Name: "stub broker (client/clienttest)", InProcess: true,
		Durability: results.Durability{Level: "none", Description: "in-memory stub broker"}}
}

// testOptions run against target with the small limits, short intervals
// and timer waits (the test machine is shared).
func testOptions(t *testing.T, target Target) Options {
	return Options{
		ResultsDir: t.TempDir(), Target: target, Limits: testLimits, GitRevision: "test",
		Logger: quiet(), Load: loadgen.RunOptions{SpinWait: -1}, CPUSamplePeriod: 20 * time.Millisecond,
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func readResult(t *testing.T, path string) *results.Result {
	t.Helper()
	r, err := results.ReadFile(vfs.Default, path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	f, err := vfs.Default.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkOutput checks what every load run must leave: a readable result
// file equal to the returned result, an HTML report, the limits, the
// machine, and a summary that prints.
func checkOutput(t *testing.T, out Output) *results.Result {
	t.Helper()
	r := out.Result
	if back := readResult(t, out.ResultPath); !reflect.DeepEqual(back, r) {
		t.Fatalf("%s differs from the returned result", out.ResultPath)
	}
	html := readAll(t, out.ReportPath)
	if !bytes.HasPrefix(html, []byte("<!DOCTYPE html>")) || !bytes.Contains(html, []byte("<svg")) {
		t.Fatalf("report %s incomplete", out.ReportPath)
	}
	if l := r.Limits; l.Cores <= 0 || l.Disk.BytesPerSec <= 0 || l.Fsync.Latency.Count == 0 || l.Loopback.BytesPerSec <= 0 {
		t.Fatalf("limits missing: %+v", l)
	}
	if r.Machine.Cores <= 0 || r.Machine.GoVersion == "" || r.GitRevision != "test" || r.FormatVersion != results.FormatVersion {
		t.Fatalf("facts missing: %+v", r.Machine)
	}
	var sum bytes.Buffer
	if err := results.WriteSummary(&sum, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"scenario", "publish", "limit", "publish (from intended time)"} {
		if !strings.Contains(sum.String(), want) {
			t.Fatalf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	return r
}

// TestRunFixedRateEndToEnd runs the default scenario, shortened, twice
// against the stub broker through the standalone hook.
func TestRunFixedRateEndToEnd(t *testing.T) {
	stub := newStubTarget(t)
	opts := testOptions(t, nil)
	var hookDir string
	opts.Standalone = func(dir string) (Target, error) {
		hookDir = dir
		if _, err := vfs.Default.Stat(dir); err != nil {
			t.Errorf("data dir not created: %v", err)
		}
		return stub, nil
	}
	opts.DataDir = t.TempDir()
	opts.Runs = 2
	opts.Overrides = Overrides{Rate: 400, Duration: time.Second, Warmup: 200 * time.Millisecond, Interval: 250 * time.Millisecond}
	var progress syncBuffer
	opts.Progress = &progress
	outs, err := Run(testContext(t), DefaultScenario, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 || outs[0].ResultPath == outs[1].ResultPath || outs[0].ReportPath == outs[1].ReportPath {
		t.Fatalf("outputs %+v", outs)
	}
	if stub.started != 1 || stub.stopped != 1 {
		t.Errorf("target started %d, stopped %d times", stub.started, stub.stopped)
	}
	if _, err := vfs.Default.Stat(hookDir); !vfs.IsNotExist(err) {
		t.Errorf("standalone data dir %s left behind: %v", hookDir, err)
	}
	if !strings.Contains(progress.String(), "msg/s") {
		t.Errorf("no progress lines:\n%s", progress.String())
	}
	for _, out := range outs {
		r := checkOutput(t, out)
		s := r.Summary
		if r.Scenario != DefaultScenario || r.Target != stub.Info().Name || r.Durability.Level != "none" ||
			r.Durability.BatchingMaxDelay.D() != time.Millisecond || r.Durability.BatchingMaxBytes != 128<<10 {
			t.Errorf("description: %+v %+v", r.Target, r.Durability)
		}
		if r.Workload.ProducerRate != 400 || r.Workload.PartitionsPerTopic != 16 || r.Workload.Duration.D() != time.Second {
			t.Errorf("workload %+v", r.Workload)
		}
		// Messages in flight at the warm-up boundary are counted by when
		// they were acknowledged or received (as OMB does), so the two
		// counts may differ by those few.
		if d := s.ConsumedMsgs - s.PublishedMsgs; d < -20 || d > 20 {
			t.Errorf("consumed %d, published %d", s.ConsumedMsgs, s.PublishedMsgs)
		}
		if s.PublishedMsgs == 0 || s.Latency.Publish.Count != s.PublishedMsgs ||
			s.Latency.EndToEnd.Count != s.ConsumedMsgs || s.TargetRate != 400 || s.Measured <= 0 {
			t.Errorf("summary %+v", s)
		}
		for _, k := range results.Kinds() {
			if r.Histograms.Get(k) == "" {
				t.Errorf("no %s histogram", k)
			}
		}
		h, err := results.DecodeHistogram(r.Histograms.Publish)
		if err != nil || h.TotalCount() != s.PublishedMsgs {
			t.Errorf("publish histogram: %v, %d values", err, h.TotalCount())
		}
		if len(r.Intervals) < 2 {
			t.Fatalf("%d intervals", len(r.Intervals))
		}
		var published int64
		for i, iv := range r.Intervals {
			published += iv.PublishedMsgs
			if iv.Elapsed <= 0 || (i > 0 && iv.Elapsed <= r.Intervals[i-1].Elapsed) {
				t.Errorf("interval %d elapsed %v", i, iv.Elapsed)
			}
		}
		if published != s.PublishedMsgs {
			t.Errorf("intervals add up to %d published, summary %d", published, s.PublishedMsgs)
		}
		if s.CPUSeconds <= 0 || r.Efficiency.BusyCores <= 0 || r.Efficiency.PublishBytesPerSecPerBusyCore <= 0 ||
			r.Efficiency.DiskShare <= 0 || r.Efficiency.LoopbackShare <= 0 {
			t.Errorf("efficiency %+v (cpu %v s)", r.Efficiency, s.CPUSeconds)
		}
		if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "in-process node") }) {
			t.Errorf("notes %q", r.Notes)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunAgainstURLWithAdmin runs against a service URL, creating the
// partitioned topics through the admin REST API.
func TestRunAgainstURLWithAdmin(t *testing.T) {
	stub := newStubTarget(t)
	var mu sync.Mutex
	var created []string
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		const prefix = "/admin/v2/persistent/public/default/"
		name, ok := strings.CutPrefix(r.URL.Path, prefix)
		name, ok2 := strings.CutSuffix(name, "/partitions")
		if r.Method != http.MethodPut || !ok || !ok2 || string(body) != "3" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path+" "+string(body), http.StatusBadRequest)
			return
		}
		mu.Lock()
		created = append(created, name)
		mu.Unlock()
		stub.b.CreatePartitionedTopic("persistent://public/default/"+name, 3)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer admin.Close()
	opts := testOptions(t, nil)
	opts.ServiceURL, opts.AdminURL = stub.b.URL(), admin.URL
	opts.Overrides = Overrides{Rate: 300, Duration: 500 * time.Millisecond, Warmup: -1, Interval: 250 * time.Millisecond,
		Topics: 2, Partitions: 3}
	outs, err := Run(testContext(t), Scenario1Topic16P100B, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := checkOutput(t, outs[0])
	if len(created) != 2 || r.Workload.Topics != 2 || r.Workload.PartitionsPerTopic != 3 || r.Workload.MessageSize != 100 {
		t.Fatalf("created %v, workload %+v", created, r.Workload)
	}
	if r.Target != stub.b.URL() || r.Durability.Level != "unknown" || r.Summary.PublishedMsgs == 0 {
		t.Fatalf("target %q durability %+v summary %+v", r.Target, r.Durability, r.Summary)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "another process on this machine") }) {
		t.Errorf("notes %q", r.Notes)
	}
	// A failing admin API fails the run with its answer.
	opts.AdminURL = admin.URL + "/nope"
	if _, err := Run(testContext(t), Scenario1Topic16P100B, opts); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("admin failure: %v", err)
	}
}

// sweepRegistry holds a short sweep.
func sweepRegistry(t *testing.T) *Registry {
	t.Helper()
	s, _ := DefaultRegistry().Lookup(ScenarioSweep1KiB)
	s.SweepFractions = []float64{0.5, 1}
	r, err := NewRegistry(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRunSweepWithGivenMaxRate(t *testing.T) {
	opts := testOptions(t, newStubTarget(t))
	opts.Registry = sweepRegistry(t)
	opts.Overrides = Overrides{Rate: 400, Duration: 600 * time.Millisecond, Warmup: -1, Interval: 200 * time.Millisecond}
	outs, err := Run(testContext(t), ScenarioSweep1KiB, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := checkOutput(t, outs[0])
	if len(r.Steps) != 2 || r.Steps[0].TargetRate != 200 || r.Steps[1].TargetRate != 400 || r.Steps[0].Name != "50%" {
		t.Fatalf("steps %+v", r.Steps)
	}
	for _, st := range r.Steps {
		if st.Summary.PublishedMsgs == 0 || st.Histograms.Publish == "" || st.Summary.Latency.Publish.Count != st.Summary.PublishedMsgs {
			t.Errorf("step %s: %+v", st.Name, st.Summary)
		}
	}
	if !reflect.DeepEqual(r.Summary, r.Steps[1].Summary) || r.Histograms != r.Steps[1].Histograms {
		t.Error("the summary is not the last step's")
	}
	var published int64
	for i, iv := range r.Intervals {
		published += iv.PublishedMsgs
		if i > 0 && iv.Elapsed <= r.Intervals[i-1].Elapsed {
			t.Errorf("interval %d goes back in time", i)
		}
	}
	if published != r.Steps[0].Summary.PublishedMsgs+r.Steps[1].Summary.PublishedMsgs {
		t.Errorf("intervals hold %d published, the steps %d and %d", published, r.Steps[0].Summary.PublishedMsgs, r.Steps[1].Summary.PublishedMsgs)
	}
	if html := readAll(t, outs[0].ReportPath); !bytes.Contains(html, []byte("throughput")) {
		t.Error("no latency-versus-throughput chart")
	}
}

// TestRunSweepFindsMaxRate covers the max-rate search, with a short
// controller period.
func TestRunSweepFindsMaxRate(t *testing.T) {
	opts := testOptions(t, newStubTarget(t))
	opts.Registry = sweepRegistry(t)
	opts.Load.RateControlPeriod = 150 * time.Millisecond
	opts.Load.MaxRateStart = 200
	opts.Overrides = Overrides{Duration: 600 * time.Millisecond, Warmup: -1, Interval: 200 * time.Millisecond}
	outs, err := Run(testContext(t), ScenarioSweep1KiB, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := checkOutput(t, outs[0])
	if len(r.Steps) != 2 || r.Steps[1].TargetRate <= 0 || r.Steps[0].TargetRate != r.Steps[1].TargetRate/2 {
		t.Fatalf("steps %+v", r.Steps)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool {
		return strings.HasPrefix(n, "sweep: max rate ") && strings.Contains(n, "found by a max-rate run")
	}) {
		t.Errorf("notes %q", r.Notes)
	}
}

func TestRunMaxRate(t *testing.T) {
	opts := testOptions(t, newStubTarget(t))
	opts.Load.RateControlPeriod = 150 * time.Millisecond
	opts.Overrides = Overrides{Rate: 300, Duration: 800 * time.Millisecond, Warmup: -1, Interval: 200 * time.Millisecond}
	outs, err := Run(testContext(t), ScenarioMaxRate1KiB, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := checkOutput(t, outs[0])
	if r.Summary.TargetRate != 0 || r.Workload.ProducerRate != 0 || r.Summary.PublishRate <= 0 {
		t.Fatalf("summary %+v", r.Summary)
	}
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "max rate: ") }) {
		t.Errorf("notes %q", r.Notes)
	}
}

func TestRunBacklogCatchUp(t *testing.T) {
	opts := testOptions(t, newStubTarget(t))
	if testing.Verbose() {
		opts.Progress = os.Stdout
		opts.Logger = slog.Default()
	}
	// 4,000 messages of 100 B at 2,000 msg/s: about 2 s to build. A small
	// receiver queue: a paused consumer still gets the messages its
	// permits cover, which would delay the build by a receiver queue.
	opts.Load.ReceiverQueueSize = 100
	opts.Overrides = Overrides{Rate: 2000, MessageSize: 100, BacklogBytes: 400_000, Duration: 300 * time.Millisecond,
		Warmup: -1, Interval: 100 * time.Millisecond, Partitions: 2}
	outs, err := Run(testContext(t), ScenarioBacklog1KiB, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := checkOutput(t, outs[0])
	if r.Workload.ConsumerBacklogSizeBytes != 400_000 || r.Summary.MaxBacklog < 3000 {
		t.Fatalf("workload %+v, max backlog %d", r.Workload, r.Summary.MaxBacklog)
	}
	var peak, drained bool
	for _, n := range r.Notes {
		peak = peak || strings.HasPrefix(n, "backlog: peak ")
		drained = drained || strings.HasPrefix(n, "backlog: drained ")
	}
	if !peak || !drained {
		t.Errorf("notes %q", r.Notes)
	}
}

func TestRunManyTopics(t *testing.T) {
	opts := testOptions(t, newStubTarget(t))
	opts.Overrides = Overrides{Topics: 40, Rate: 400, Duration: 500 * time.Millisecond, Warmup: -1, Interval: 250 * time.Millisecond}
	outs, err := Run(testContext(t), Scenario10kTopics, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := checkOutput(t, outs[0])
	if r.Workload.Topics != 40 || r.Workload.PartitionsPerTopic != 1 || r.Summary.PublishedMsgs == 0 {
		t.Fatalf("workload %+v summary %+v", r.Workload, r.Summary)
	}
}

// TestRunCutOffAtTimeBound: a broker that never acknowledges would keep
// the final drain waiting for 10 s; the scenario's bound cuts it off, and
// the result says so.
func TestRunCutOffAtTimeBound(t *testing.T) {
	stub := newStubTarget(t)
	opts := testOptions(t, stub)
	opts.Load.ReadyTimeout = 30 * time.Second
	opts.Overrides = Overrides{Rate: 200, Duration: 300 * time.Millisecond, Warmup: -1, Interval: 100 * time.Millisecond,
		Slack: 1500 * time.Millisecond}
	// The probe (one message) needs its receipt; then the broker stalls.
	stub.b.PauseReceiptsAfter(2, time.Minute)
	start := time.Now()
	outs, err := Run(testContext(t), DefaultScenario, opts)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 9*time.Second {
		t.Errorf("took %v: the bound did not cut the drain", took)
	}
	r := outs[0].Result
	if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "cut off at the scenario's time bound") }) {
		t.Errorf("notes %q", r.Notes)
	}
}

// TestRunInterrupted: a cancelled context stops the run and writes nothing.
func TestRunInterrupted(t *testing.T) {
	opts := testOptions(t, newStubTarget(t))
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	opts.Progress = writerFunc(func(p []byte) (int, error) { cancel(); return len(p), nil })
	opts.Overrides = Overrides{Rate: 200, Duration: 30 * time.Second, Warmup: -1, Interval: 100 * time.Millisecond}
	outs, err := Run(ctx, DefaultScenario, opts)
	if !errors.Is(err, context.Canceled) || len(outs) != 0 {
		t.Fatalf("outs %v, err %v", outs, err)
	}
	assertEmptyDir(t, opts.ResultsDir)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// ---- pieces ----

func TestResultFromReportPreservesCounts(t *testing.T) {
	rec := func(vals ...int64) (loadgen.Percentiles, string) {
		h := loadgen.NewHistogram()
		for _, v := range vals {
			_ = h.RecordValue(v)
		}
		enc, err := loadgen.Encode(h)
		if err != nil {
			t.Fatal(err)
		}
		return loadgen.Summarize(h), enc
	}
	pub, pubEnc := rec(1_000, 2_000, 3_000, 50_000_000)
	e2e, e2eEnc := rec(5_000, 6_000, 7_000, 70_000_000)
	slip, slipEnc := rec(10, 20, 30, 40)
	t0 := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	lat := loadgen.LatencySummary{Publish: pub, PublishSend: pub, SendSlip: slip, EndToEnd: e2e}
	enc := loadgen.EncodedLatencies{Publish: pubEnc, PublishSend: pubEnc, SendSlip: slipEnc, EndToEnd: e2eEnc}
	cnt := loadgen.Counters{Sent: 5, PublishedMsgs: 4, PublishedBytes: 4096, PublishErrors: 1, Abandoned: 1, ConsumedMsgs: 4, ConsumedBytes: 4096}
	rep := &loadgen.Report{
		ServiceURL: "pulsar://127.0.0.1:1", Started: t0, MeasureStart: t0.Add(time.Second),
		Finished: t0.Add(3 * time.Second), Warmup: time.Second, Measured: 2 * time.Second, TargetRate: 2,
		FinalRate: 2, Counters: cnt, PublishRate: 2, PublishBytesRate: 2048, ConsumeRate: 2, ConsumeBytesRate: 2048,
		MaxBacklog: 3, FinalBacklog: 0, Latency: lat, Histograms: enc,
		Intervals: []loadgen.Interval{
			{Time: t0.Add(time.Second), Offset: time.Second, Length: time.Second, Warmup: true, Counters: cnt},
			{Time: t0.Add(3 * time.Second), Offset: 3 * time.Second, Length: 2 * time.Second, Counters: cnt, Backlog: 3,
				Latency: lat, Histograms: enc},
		},
		Problems: []string{"something"},
	}
	w := results.Workload{Topics: 1, PartitionsPerTopic: 1, MessageSize: 1024, ProducerRate: 2}
	limits := results.Limits{Cores: 2, Disk: results.DiskLimit{BytesPerSec: 1 << 20}}
	r, err := ResultFromReport(rep, ResultInfo{Scenario: "s", Workload: w, Limits: limits, Notes: []string{"given"}})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Summary
	if s.PublishedMsgs != 4 || s.PublishedBytes != 4096 || s.PublishErrors != 1 || s.ConsumedMsgs != 4 || s.ConsumedBytes != 4096 ||
		s.Measured.D() != 2*time.Second || s.PublishRate != 2 || s.PublishBytesRate != 2048 || s.PublishErrorRate != 0.5 ||
		s.MaxBacklog != 3 || s.TargetRate != 2 || s.CPUSeconds != 0 {
		t.Fatalf("summary %+v", s)
	}
	for _, c := range []struct {
		got  results.Percentiles
		want loadgen.Percentiles
	}{{s.Latency.Publish, pub}, {s.Latency.PublishSend, pub}, {s.Latency.SendSlip, slip}, {s.Latency.EndToEnd, e2e}} {
		if c.got != results.Percentiles(c.want) || c.got.Count != 4 {
			t.Errorf("percentiles %+v, want %+v", c.got, c.want)
		}
	}
	// The encoded histograms decode to the same percentiles.
	h, err := results.DecodeHistogram(r.Histograms.EndToEnd)
	if err != nil || results.Summarize(h) != results.Percentiles(e2e) {
		t.Errorf("end-to-end histogram: %v", err)
	}
	if len(r.Intervals) != 1 {
		t.Fatalf("%d intervals: the warm-up one must be left out", len(r.Intervals))
	}
	iv := r.Intervals[0]
	if iv.Elapsed.D() != 2*time.Second || iv.Length.D() != 2*time.Second || iv.PublishedMsgs != 4 || iv.PublishRate != 2 ||
		iv.Backlog != 3 || iv.Latency.Publish != results.Percentiles(pub) || iv.Histograms.Publish != pubEnc {
		t.Errorf("interval %+v", iv)
	}
	if r.Target != rep.ServiceURL || !r.Started.Equal(t0) || r.Efficiency.DiskShare != 2048.0/(1<<20) || r.Efficiency.BusyCores != 0 {
		t.Errorf("result %+v %+v", r.Target, r.Efficiency)
	}
	want := []string{"given", "load generator: something", "load generator: 1 sends abandoned when the run stopped (neither published nor failed)"}
	if !reflect.DeepEqual(r.Notes, want) {
		t.Errorf("notes %q", r.Notes)
	}
	// Through the file and back.
	b, err := results.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := results.Unmarshal(b)
	if err != nil || !reflect.DeepEqual(back, r) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestWorkloadConversions(t *testing.T) {
	w := results.Workload{Name: "n", Topics: 3, PartitionsPerTopic: 4, MessageSize: 100, ProducersPerTopic: 2,
		SubscriptionsPerTopic: 2, ConsumerPerSubscription: 3, ProducerRate: 500, KeyDistributor: "KEY_ROUND_ROBIN",
		RandomBytesRatio: 0.5, ConsumerBacklogSizeBytes: 1 << 29, Duration: results.Duration(90 * time.Second),
		Warmup: results.Duration(30 * time.Second), Interval: results.Duration(time.Second)}
	lw := LoadgenWorkload(w)
	if err := lw.Validate(); err != nil {
		t.Fatal(err)
	}
	if lw.ConsumerBacklogSizeGB != 0.5 || lw.TestDuration() != 90*time.Second || lw.Warmup() != 30*time.Second ||
		!lw.UseRandomizedPayloads || lw.RandomizedPayloadPoolSize != 1 {
		t.Fatalf("%+v", lw)
	}
	if back := ResultWorkload(lw, 30*time.Second, 90*time.Second, time.Second); back != w {
		t.Fatalf("round trip:\n%+v\n%+v", back, w)
	}
}

func TestAdminTopicPath(t *testing.T) {
	for in, want := range map[string]string{
		"persistent://public/default/t":  "persistent/public/default/t",
		"non-persistent://a/b/c":         "non-persistent/a/b/c",
		"t":                              "persistent/public/default/t",
		"a/b/c d":                        "persistent/a/b/c%20d",
		"persistent://public/default/":   "",
		"kafka://a/b/c":                  "",
		"persistent://a/b/c/d":           "",
		"persistent://public//loadgen-1": "",
	} {
		got, err := adminTopicPath(in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("%q: %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestURLTarget(t *testing.T) {
	for url, remote := range map[string]bool{
		"pulsar://127.0.0.1:6650":            false,
		"pulsar://localhost:6650":            false,
		"pulsar://[::1]:6650":                false,
		"pulsar://10.0.0.1:6650":             true,
		"pulsar+ssl://broker.example:6651":   true,
		"pulsar://localhost:1,10.0.0.2:6650": true,
	} {
		u := &URLTarget{ServiceURL: url}
		if _, err := u.Start(context.Background()); err != nil {
			t.Errorf("%s: %v", url, err)
		}
		if info := u.Info(); info.Remote != remote || info.Name != url || info.Durability.Level != "unknown" || info.InProcess {
			t.Errorf("%s: %+v", url, info)
		}
	}
	for _, bad := range []*URLTarget{{ServiceURL: "http://x:1"}, {ServiceURL: "pulsar://x:1", AdminURL: "pulsar://x:2"}} {
		if _, err := bad.Start(context.Background()); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	stated := results.Durability{Level: "fsync E3/W3/A2"}
	if d := (&URLTarget{ServiceURL: "pulsar://x:1", Durability: stated}).Info().Durability; d != stated {
		t.Errorf("stated durability lost: %+v", d)
	}
}

func TestCPUTraceInterpolates(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := &CPUTrace{samples: []cpuSample{
		{t0, 0}, {t0.Add(time.Second), 500 * time.Millisecond}, {t0.Add(2 * time.Second), 1500 * time.Millisecond},
	}}
	for _, c := range []struct {
		a, b time.Duration
		want time.Duration
		ok   bool
	}{
		{0, 2 * time.Second, 1500 * time.Millisecond, true},
		{0, time.Second, 500 * time.Millisecond, true},
		{500 * time.Millisecond, 1500 * time.Millisecond, 750 * time.Millisecond, true},
		{-time.Second, time.Second, 0, false},
		{time.Second, 3 * time.Second, 0, false},
		{time.Second, 0, 0, false},
	} {
		got, ok := tr.Between(t0.Add(c.a), t0.Add(c.b))
		if got != c.want || ok != c.ok {
			t.Errorf("%v..%v: %v %v, want %v %v", c.a, c.b, got, ok, c.want, c.ok)
		}
	}
	if _, ok := (*CPUTrace)(nil).Between(t0, t0); ok {
		t.Error("nil trace covers a span")
	}
	// A live trace sees CPU spent between its samples.
	live := StartCPUTrace(5 * time.Millisecond)
	a := time.Now().Round(0)
	burnCPU(50 * time.Millisecond)
	b := time.Now().Round(0)
	if err := live.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := live.Stop(); err != nil { // idempotent
		t.Fatal(err)
	}
	if d, ok := live.Between(a, b); !ok || d <= 0 {
		t.Errorf("live trace: %v %v", d, ok)
	}
}

// burnCPU keeps one core busy for at least d of CPU time.
func burnCPU(d time.Duration) {
	start, _ := ProcessCPU()
	x := 0
	for {
		for i := range 100000 {
			x += i
		}
		if now, _ := ProcessCPU(); now.Sub(start).Total() >= d {
			break
		}
	}
	_ = x
}

func TestWriteOutputPicksFreeNames(t *testing.T) {
	dir := t.TempDir()
	r := &results.Result{FormatVersion: results.FormatVersion, Scenario: "s", Started: now(), GitRevision: "x"}
	var paths []string
	for range 3 {
		out, err := writeOutput(vfs.Default, dir, r)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, out.ResultPath, out.ReportPath)
	}
	slices.Sort(paths)
	if len(slices.Compact(paths)) != 6 {
		t.Fatalf("paths %v", paths)
	}
}

// TestShortTailIntervalMerged: the few milliseconds after the last full
// interval are folded into it, counts and histograms added.
func TestShortTailIntervalMerged(t *testing.T) {
	hist := func(vals ...int64) (loadgen.LatencySummary, loadgen.EncodedLatencies) {
		h := loadgen.NewHistogram()
		for _, v := range vals {
			_ = h.RecordValue(v)
		}
		enc, err := loadgen.Encode(h)
		if err != nil {
			t.Fatal(err)
		}
		p := loadgen.Summarize(h)
		return loadgen.LatencySummary{Publish: p, PublishSend: p, SendSlip: p, EndToEnd: p},
			loadgen.EncodedLatencies{Publish: enc, PublishSend: enc, SendSlip: enc, EndToEnd: enc}
	}
	t0 := time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	l1, e1 := hist(1000, 2000, 3000)
	l2, e2 := hist(9_000_000)
	rep := &loadgen.Report{MeasureStart: t0, Measured: time.Second, Intervals: []loadgen.Interval{
		{Time: t0.Add(time.Second), Length: time.Second, Counters: loadgen.Counters{PublishedMsgs: 3, ConsumedMsgs: 3}, Latency: l1, Histograms: e1},
		{Time: t0.Add(time.Second + 20*time.Millisecond), Length: 20 * time.Millisecond, Backlog: 7,
			Counters: loadgen.Counters{PublishedMsgs: 1, ConsumedMsgs: 1}, Latency: l2, Histograms: e2},
	}}
	ivs := intervals(rep, t0, nil, time.Second)
	if len(ivs) != 1 {
		t.Fatalf("%d intervals", len(ivs))
	}
	iv := ivs[0]
	if iv.PublishedMsgs != 4 || iv.ConsumedMsgs != 4 || iv.Length.D() != 1020*time.Millisecond || iv.Backlog != 7 ||
		iv.Latency.Publish.Count != 4 || iv.Latency.EndToEnd.Max < 8_990_000 || iv.Elapsed.D() != 1020*time.Millisecond {
		t.Fatalf("%+v", iv)
	}
	h, err := results.DecodeHistogram(iv.Histograms.SendSlip)
	if err != nil || h.TotalCount() != 4 {
		t.Fatalf("merged histogram: %v", err)
	}
	// A tail of half an interval or more stays.
	rep.Intervals[1].Length = 600 * time.Millisecond
	if n := len(intervals(rep, t0, nil, time.Second)); n != 2 {
		t.Fatalf("%d intervals", n)
	}
}
