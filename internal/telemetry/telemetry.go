// Package telemetry owns how a Magnetar process reports on itself: its
// structured logger (log/slog, text or JSON), its Prometheus registry, and the
// HTTP handler that serves /metrics and, when asked, Go's profiler under
// /debug/pprof/.
//
// Promises:
//   - Nothing is global. NewRegistry makes a fresh registry per process (or
//     per test), with the Go runtime, process and build-info collectors;
//     components register their own metrics on the registry passed down to
//     them. Nothing is served from http.DefaultServeMux.
//   - /debug/pprof/ exists only when MuxOptions.Pprof is set; otherwise it is
//     404, like any unknown path.
//   - Serve and ServeListener return when their context ends, after a
//     graceful shutdown bounded by ShutdownTimeout.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Errors.
var (
	// ErrBadLevel: a log level other than debug, info, warn or error.
	ErrBadLevel = errors.New("telemetry: unknown log level")
	// ErrBadFormat: a log format other than text or json.
	ErrBadFormat = errors.New("telemetry: unknown log format")
)

// ParseLevel reads a log level: debug, info, warn (or warning) or error, in
// any case.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%w %q (want debug, info, warn or error)", ErrBadLevel, s)
}

// NewLogger returns a logger writing to w at level ("info" when empty) in
// format: "text" (key=value, the default when empty) or "json" (one object
// per line).
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	lvl, err := ParseLevel(level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w %q (want text or json)", ErrBadFormat, format)
}

// NewRegistry returns a fresh Prometheus registry holding the Go runtime,
// process (CPU, memory, file descriptors) and build-info collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	return reg
}

// MuxOptions says what NewMux serves.
type MuxOptions struct {
	// Metrics is served at /metrics in Prometheus text format; nil serves
	// no /metrics (metricsEnabled=false).
	Metrics *prometheus.Registry
	// Pprof serves Go's profiler under /debug/pprof/ (pprofEnabled).
	Pprof bool
	// Logger receives errors gathering metrics; nil means slog.Default().
	Logger *slog.Logger
}

// NewMux returns a mux serving what opts asks for. Callers add their own
// routes to it (the broker's admin API shares the web port), also while it
// is being served.
func NewMux(opts MuxOptions) *http.ServeMux {
	mux := http.NewServeMux()
	if opts.Metrics != nil {
		logger := opts.Logger
		if logger == nil {
			logger = slog.Default()
		}
		h := promhttp.HandlerFor(opts.Metrics, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
			Registry:      opts.Metrics, // counts scrapes in promhttp_metric_handler_errors_total
		})
		mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(opts.Metrics, h))
	}
	if opts.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index) // also serves heap, goroutine, allocs, block, mutex, threadcreate
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// ShutdownTimeout bounds how long Serve waits for in-flight requests once its
// context ends.
const ShutdownTimeout = 5 * time.Second

// Serve listens on addr (host:port) and serves h until ctx ends. A listen
// error is returned at once.
func Serve(ctx context.Context, addr string, h http.Handler, logger *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("telemetry: listen %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, h, logger)
}

// ServeListener serves h on ln until ctx ends, then shuts down gracefully
// and closes ln. It returns nil after a shutdown caused by ctx. logger (nil
// means slog.Default()) receives the HTTP server's own errors.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("telemetry: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serveErr := <-done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && err == nil {
		err = serveErr
	}
	if err != nil {
		return fmt.Errorf("telemetry: shutdown %s: %w", ln.Addr(), err)
	}
	return nil
}
