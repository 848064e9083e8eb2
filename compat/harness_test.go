// Package compat_test is the compatibility suite: it drives the official
// Pulsar Go client (github.com/apache/pulsar-client-go v0.19.0) and its
// admin library against a real Magnetar broker running in the test process,
// over loopback TCP and HTTP, with managed ledgers over the in-memory
// BookKeeper and a memory metadata store.
//
// Every test fails if the client logged a warning or an error that a
// correct broker does not cause (see clientLog), so protocol mistakes that
// the client survives by reconnecting are caught too.
//
//	go test -race ./compat/
package compat_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/magnetar/magnetar/broker"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/testutil"
	"github.com/magnetar/magnetar/managedledger"
	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/memory"
)

// node is a broker with its stores, an HTTP server for the admin API and
// a client log.
type node struct {
	t       testing.TB
	broker  *broker.Broker
	url     string // pulsar://127.0.0.1:port
	httpURL string
	srv     *httptest.Server
	store   metastore.Store
	mem     *memory.Server
	bk      *managedledger.MemBookKeeper
	factory *managedledger.MLFactory
	log     *clientLog
}

// startNode starts a broker on loopback ports.
func startNode(t testing.TB, tweak ...func(*broker.Options)) *node {
	t.Helper()
	n := &node{t: t, log: newClientLog(t)}
	n.mem = memory.New(metastore.Options{})
	store, err := n.mem.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	n.store = store
	n.bk = managedledger.NewMemBookKeeper(bufs.Default)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("MAGNETAR_COMPAT_VERBOSE") != "" {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n.factory, err = managedledger.NewFactory(managedledger.Options{
		Store:               store,
		BookKeeper:          n.bk,
		MarkDeleteRateLimit: -1,
		Logger:              quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	reg := prometheus.NewRegistry()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	n.srv = httptest.NewServer(mux)
	n.httpURL = n.srv.URL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := broker.Options{
		ServiceListener:     ln,
		AdvertisedAddress:   "127.0.0.1",
		WebServiceURL:       n.httpURL,
		MetadataStore:       store,
		ManagedLedgers:      n.factory,
		ManagedLedgerConfig: managedledger.Config{EnsembleSize: 1, WriteQuorum: 1, AckQuorum: 1},
		Logger:              quiet,
		StatsInterval:       200 * time.Millisecond,
		Registerer:          reg,
	}
	for _, f := range tweak {
		f(&opts)
	}
	n.broker, err = broker.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.broker.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.broker.RegisterHTTP(mux)
	n.url = n.broker.ServiceURL()
	t.Cleanup(n.stop)
	return n
}

// startNodeWithMetrics starts a node whose HTTP server also serves
// /metrics (every node does).
func startNodeWithMetrics(t testing.TB) *node { return startNode(t) }

func (n *node) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.broker.Close(ctx); err != nil {
		n.t.Errorf("broker close: %v", err)
	}
	n.srv.Close()
	_ = n.factory.Close()
	_ = n.bk.Close()
	_ = n.store.Close()
	_ = n.mem.Close()
	// Every payload buffer of the broker, its managed ledgers and the
	// in-memory BookKeeper came back (one node runs at a time).
	if live := bufs.Default.LiveBuffers(); live != 0 && !n.t.Failed() {
		n.t.Errorf("%d payload buffers were not released", live)
	}
}

// client returns a Pulsar client for the node, closed at the end of the
// test.
func (n *node) client(tweak ...func(*pulsar.ClientOptions)) pulsar.Client {
	n.t.Helper()
	opts := pulsar.ClientOptions{
		URL:              n.url,
		OperationTimeout: 10 * time.Second,
		Logger:           plog.NewLoggerWithSlog(slog.New(n.log)),
	}
	for _, f := range tweak {
		f(&opts)
	}
	c, err := pulsar.NewClient(opts)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(c.Close)
	return c
}

// admin returns an admin client for the node.
func (n *node) admin() pulsaradmin.Client {
	n.t.Helper()
	a, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: n.httpURL})
	if err != nil {
		n.t.Fatal(err)
	}
	return a
}

