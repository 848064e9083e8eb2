package itest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/zktest"
	"github.com/magnetar/magnetar/ledger"
	"github.com/magnetar/magnetar/metastore"
)

// waitTimeout bounds every wait of these tests; a correct system never
// comes near it.
const waitTimeout = 60 * time.Second

// childEnv marks a re-executed test binary (see TestHelperWriter).
const childEnv = "MAGNETAR_ITEST_CHILD"

var (
	zkShared zktest.Shared

	// bin is the magnetar binary, built on first use.
	bin struct {
		once      sync.Once
		dir, path string
		conf      string // an empty bookkeeper.conf
		err       error
	}

	roots atomic.Int64 // numbers the ledgers roots of the clusters

	password = []byte("itest-password")
)

func TestMain(m *testing.M) {
	code := m.Run()
	zkShared.Close()
	if bin.dir != "" {
		os.RemoveAll(bin.dir)
	}
	os.Exit(code)
}

// long reports whether the long versions of the crash loops run.
func long() bool { return os.Getenv("MAGNETAR_LONG") == "1" }

// magnetarBinary builds cmd/magnetar once (without -race: bookies are real
// processes, measured in the benchmarks) and returns its path.
func magnetarBinary(t testing.TB) string {
	t.Helper()
	bin.once.Do(func() {
		gobin, err := exec.LookPath("go")
		if err != nil {
			bin.err = fmt.Errorf("no go command to build magnetar: %w", err)
			return
		}
		if bin.dir, bin.err = os.MkdirTemp("", "itest-magnetar-"); bin.err != nil {
			return
		}
		bin.path = filepath.Join(bin.dir, "magnetar")
		bin.conf = filepath.Join(bin.dir, "bookkeeper.conf")
		if bin.err = os.WriteFile(bin.conf, nil, 0o644); bin.err != nil {
			return
		}
		args := []string{"build", "-o", bin.path}
		if buildTags != "" {
			args = append(args, "-tags", buildTags)
		}
		cmd := exec.Command(gobin, append(args, "github.com/magnetar/magnetar/cmd/magnetar")...)
		if out, err := cmd.CombinedOutput(); err != nil {
			bin.err = fmt.Errorf("go build ./cmd/magnetar: %w\n%s", err, out)
		}
	})
	if bin.err != nil {
		t.Fatal(bin.err)
	}
	return bin.path
}

// logBuffer collects log lines (of a client, or a bookie's stderr) and
// shows their tail when the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 4<<20 { // keep the tail
		tail := bytes.Clone(b.buf.Bytes()[b.buf.Len()-1<<20:])
		b.buf.Reset()
		b.buf.Write(tail)
	}
	return b.buf.Write(p)
}

func (b *logBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}

// dumpOnFailure logs what was written to b if the test failed.
func dumpOnFailure(t testing.TB, what string, b *logBuffer) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s, last lines:\n%s", what, b.tail(6000))
		}
	})
}

// cluster is a set of bookie processes registered in the shared ZooKeeper
// under a ledgers root of their own.
type cluster struct {
	t        testing.TB
	zk       *zktest.Server
	root     string          // ledgers root, "/itest-N-name/ledgers"
	store    metastore.Store // the test's session, to observe registrations
	settings []string        // extra key=value settings of every bookie
	bookies  []*bookie

	// crashed is closed when a bookie process exits without being killed
	// by the test (a panic, a fatal error): waits end at once then.
	crashed   chan struct{}
	crashOnce sync.Once
}

// crash records that a bookie exited by itself.
func (c *cluster) crash(b *bookie, state *os.ProcessState) {
	c.t.Errorf("%s (%s) exited by itself: %v (its stderr is shown below)", b.name, b.id, state)
	c.crashOnce.Do(func() { close(c.crashed) })
}

