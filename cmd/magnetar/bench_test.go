package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar/magnetar/bench"
	"github.com/magnetar/magnetar/client/clienttest"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/results"
)

// stubTarget stands in for the in-process standalone node:
// client/clienttest's broker speaks the real protocol from memory.
type stubTarget struct {
	b       *clienttest.Broker
	dataDir string
}

func (s *stubTarget) Start(context.Context) (bench.Endpoint, error) {
	return bench.Endpoint{ServiceURL: s.b.URL(), CreateTopic: func(_ context.Context, topic string, n int) error {
		s.b.CreatePartitionedTopic(topic, n)
		return nil
	}}, nil
}

func (s *stubTarget) Stop(context.Context) error { return nil }

func (s *stubTarget) Info() bench.TargetInfo {
	return bench.TargetInfo{Name: bench.TargetStandalone + " [stub broker]", InProcess: true,
		Durability: results.Durability{Level: "none (stub)"}}
}

func startStub(t *testing.T) *clienttest.Broker {
	t.Helper()
	b, err := clienttest.Start(clienttest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// withStandalone installs a stub as the standalone hook for one test.
func withStandalone(t *testing.T) *stubTarget {
	t.Helper()
	st := &stubTarget{b: startStub(t)}
	saved := benchStandalone
	benchStandalone = func(dataDir string, _ *slog.Logger) (bench.Target, error) {
		st.dataDir = dataDir
		return st, nil
	}
	t.Cleanup(func() { benchStandalone = saved })
	return st
}

// quickBench are the flags that keep a CLI benchmark run to a few seconds.
func quickBench(t *testing.T, extra ...string) (args []string, out string) {
	out = t.TempDir()
	return append([]string{"--duration", "1s", "--warmup", "0", "--rate", "300", "--interval", "250ms",
		"--out", out, "--data-dir", t.TempDir(), "--limits-time", "100ms", "--spin-wait", "-1ns"}, extra...), out
}

func TestBenchWithoutStandaloneExitsTwo(t *testing.T) {
	saved := benchStandalone
	benchStandalone = nil
	defer func() { benchStandalone = saved }()
	args, out := quickBench(t)
	code, stdout, stderr := invoke(t, nil, append([]string{"bench"}, args...)...)
	if code != exitUsage || stdout != "" || !strings.Contains(stderr, "the in-process standalone node is not available yet") ||
		!strings.Contains(stderr, "--url pulsar://HOST:6650") {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	if names, _ := vfs.Default.List(out); len(names) != 0 {
		t.Fatalf("files written: %v", names)
	}
}

// TestBenchDefaultScenario runs `magnetar bench` through the standalone
// hook (a stub broker here), as `make bench` will.
func TestBenchDefaultScenario(t *testing.T) {
	st := withStandalone(t)
	omb := filepath.Join(t.TempDir(), "omb.json")
	args, out := quickBench(t, "--omb", omb)
	code, stdout, stderr := invoke(t, nil, append([]string{"bench"}, args...)...)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"[", "msg/s", "scenario    " + bench.DefaultScenario, "publish (from intended time)",
		"limit", "efficiency", "result     " + out, "report     " + out, "omb        " + omb} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if st.dataDir == "" {
		t.Error("the standalone hook was not called")
	}
	names, err := vfs.Default.List(out)
	if err != nil || len(names) != 2 {
		t.Fatalf("results dir: %v %v", names, err)
	}
	r, err := results.ReadFile(vfs.Default, filepath.Join(out, names[0][:len(names[0])-len(filepath.Ext(names[0]))]+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Scenario != bench.DefaultScenario || r.Workload.ProducerRate != 300 || r.Workload.Warmup != 0 ||
		r.Summary.PublishedMsgs == 0 || r.Limits.Disk.BytesPerSec <= 0 || r.Durability.Level != "none (stub)" {
		t.Fatalf("result %+v", r.Summary)
	}
	var o map[string]any
	if err := json.Unmarshal(readFile(t, omb), &o); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"workload", "driver", "publishRate", "aggregatedPublishLatency99pct", "aggregatedEndToEndLatency99pct"} {
		if _, ok := o[k]; !ok {
			t.Errorf("OMB file lacks %q", k)
		}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBenchAgainstURL: --url and --admin-url (from the environment too),
// a named scenario with flags after it, and --runs.
func TestBenchAgainstURL(t *testing.T) {
	b := startStub(t)
	var mu sync.Mutex
	created := 0
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/admin/v2/persistent/"), "/partitions")
		var n int
		if _, err := fmt.Sscan(string(body), &n); err != nil || r.Method != http.MethodPut {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		b.CreatePartitionedTopic("persistent://"+name, n)
		mu.Lock()
		created++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer admin.Close()
	// Without an admin URL the stub cannot make partitioned topics.
	noAdmin, _ := quickBench(t, "--url", b.URL())
	code, _, stderr := invoke(t, nil, append([]string{"bench"}, noAdmin...)...)
	if code != exitFailure || !strings.Contains(stderr, "hint: give --admin-url") {
		t.Fatalf("without admin URL: exit %d, stderr:\n%s", code, stderr)
	}
	env := map[string]string{"MAGNETAR_BENCH_URL": b.URL(), "MAGNETAR_BENCH_ADMIN_URL": admin.URL}
	args, out := quickBench(t, "--partitions", "2", "--runs", "2", "--quiet", "--durability", "fsync E1/W1/A1")
	code, stdout, stderr := invoke(t, env, append([]string{"bench", bench.Scenario1Topic16P100B}, args...)...)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if created != 2 || strings.Contains(stdout, "MiB/s |") || strings.Count(stdout, "report     ") != 2 {
		t.Fatalf("created %d topics; stdout:\n%s", created, stdout)
	}
	names, _ := vfs.Default.List(out)
	var runs []*results.Result
	for _, n := range names {
		if strings.HasSuffix(n, ".json") {
			r, err := results.ReadFile(vfs.Default, filepath.Join(out, n))
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, r)
		}
	}
	if len(runs) != 2 {
		t.Fatalf("files %v", names)
	}
	for _, r := range runs {
		if r.Target != b.URL() || r.Durability.Level != "fsync E1/W1/A1" || r.Workload.PartitionsPerTopic != 2 || r.Workload.MessageSize != 100 {
			t.Errorf("result %q %+v %+v", r.Target, r.Durability, r.Workload)
		}
	}
}

func TestBenchUsageErrors(t *testing.T) {
	withStandalone(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "no-such-scenario", "--limits-time", "1ms"}, `unknown scenario "no-such-scenario"`},
		{[]string{"bench", bench.DefaultScenario, "--rate", "x"}, `invalid value "x" for flag -rate`},
		{[]string{"bench", bench.DefaultScenario, "extra"}, "unexpected arguments"},
		{[]string{"bench", "--backlog", "1MiB", "--limits-time", "1ms"}, "not a backlog scenario"},
		{[]string{"bench", "--backlog", "lots"}, `bad size "lots"`},
		{[]string{"bench", "--runs", "0"}, "--runs must be at least 1"},
		{[]string{"bench", "list", "x"}, "takes no arguments"},
	} {
		code, _, stderr := invoke(t, nil, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

func TestBenchList(t *testing.T) {
	code, out, _ := invoke(t, nil, "bench", "list")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, s := range bench.DefaultRegistry().Scenarios() {
		if !strings.Contains(out, s.Name) || !strings.Contains(out, s.Description) {
			t.Errorf("%s missing:\n%s", s.Name, out)
		}
	}
	if !strings.Contains(out, bench.DefaultScenario+" (default)") || !strings.Contains(out, "2m15s") {
		t.Errorf("default or bound missing:\n%s", out)
	}
}

func TestBenchLimits(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := invoke(t, nil, "bench", "limits", "--out", out, "--data-dir", t.TempDir(), "--limits-time", "100ms")
	if code != exitOK || !strings.Contains(stdout, "loopback TCP") || !strings.Contains(stdout, "report     "+out) {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// ---- compare ----

// syntheticRun is a result whose metrics are scaled: latency by lat,
// throughput by rate.
func syntheticRun(t *testing.T, dir string, i int, lat, rate float64) string {
	t.Helper()
	p := func(ns float64) results.Percentiles {
		return results.Percentiles{Count: 1000, Mean: ns * lat, Min: int64(ns * lat / 2), P50: int64(ns * lat),
			P99: int64(3 * ns * lat), P999: int64(5 * ns * lat), Max: int64(9 * ns * lat)}
	}
	r := &results.Result{
		FormatVersion: results.FormatVersion, Scenario: "synthetic", Driver: "magnetar", Target: "x",
		Started: time.Date(2026, 11, 21, 0, i, 0, 0, time.UTC),
		Summary: results.Summary{Measured: results.Duration(time.Minute), TargetRate: 1000,
			Rates:   results.Rates{PublishRate: 1000 * rate, ConsumeRate: 1000 * rate, PublishBytesRate: 1e6 * rate},
			Latency: results.LatencySet{Publish: p(1e6), PublishSend: p(9e5), SendSlip: p(1e4), EndToEnd: p(2e6)}},
	}
	path := filepath.Join(dir, fmt.Sprintf("run-%02d.json", i))
	if err := results.WriteFile(vfs.Default, path, r); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBenchCompareVerdicts(t *testing.T) {
	dir := t.TempDir()
	// Noise of about ±2%, the same on both sides.
	noise := []float64{1.00, 1.02, 0.98, 1.01, 0.99}
	var base, noisy, slower []string
	for i, n := range noise {
		base = append(base, syntheticRun(t, dir, i, n, 2-n))
		noisy = append(noisy, syntheticRun(t, dir, 10+i, noise[(i+2)%5], 2-noise[(i+3)%5]))
		slower = append(slower, syntheticRun(t, dir, 20+i, 1.3*n, 2-n)) // latency +30%
	}
	cmp := func(args ...string) (int, string, string) {
		return invoke(t, nil, append([]string{"bench", "compare"}, args...)...)
	}

	code, out, errOut := cmp(append(append(append([]string{}, base...), "--"), slower...)...)
	if code != exitFailure || !strings.Contains(out, "verdict: REGRESSED") || !strings.Contains(errOut, "regression past the 5% threshold: publish.p50 +30.0%") {
		t.Errorf("regression: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = cmp(append(append(append([]string{"--threshold", "5%"}, base...), "--"), noisy...)...)
	if code != exitOK || !strings.Contains(out, "verdict: NO SIGNIFICANT CHANGE") {
		t.Errorf("noise: exit %d\n%s\n%s", code, out, errOut)
	}
	// Past a higher threshold the 30% regression does not count.
	code, out, _ = cmp("--threshold", "0.5", "--old", strings.Join(base, ","), "--new", strings.Join(slower, ","))
	if code != exitOK {
		t.Errorf("threshold 50%%: exit %d\n%s", code, out)
	}
	// Improvement, new faster than old, passes.
	if code, out, _ = cmp(append(append(append([]string{}, slower...), "--"), base...)...); code != exitOK || !strings.Contains(out, "IMPROVED") {
		t.Errorf("improvement: exit %d\n%s", code, out)
	}
	// Too few runs to decide: not a pass.
	code, out, errOut = cmp(base[0], base[1], "--", slower[0], slower[1])
	if code != exitUsage || !strings.Contains(out, "INSUFFICIENT RUNS") || !strings.Contains(errOut, "cannot decide") {
		t.Errorf("insufficient: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, bad := range [][]string{
		{base[0], slower[0]},                           // no separator
		{"--", slower[0]},                              // nothing old
		{"--threshold", "5", base[0], "--", base[1]},   // 5 without %
		{"--old", base[0], "--new", base[1], base[2]},  // both forms
		{"--metrics", "nope", base[0], "--", base[1]},  // unknown metric
		{"--threshold", "-1%", base[0], "--", base[1]}, // negative
	} {
		if code, _, _ := cmp(bad...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	if code, _, errOut := cmp(filepath.Join(dir, "missing.json"), "--", base[0]); code != exitFailure || !strings.Contains(errOut, "missing.json") {
		t.Errorf("missing file: exit %d %q", code, errOut)
	}
	if code, out, _ := cmp("--help"); code != exitOK || !strings.Contains(out, "Usage: magnetar bench compare") {
		t.Errorf("help: exit %d %q", code, out)
	}
}

func TestParseHelpers(t *testing.T) {
	for in, want := range map[string]float64{"5%": 0.05, "0.05": 0.05, "12.5%": 0.125} {
		if got, err := parseThreshold(in); err != nil || got != want {
			t.Errorf("threshold %q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"5", "0", "x", "-3%", "NaN"} {
		if _, err := parseThreshold(bad); err == nil {
			t.Errorf("threshold %q accepted", bad)
		}
	}
	for in, want := range map[string]int64{"1048576": 1 << 20, "512KiB": 512 << 10, "256MiB": 256 << 20, "1GiB": 1 << 30,
		"1GB": 1e9, "1.5 MiB": 3 << 19, "10B": 10} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("size %q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "-1MiB", "1e300GiB"} {
		if _, err := parseByteSize(bad); err == nil {
			t.Errorf("size %q accepted", bad)
		}
	}
	o, n, err := compareSides([]string{"a", "b", "--", "c"}, "", "")
	if err != nil || strings.Join(o, ",") != "a,b" || strings.Join(n, ",") != "c" {
		t.Errorf("sides %v %v %v", o, n, err)
	}
}

// ---- loadgen ----

func TestLoadgenAgainstStub(t *testing.T) {
	b := startStub(t)
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr := invoke(t, nil, "loadgen", "--url", b.URL(), "--partitions", "0", "--topics", "2", "--size", "200",
		"--rate", "300", "--duration", "1s", "--warmup", "0", "--interval", "250ms", "--spin-wait", "-1ns", "--keys", "KEY_ROUND_ROBIN",
		"--out", out)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if strings.Count(stdout, "MiB/s |") < 3 || !strings.Contains(stdout, "publish (from intended)") || !strings.Contains(stdout, "result     "+out) {
		t.Fatalf("stdout:\n%s", stdout)
	}
	r, err := results.ReadFile(vfs.Default, out)
	if err != nil {
		t.Fatal(err)
	}
	w := r.Workload
	if w.Topics != 2 || w.PartitionsPerTopic != 0 || w.MessageSize != 200 || w.ProducerRate != 300 || w.KeyDistributor != "KEY_ROUND_ROBIN" ||
		w.Duration.D() != time.Second || w.Warmup != 0 || r.Target != b.URL() || r.Summary.PublishedMsgs == 0 ||
		r.Summary.Latency.EndToEnd.Count == 0 || len(r.Intervals) < 3 || r.Summary.CPUSeconds <= 0 {
		t.Fatalf("result workload %+v summary %+v", w, r.Summary)
	}
}

// TestLoadgenWorkloadFile: an OMB workload file, with a flag overriding
// one of its keys.
func TestLoadgenWorkloadFile(t *testing.T) {
	b := startStub(t)
	yaml := writeFile(t, "w.yaml", `name: tiny
topics: 1
partitionsPerTopic: 0
messageSize: 64
payloadFile: "payload/payload-1Kb.data"
subscriptionsPerTopic: 2
consumerPerSubscription: 1
producersPerTopic: 1
producerRate: 5000
consumerBacklogSizeGB: 0
testDurationMinutes: 0.0125
warmupDurationMinutes: 0
`)
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr := invoke(t, nil, "loadgen", "--url", b.URL(), "--workload", yaml, "--rate", "200", "--interval", "250ms",
		"--spin-wait", "-1ns", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d, stderr:\n%s\n%s", code, stderr, stdout)
	}
	r, err := results.ReadFile(vfs.Default, out)
	if err != nil {
		t.Fatal(err)
	}
	w := r.Workload
	if w.Name != "tiny" || w.MessageSize != 64 || w.ProducerRate != 200 || w.SubscriptionsPerTopic != 2 || w.Duration.D() != 750*time.Millisecond {
		t.Fatalf("workload %+v", w)
	}
	if r.Summary.ConsumedMsgs != 2*r.Summary.PublishedMsgs {
		t.Errorf("two subscriptions: published %d consumed %d", r.Summary.PublishedMsgs, r.Summary.ConsumedMsgs)
	}
}

func TestLoadgenUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"loadgen", "--keys", "SOMETIMES"}, `unknown keyDistributor "SOMETIMES"`},
		{[]string{"loadgen", "--topics", "0"}, "topics 0 < 1"},
		{[]string{"loadgen", "--workload", "/nonexistent/w.yaml"}, "/nonexistent/w.yaml"},
		{[]string{"loadgen", "stray"}, "unexpected arguments"},
		{[]string{"loadgen", "--interval", "0s"}, "--interval must be positive"},
		{[]string{"loadgen", "--subscription-type", "Weird", "--url", "pulsar://127.0.0.1:1"}, "Weird"},
	} {
		code, _, stderr := invoke(t, nil, c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// signalWriter sends SIGINT to this process at the first write: the
// command's signal handler is installed by then.
type signalWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { _ = syscall.Kill(os.Getpid(), syscall.SIGINT) })
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestLoadgenStopsCleanlyOnSIGINT(t *testing.T) {
	b := startStub(t)
	out := &signalWriter{}
	var errOut bytes.Buffer
	c := &cli{stdout: out, stderr: &errOut}
	start := time.Now()
	code := c.run(context.Background(), []string{"loadgen", "--url", b.URL(), "--partitions", "0", "--rate", "200",
		"--duration", "1m", "--warmup", "0", "--interval", "200ms", "--spin-wait", "-1ns"})
	if code != exitOK || time.Since(start) > 30*time.Second {
		t.Fatalf("exit %d after %v, stderr:\n%s", code, time.Since(start), errOut.String())
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if !strings.Contains(out.buf.String(), "problem: interrupted before the end") || !strings.Contains(errOut.String(), "interrupted") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", out.buf.String(), errOut.String())
	}
}