// topic returns a fresh topic name for the test.
func topic(t testing.TB, kind string) string {
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return fmt.Sprintf("persistent://public/default/%s-%s-%d", name, kind, time.Now().UnixNano())
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ---- The client's log ----

// clientLog is a slog handler for the Pulsar client's log: it keeps what
// the client logs at warning level and above, and fails the test at its end
// for records a correct broker does not cause (allowed lists the patterns
// that are normal: closing while requests are in flight, and the like).
type clientLog struct {
	t       testing.TB
	mu      sync.Mutex
	records []string
	allowed []*regexp.Regexp
}

func newClientLog(t testing.TB) *clientLog {
	l := &clientLog{t: t}
	l.allow(
		`connection closed`,                // clients closing at the end of a test
		`Failed to close`,                  // closing an already-closed client
		`Connection was closed`,            // teardown races
		`Failed to write on connection`,    // teardown races
		`Reconnected consumer to broker`,   // informational, after a seek or an unload
		`Failed to receive message`,        // teardown
		`Discarding message since`,         // seek: old messages dropped by the client
		`The consumer .* is closed`,        // teardown
		`producer is closed`,               // teardown
		`consumer state is closed`,         // teardown
		`unsubscribe when consumer closed`, // teardown
		// The client filters out what precedes a reader's or a seek's
		// start id itself; the broker delivers from the start entry, as
		// Pulsar does, and the client warns when a whole entry is dropped.
		`all filtered`,
	)
	if os.Getenv("MAGNETAR_COMPAT_VERBOSE") == "" {
		t.Cleanup(l.check)
	}
	return l
}

// allow adds patterns of records that do not fail the test.
func (l *clientLog) allow(patterns ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range patterns {
		l.allowed = append(l.allowed, regexp.MustCompile(p))
	}
}

func (l *clientLog) check() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.records {
		ok := false
		for _, a := range l.allowed {
			if a.MatchString(r) {
				ok = true
				break
			}
		}
		if !ok {
			l.t.Errorf("the Pulsar client logged: %s", r)
		}
	}
}

func (l *clientLog) Enabled(_ context.Context, lvl slog.Level) bool {
	return lvl >= slog.LevelWarn || os.Getenv("MAGNETAR_COMPAT_VERBOSE") != ""
}

func (l *clientLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String())
	b.WriteString(" ")
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	if os.Getenv("MAGNETAR_COMPAT_VERBOSE") != "" {
		fmt.Fprintln(os.Stderr, "client:", b.String())
	}
	if r.Level < slog.LevelWarn {
		return nil
	}
	l.mu.Lock()
	l.records = append(l.records, b.String())
	l.mu.Unlock()
	return nil
}

func (l *clientLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrHandler{l: l, attrs: attrs}
}

func (l *clientLog) WithGroup(string) slog.Handler { return l }

// attrHandler carries a logger's fields into the records.
type attrHandler struct {
	l     *clientLog
	attrs []slog.Attr
}

func (h *attrHandler) Enabled(ctx context.Context, lvl slog.Level) bool { return h.l.Enabled(ctx, lvl) }

func (h *attrHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(h.attrs...)
	return h.l.Handle(ctx, r)
}

func (h *attrHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrHandler{l: h.l, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}

func (h *attrHandler) WithGroup(string) slog.Handler { return h }

func mustTopicName(t testing.TB, s string) *utils.TopicName {
	t.Helper()
	tn, err := utils.GetTopicName(s)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func mustNS(t testing.TB, s string) *utils.NameSpaceName {
	t.Helper()
	ns, err := utils.GetNamespaceName(s)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func autoCreation(allow bool) utils.TopicAutoCreationConfig {
	return utils.TopicAutoCreationConfig{Allow: allow, Type: utils.NonPartitioned}
}

// dumpOnFailure logs the topic's stats if the test failed, to tell a
// broker that stopped delivering from a client that stopped asking.
func (n *node) dumpOnFailure(t *testing.T, tp string) {
	if !t.Failed() {
		return
	}
	for _, path := range []string{"stats", "internalStats"} {
		resp, err := http.Get(n.httpURL + "/admin/v2/" + strings.Replace(tp, "://", "/", 1) + "/" + path)
		if err != nil {
			t.Logf("%s: %v", path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("%s: %s", path, body)
	}
}

// waitFor polls an observable state until it holds, for at most 10s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}