// ctx is a context for one test step: it ends after waitTimeout, or when
// a bookie crashes.
func (c *cluster) ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	go func() {
		select {
		case <-c.crashed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx
}

// testSettings keep test bookies small, and make them roll journal segments
// and checkpoint often, so that a kill finds entries both in entry logs and
// only in the journal, sometimes over several segments.
var testSettings = []string{
	"journalQueueMaxBytes=8388608",
	"journalPreAllocSizeMB=1",
	"journalMaxSizeMB=1",
	"dbStorage_writeCacheMaxSizeMb=16",
	"dbStorage_readAheadCacheMaxSizeMb=16",
	"flushInterval=200",
}

func newCluster(t testing.TB, n int, settings []string) *cluster {
	t.Helper()
	magnetarBinary(t)
	zk := zkShared.Get(t)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, t.Name())
	c := &cluster{
		t:        t,
		zk:       zk,
		root:     fmt.Sprintf("/itest-%d-%s/ledgers", roots.Add(1), name),
		settings: settings,
		crashed:  make(chan struct{}),
	}
	c.store = c.openStore(t)
	// Start the bookies concurrently: each is a process start, a journal
	// open and a ZooKeeper session.
	c.bookies = make([]*bookie, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		c.bookies[i] = c.newBookie(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.bookies[i].start()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return c
}

// openStore opens a metadata store session on the cluster's ZooKeeper,
// closed when t ends.
func (c *cluster) openStore(t testing.TB) metastore.Store {
	t.Helper()
	s, err := metastore.Open(c.zk.URL(""), metastore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client returns a ledger client with a metadata store session of its own,
// closed when t ends; its log is shown if t fails.
func (c *cluster) client(t testing.TB, name string) *ledger.Client {
	t.Helper()
	logs := &logBuffer{}
	dumpOnFailure(t, "client "+name+" log", logs)
	cl, err := ledger.NewClient(ledger.Options{
		Store:       c.openStore(t),
		LedgersRoot: c.root,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// byID returns the bookie with a registered id.
func (c *cluster) byID(id string) *bookie {
	for _, b := range c.bookies {
		if b.id == id {
			return b
		}
	}
	c.t.Fatalf("no bookie %s in the cluster", id)
	return nil
}

// registration returns the stat of a bookie's writable registration node,
// and whether it exists.
func (c *cluster) registration(id string) (metastore.Stat, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.store.Exists(ctx, c.root+"/available/"+id)
}

// bookie is one `magnetar bookie` process (or the directories of a killed
// one, which start runs again).
type bookie struct {
	c    *cluster
	name string
	dir  string
	logs *logBuffer

	// Set by the first start: a restart binds the same port, so that the
	// bookie keeps its id.
	port     int
	id       string
	httpAddr string

	cmd      *exec.Cmd
	exited   chan struct{}
	killed   atomic.Bool            // the test killed it: its exit is no crash
	starting atomic.Bool            // start reports an exit, not crash
	replayed atomic.Pointer[string] // what its last start replayed
	owner    int64                  // ZooKeeper session owning the registration
}

func (c *cluster) newBookie(i int) *bookie {
	b := &bookie{c: c, name: fmt.Sprintf("bookie-%d", i), dir: c.t.TempDir(), logs: &logBuffer{}}
	dumpOnFailure(c.t, b.name+" stderr", b.logs)
	c.t.Cleanup(b.kill)
	return b
}

// logLine is what the tests read from a bookie's JSON log lines.
type logLine struct {
	Msg     string `json:"msg"`
	ID      string `json:"id"`
	Addr    string `json:"addr"`
	Records int    `json:"records"`
	From    string `json:"from"`
}

// start runs the bookie process and waits until it has registered in
// ZooKeeper and its HTTP heartbeat answers. The first start picks the
// bookie's port (its id), below the kernel's ephemeral range so that no
// outgoing connection takes it while the bookie is down between a kill and
// a restart; a port found taken by then is replaced by another.
func (b *bookie) start() error {
	b.starting.Store(true)
	defer b.starting.Store(false)
	if b.id != "" {
		return b.startOnce()
	}
	for attempt := 1; ; attempt++ {
		b.port = pickPort()
		err := b.startOnce()
		if err == nil || attempt == 5 || !strings.Contains(b.logs.tail(2000), "address already in use") {
			return err
		}
	}
}

// pickPort returns a free loopback port below the ephemeral range, or 0
// (the kernel chooses) when that range starts too low.
func pickPort() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			low, _ = strconv.Atoi(f[0])
		}
	}
	if low < 21000 {
		return 0
	}
	for range 100 {
		p := 20000 + rand.IntN(low-20000)
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			l.Close()
			return p
		}
	}
	return 0
}

func (b *bookie) startOnce() error {
	args := []string{"bookie", "--conf", bin.conf,
		"--set", "bindAddress=127.0.0.1",
		"--set", "bookiePort=" + strconv.Itoa(b.port),
		"--set", "prometheusStatsHttpPort=0",
		"--set", "journalDirectory=" + filepath.Join(b.dir, "journal"),
		"--set", "ledgerDirectories=" + filepath.Join(b.dir, "ledgers"),
		"--set", "metadataServiceUri=zk+hierarchical://" + b.c.zk.Addr + b.c.root,
		"--set", "logFormat=json",
	}
	for _, s := range b.c.settings {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(bin.path, args...)
	cmd.Dir = b.dir
	cmd.Env = cleanEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	b.killed.Store(false)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", b.name, err)
	}
	exited := make(chan struct{})
	started := make(chan logLine, 1)
	listening := make(chan string, 1)
	go func() {
		defer close(exited)
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadBytes('\n')
			b.logs.Write(line)
			var l logLine
			if json.Unmarshal(line, &l) == nil {
				switch l.Msg {
				case "bookie started":
					started <- l
				case "HTTP endpoint listening":
					listening <- l.Addr
				case "journal replayed":
					r := fmt.Sprintf("%d journal records replayed from %s", l.Records, l.From)
					b.replayed.Store(&r)
				}
			}
			if err != nil {
				_ = cmd.Wait()
				if !b.killed.Load() && !b.starting.Load() {
					b.c.crash(b, cmd.ProcessState)
				}
				return
			}
		}
	}()
	b.cmd, b.exited = cmd, exited

	timeout := time.After(waitTimeout)
	var httpAddr string
	for seen := false; httpAddr == "" || !seen; {
		select {
		case a := <-listening:
			httpAddr = a
		case l := <-started:
			_, port, err := net.SplitHostPort(l.ID)
			if err != nil {
				return fmt.Errorf("%s: bad bookie id %q", b.name, l.ID)
			}
			p, _ := strconv.Atoi(port)
			if b.port != 0 && p != b.port {
				return fmt.Errorf("%s: started on port %d, not %d", b.name, p, b.port)
			}
			if b.id != "" && l.ID != b.id {
				return fmt.Errorf("%s: restarted as %s, not %s", b.name, l.ID, b.id)
			}
			b.port, b.id, seen = p, l.ID, true
		case <-exited:
			return fmt.Errorf("%s exited at start: %s\n%s", b.name, cmd.ProcessState, b.logs.tail(3000))
		case <-timeout:
			return fmt.Errorf("%s did not start within %v:\n%s", b.name, waitTimeout, b.logs.tail(3000))
		}
	}
	b.httpAddr = httpAddr
	// Observable readiness: the registration node, owned by this process's
	// session (a killed process's node lingers until its session expires),
	// and the heartbeat.
	prev := b.owner
	err = poll(func() (bool, error) {
		st, ok, err := b.c.registration(b.id)
		if ok && st.EphemeralOwner != prev {
			b.owner = st.EphemeralOwner
			return true, nil
		}
		return false, err
	})
	if err != nil {
		return fmt.Errorf("%s: registration of %s: %w", b.name, b.id, err)
	}
	if err := poll(b.heartbeat); err != nil {
		return fmt.Errorf("%s: heartbeat: %w", b.name, err)
	}
	return nil
}

func (b *bookie) heartbeat() (bool, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get("http://" + b.httpAddr + "/heartbeat")
	if err != nil {
		return false, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "OK", nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (b *bookie) kill() {
	if b.cmd == nil {
		return
	}
	b.killed.Store(true)
	_ = b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
	b.cmd = nil
}

// restart starts a killed bookie again on the same directories and port.
func (b *bookie) restart(t testing.TB) {
	t.Helper()
	if b.cmd != nil {
		t.Fatalf("%s is running", b.name)
	}
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
}

// cleanEnv is the environment without MAGNETAR_ settings, so that the
// bookies run with the configuration the tests give them.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAGNETAR_") {
			env = append(env, kv)
		}
	}
	return env
}

// poll waits for cond to hold, checking an observable state every few
// milliseconds, for at most waitTimeout.
func poll(cond func() (bool, error)) error {
	deadline := time.Now().Add(waitTimeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not reached within %v (last error: %v)", waitTimeout, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// payload is the content of entry e of ledger l: its ids in text, then
// pseudo-random bytes; 16 to 1040 bytes long.
func payload(l base.LedgerID, e base.EntryID) []byte {
	rng := rand.New(rand.NewPCG(uint64(l), uint64(e)))
	b := fmt.Appendf(nil, "L%d E%d ", l, e)
	n := 16 + rng.IntN(1025)
	for len(b) < n {
		b = append(b, byte(rng.Uint32()))
	}
	return b
}

// quorum is a replication setting.
type quorum struct {
	name    string
	e, w, a int
}

var (
	e3w3a2 = quorum{"E3W3A2", 3, 3, 2}
	e3w2a2 = quorum{"E3W2A2", 3, 2, 2}
)

func (q quorum) create() ledger.CreateOptions {
	return ledger.CreateOptions{Ensemble: q.e, WriteQuorum: q.w, AckQuorum: q.a, Password: password}
}

// checkEntries reads entries 0..last through r and checks each against
// payload; it returns their bytes.
func checkEntries(ctx context.Context, t testing.TB, what string,
	read func(context.Context, base.EntryID, base.EntryID) ([]ledger.Entry, error), l base.LedgerID, last base.EntryID) [][]byte {
	t.Helper()
	var out [][]byte
	// In chunks, so that one Read is not one huge allocation.
	for first := base.EntryID(0); first <= last; first += 500 {
		end := min(first+499, last)
		es, err := read(ctx, first, end)
		if err != nil {
			t.Fatalf("%s: read %d..%d of ledger %d: %v", what, first, end, l, err)
		}
		if len(es) != int(end-first+1) {
			ledger.ReleaseEntries(es)
			t.Fatalf("%s: read %d..%d returned %d entries", what, first, end, len(es))
		}
		for i, e := range es {
			want := first + base.EntryID(i)
			if e.ID != want {
				ledger.ReleaseEntries(es)
				t.Fatalf("%s: entry %d came back as %d", what, want, e.ID)
			}
			if got := e.Data.Bytes(); !bytes.Equal(got, payload(l, want)) {
				ledger.ReleaseEntries(es)
				t.Fatalf("%s: ledger %d entry %d: %d bytes %.40q, want %.40q", what, l, want, len(got), got, payload(l, want))
			}
			out = append(out, bytes.Clone(e.Data.Bytes()))
		}
		ledger.ReleaseEntries(es)
	}
	return out
}

// adder drives a write handle: it adds payload(l, e) for e = 0, 1, 2, ...
// with at most window adds in flight, from one goroutine, and records every
// outcome in callback order.
type adder struct {
	c      *cluster
	h      *ledger.WriteHandle
	window chan struct{}
	stop   chan struct{}
	done   chan struct{} // closed once the sender ended and every callback came

	mu struct {
		sync.Mutex
		sent      int
		senderEnd bool
		results   []addResult
		confirmed int
		waiters   []confirmWaiter
	}
}

type addResult struct {
	want, got base.EntryID
	err       error
}

type confirmWaiter struct {
	n  int
	ch chan struct{}
}

// startAdder adds n entries (n <= 0: until stop, at most a million and two
// minutes) with window in flight.
func startAdder(c *cluster, h *ledger.WriteHandle, n, window int) *adder {
	a := &adder{c: c, h: h, window: make(chan struct{}, window), stop: make(chan struct{}), done: make(chan struct{})}
	limit := n
	if limit <= 0 {
		limit = 1_000_000
	}
	go func() {
		end := time.Now().Add(2 * time.Minute)
		for e := base.EntryID(0); int(e) < limit && time.Now().Before(end); e++ {
			select {
			case a.window <- struct{}{}:
			case <-a.stop:
				a.senderDone()
				return
			}
			a.mu.Lock()
			a.mu.sent++
			a.mu.Unlock()
			h.AddEntry(bufsOf(payload(h.ID(), e)), ledger.AddFunc(func(got base.EntryID, err error) {
				a.completed(addResult{want: e, got: got, err: err})
			}))
		}
		a.senderDone()
	}()
	return a
}

func (a *adder) senderDone() {
	a.mu.Lock()
	a.mu.senderEnd = true
	a.checkDoneLocked()
	a.mu.Unlock()
}

func (a *adder) completed(r addResult) {
	a.mu.Lock()
	a.mu.results = append(a.mu.results, r)
	if r.err == nil {
		a.mu.confirmed++
	}
	kept := a.mu.waiters[:0]
	for _, w := range a.mu.waiters {
		if a.mu.confirmed >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	a.mu.waiters = kept
	a.checkDoneLocked()
	a.mu.Unlock()
	<-a.window
}

func (a *adder) checkDoneLocked() {
	if a.mu.senderEnd && len(a.mu.results) == a.mu.sent {
		select {
		case <-a.done:
		default:
			close(a.done)
		}
	}
}

// waitConfirmed waits until n adds were confirmed.
func (a *adder) waitConfirmed(t testing.TB, n int) {
	t.Helper()
	a.mu.Lock()
	ch := make(chan struct{})
	if a.mu.confirmed >= n {
		close(ch)
	} else {
		a.mu.waiters = append(a.mu.waiters, confirmWaiter{n: n, ch: ch})
	}
	a.mu.Unlock()
	select {
	case <-ch:
	case <-a.done:
		if a.confirmedCount() < n {
			t.Fatalf("the adds ended with %d confirmed, waiting for %d: %v", a.confirmedCount(), n, a.firstError())
		}
	case <-a.c.crashed:
		t.Fatalf("a bookie crashed while waiting for %d confirmations", n)
	case <-time.After(waitTimeout):
		t.Fatalf("%d adds confirmed after %v, waiting for %d", a.confirmedCount(), waitTimeout, n)
	}
}

func (a *adder) confirmedCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.confirmed
}

func (a *adder) firstError() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.mu.results {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

// finish stops sending and waits for every callback; it returns the
// outcomes in callback order.
func (a *adder) finish(t testing.TB) []addResult {
	t.Helper()
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	return a.wait(t)
}

// wait waits for every add (of a bounded adder) to complete.
func (a *adder) wait(t testing.TB) []addResult {
	t.Helper()
	select {
	case <-a.done:
	case <-a.c.crashed:
		t.Fatal("a bookie crashed while adds were pending")
	case <-time.After(waitTimeout):
		t.Fatalf("adds still pending after %v (%d confirmed)", waitTimeout, a.confirmedCount())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.mu.results)
}

// bufsOf copies b into a pooled buffer (the ledger client takes buffers).
func bufsOf(b []byte) *bufs.Buf {
	buf := bufs.Get(len(b))
	copy(buf.Bytes(), b)
	return buf
}
