package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "ledger", 7)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON object: %q: %v", buf.String(), err)
	}
	if rec["msg"] != "shown" || rec["level"] != "WARN" || rec["ledger"] != float64(7) {
		t.Errorf("record = %v", rec)
	}

	buf.Reset()
	log, err = NewLogger(&buf, "DEBUG", "text")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("detail", "k", "v")
	if got := buf.String(); !strings.Contains(got, "level=DEBUG msg=detail k=v") {
		t.Errorf("text line = %q", got)
	}

	if _, err := NewLogger(io.Discard, "loud", "text"); !errors.Is(err, ErrBadLevel) {
		t.Errorf("bad level: %v", err)
	}
	if _, err := NewLogger(io.Discard, "info", "xml"); !errors.Is(err, ErrBadFormat) {
		t.Errorf("bad format: %v", err)
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()
}

func TestMetricsServesRegisteredCounter(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "magnetar_test_adds_total", Help: "Adds in this test."})
	reg.MustRegister(c)
	c.Add(3)

	code, ctype, body := get(t, NewMux(MuxOptions{Metrics: reg}), "/metrics")
	if code != http.StatusOK || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("GET /metrics: %d %q", code, ctype)
	}
	for _, want := range []string{
		"# TYPE magnetar_test_adds_total counter\nmagnetar_test_adds_total 3\n",
		"go_goroutines ",
		"process_cpu_seconds_total ",
		"go_build_info{",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Two registries are independent: nothing leaks through a global.
	other := NewRegistry()
	if _, _, body := get(t, NewMux(MuxOptions{Metrics: other}), "/metrics"); strings.Contains(body, "magnetar_test_adds_total") {
		t.Errorf("a second registry sees the first one's counter")
	}
}

func TestMetricsDisabled(t *testing.T) {
	if code, _, _ := get(t, NewMux(MuxOptions{}), "/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics without a registry: %d, want 404", code)
	}
}

func TestPprofOnlyWhenEnabled(t *testing.T) {
	paths := []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"}
	off := NewMux(MuxOptions{Metrics: NewRegistry()})
	on := NewMux(MuxOptions{Metrics: NewRegistry(), Pprof: true})
	for _, p := range paths {
		if code, _, _ := get(t, off, p); code != http.StatusNotFound {
			t.Errorf("pprof off: GET %s = %d, want 404", p, code)
		}
		if code, _, body := get(t, on, p); code != http.StatusOK || body == "" {
			t.Errorf("pprof on: GET %s = %d (%d bytes), want 200", p, code, len(body))
		}
	}
	if _, _, body := get(t, on, "/debug/pprof/goroutine?debug=1"); !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile body: %.80q", body)
	}
}

func TestServeListenerStopsWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, NewMux(MuxOptions{Metrics: reg}), nil) }()

	url := "http://" + ln.Addr().String() + "/metrics"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeListener after cancel: %v", err)
	}
	// The listener is closed: nothing answers any more.
	if resp, err := http.Get(url); err == nil {
		resp.Body.Close()
		t.Errorf("server still answers after shutdown")
	}
}

func TestServeReportsListenErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The port is taken: Serve must fail at once rather than block.
	err = Serve(context.Background(), ln.Addr().String(), http.NotFoundHandler(), nil)
	if err == nil || !strings.Contains(err.Error(), "telemetry: listen "+ln.Addr().String()) {
		t.Errorf("Serve on a taken port: %v", err)
	}
}
