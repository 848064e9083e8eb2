package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/vfs"
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
	check(Scenario1Topic16P1KiB, 1, 16, 1024, 50000, KindFixedRate)
	check(Scenario1Topic16P100B, 1, 16, 100, 50000, KindFixedRate)
	check(ScenarioMaxRate1KiB, 1, 16, 1024, 0, KindMaxRate)
	check(ScenarioSweep1KiB, 1, 16, 1024, 0, KindSweep)
	check(ScenarioBacklog1KiB, 1, 16, 1024, 50000, KindBacklog)
	check(Scenario10kTopics, 10000, 1, 1024, 10000, KindFixedRate)
	// make bench: the default scenario fits in two minutes with the limits.
	d, _ := r.Lookup(DefaultScenario)
	if total := d.Workload.Duration.D() + d.Workload.Warmup.D(); total > 100*time.Second {
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

func TestRunLoadScenariosNotImplemented(t *testing.T) {
	opts := Options{ResultsDir: t.TempDir(), Limits: testLimits}
	for _, s := range DefaultRegistry().Scenarios() {
		if s.Kind == KindLimits {
			continue
		}
		if _, err := Run(context.Background(), s.Name, opts); !errors.Is(err, base.ErrNotImplemented) {
			t.Errorf("%s: %v, want ErrNotImplemented", s.Name, err)
		}
	}
	if _, err := Run(context.Background(), "no-such", opts); !errors.Is(err, ErrUnknownScenario) {
		t.Errorf("unknown: %v", err)
	}
	assertEmptyDir(t, opts.ResultsDir)
}

func TestRunLimits(t *testing.T) {
	dir := t.TempDir()
	opts := Options{ResultsDir: dir, Limits: testLimits, GitRevision: "abc123"}
	r, err := RunLimits(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	l := r.Limits
	if l.Cores <= 0 || l.Disk.BytesPerSec <= 0 || l.Fsync.Latency.P50 <= 0 || l.Fsync.Latency.P99 <= 0 || l.Loopback.BytesPerSec <= 0 {
		t.Fatalf("limits %+v", l)
	}
	if r.Scenario != ScenarioLimits || r.GitRevision != "abc123" || r.Machine.Cores != l.Cores || r.Finished.Before(r.Started) {
		t.Fatalf("result %+v", r)
	}
	jsonPath, htmlPath := ResultPaths(dir, r)
	back, err := results.ReadFile(vfs.Default, jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, r) {
		t.Fatalf("file differs from the returned result:\n%+v\n%+v", back, r)
	}
	f, err := vfs.Default.Open(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	html, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(html, []byte("<!DOCTYPE html>")) || !bytes.Contains(html, []byte("write + fdatasync")) {
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
	if _, err := RunLimits(ctx, Options{ResultsDir: dir, Limits: testLimits}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	assertEmptyDir(t, dir)
}
