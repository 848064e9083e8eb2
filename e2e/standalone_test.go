package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/sirupsen/logrus"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/testutil"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "magnetar-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "magnetar")
	build := exec.Command("go", "build", "-o", binary, "github.com/magnetar/magnetar/cmd/magnetar")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building magnetar:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// node is a standalone process with fixed ports and data directory, so that
// it can be killed and started again in place.
type node struct {
	t                   *testing.T
	dir                 string
	broker, web, bookie int
	cmd                 *exec.Cmd
	exited              chan struct{}
}

func newNode(t *testing.T) *node {
	return &node{t: t, dir: t.TempDir(), broker: freePort(t), web: freePort(t), bookie: freePort(t)}
}

func (n *node) serviceURL() string { return fmt.Sprintf("pulsar://127.0.0.1:%d", n.broker) }
func (n *node) webURL() string     { return fmt.Sprintf("http://127.0.0.1:%d", n.web) }

// args are the node's command line.
func (n *node) args(extra ...string) []string {
	args := []string{"standalone",
		"--set", fmt.Sprintf("brokerServicePort=%d", n.broker),
		"--set", fmt.Sprintf("webServicePort=%d", n.web),
		"--set", fmt.Sprintf("bookiePort=%d", n.bookie),
		"--set", "metadataStoreUrl=embedded:" + filepath.Join(n.dir, "metadata"),
		"--set", "journalDirectory=" + filepath.Join(n.dir, "journal"),
		"--set", "ledgerDirectories=" + filepath.Join(n.dir, "ledgers"),
	}
	return append(args, extra...)
}

// start runs the node and waits until it says it is ready.
func (n *node) start(extra ...string) {
	n.t.Helper()
	cmd := exec.Command(binary, n.args(extra...)...)
	cmd.Dir = n.dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.cmd = cmd
	n.exited = make(chan struct{})
	ready := make(chan struct{})
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "standalone node ready") {
				once.Do(func() { close(ready) })
			}
			if os.Getenv("MAGNETAR_E2E_LOG") != "" || strings.Contains(line, "level=ERROR") {
				n.t.Logf("node: %s", line)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		_ = cmd.Wait()
		close(n.exited)
	}()
	select {
	case <-ready:
	case <-n.exited:
		n.t.Fatal("standalone node exited before it was ready")
	case <-time.After(60 * time.Second):
		n.kill()
		n.t.Fatal("standalone node not ready within 60s")
	}
	n.t.Cleanup(n.kill)
}

func (n *node) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() {
	n.t.Helper()
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(60 * time.Second):
		n.kill()
		n.t.Fatal("standalone node did not stop within 60s of SIGTERM")
	}
	if code := n.cmd.ProcessState.ExitCode(); code != 0 {
		n.t.Fatalf("standalone node exited with status %d after SIGTERM", code)
	}
}

func quietLogger() plog.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return plog.NewLoggerWithLogrus(l)
}

func newClient(t *testing.T, url string) pulsar.Client {
	t.Helper()
	c, err := pulsar.NewClient(pulsar.ClientOptions{
		URL:               url,
		OperationTimeout:  60 * time.Second,
		ConnectionTimeout: 10 * time.Second,
		Logger:            quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestKill9RestartKeepsAcknowledged: produce with deduplication on, kill the
// node with SIGKILL mid-stream, start it again; the producer carries on
// (re-sending what was not acknowledged), and a subscription created before
// the crash receives every acknowledged message exactly once.
func TestKill9RestartKeepsAcknowledged(t *testing.T) {
	if raceBuild {
		t.Skip("pulsar-client-go v0.19.0 races with itself on producer reconnect; make test runs e2e without -race")
	}
	n := newNode(t)
	n.start("--set", "brokerDeduplicationEnabled=true")
	client := newClient(t, n.serviceURL())
	topic := "persistent://public/default/e2e-kill9"
	ctx := context.Background()

	// The subscription exists before anything is produced.
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	cons.Close()

	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: "e2e-producer",
		SendTimeout: 2 * time.Minute, DisableBatching: true, MaxPendingMessages: 200})
	if err != nil {
		t.Fatal(err)
	}
	const total = 3000
	killAt := total / 3
	var (
		mu     sync.Mutex
		acked  = map[string]bool{}
		failed []error
		wg     sync.WaitGroup
	)
	for i := 0; i < total; i++ {
		if i == killAt {
			// Wait until some are acknowledged, then crash the node.
			testutil.WaitFor(t, 60*time.Second, "a first acknowledgement", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(acked) > 0
			})
			n.kill()
			n.start("--set", "brokerDeduplicationEnabled=true")
		}
		payload := fmt.Sprintf("msg-%05d", i)
		wg.Add(1)
		prod.SendAsync(ctx, &pulsar.ProducerMessage{Payload: []byte(payload)}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
				return
			}
			acked[payload] = true
		})
	}
	wg.Wait()
	prod.Close()
	if len(failed) > 0 {
		t.Logf("%d sends failed (not acknowledged, so not required): first %v", len(failed), failed[0])
	}
	if len(acked) < total/2 {
		t.Fatalf("only %d of %d sends acknowledged", len(acked), total)
	}

	cons, err = client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	seen := map[string]int{}
	for len(seen) < len(acked) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		msg, err := cons.Receive(rctx)
		cancel()
		if err != nil {
			t.Fatalf("after %d of %d acknowledged messages: %v", len(seen), len(acked), err)
		}
		seen[string(msg.Payload())]++
		if err := cons.Ack(msg); err != nil {
			t.Fatal(err)
		}
	}
	for p := range acked {
		if seen[p] != 1 {
			t.Errorf("acknowledged message %s received %d times", p, seen[p])
		}
	}
	// Nothing beyond: a short wait for a duplicate must time out.
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if msg, err := cons.Receive(rctx); err == nil {
		t.Errorf("unexpected extra message %q (duplicate or unacknowledged send delivered twice)", msg.Payload())
	}
	t.Logf("%d sent, %d acknowledged, %d received exactly once across a SIGKILL", total, len(acked), len(seen))
}

// TestRestartKeepsSubscriptionPosition: acknowledged messages are not
// redelivered after a clean restart, unacknowledged ones are.
func TestRestartKeepsSubscriptionPosition(t *testing.T) {
	n := newNode(t)
	n.start()
	client := newClient(t, n.serviceURL())
	topic := "persistent://public/default/e2e-position"
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if _, err := prod.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("m%03d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 60; i++ {
		msg, err := cons.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := cons.Ack(msg); err != nil {
			t.Fatal(err)
		}
	}
	cons.Close() // flushes the acknowledgements
	prod.Close()
	client.Close()
	n.stop()

	n.start()
	resp, err := http.Get(n.webURL() + "/admin/v2/persistent/public/default/e2e-position/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	client = newClient(t, n.serviceURL())
	cons, err = client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for i := 60; i < 100; i++ {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		msg, err := cons.Receive(rctx)
		cancel()
		if err != nil {
			t.Fatalf("message %d after restart: %v", i, err)
		}
		if want := fmt.Sprintf("m%03d", i); string(msg.Payload()) != want {
			t.Fatalf("after restart got %q, want %q (acknowledged messages redelivered or order lost)", msg.Payload(), want)
		}
		_ = cons.Ack(msg)
	}
}

// TestWipedJournalIsRefused: a journal directory that comes back empty
// (a replaced or wiped disk) loses what it held; the node must refuse to
// start on it rather than serve as if nothing had been written, until the
// operator deletes the bookie's cookie.
func TestWipedJournalIsRefused(t *testing.T) {
	n := newNode(t)
	n.start()
	client := newClient(t, n.serviceURL())
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: "persistent://public/default/e2e-cookie"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Send(context.Background(), &pulsar.ProducerMessage{Payload: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	client.Close()
	n.stop()

	journal := filepath.Join(n.dir, "journal")
	if err := os.RemoveAll(journal); err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) (int, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, n.args(extra...)...)
		cmd.Dir = n.dir
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}
	code, out := run()
	if code == 0 || !strings.Contains(out, "have no cookie") || !strings.Contains(out, journal) {
		t.Fatalf("start on a wiped journal: exit %d, want a refusal naming %s; output:\n%s", code, journal, out)
	}
	if _, err := os.Stat(journal); !os.IsNotExist(err) {
		t.Fatalf("the refused start created %s (err %v): it must not touch the storage", journal, err)
	}
	code, out = run("--delete-cookie")
	if code != 0 || !strings.Contains(out, "deleted the cookie of bookie 127.0.0.1:") {
		t.Fatalf("--delete-cookie: exit %d; output:\n%s", code, out)
	}
	n.start()
}

// TestDamagedIndexRebuiltOnRestart: after a clean stop (a checkpoint: the
// journal no longer holds the messages, the entry logs alone do), a byte
// of every entry-log index file is flipped, as bit rot would. The node
// rebuilds the indexes from the logs at start, says so in its metrics,
// and a new subscription from the earliest position reads every message.
func TestDamagedIndexRebuiltOnRestart(t *testing.T) {
	n := newNode(t)
	n.start()
	client := newClient(t, n.serviceURL())
	topic := "persistent://public/default/e2e-rebuild"
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const count = 200
	for i := range count {
		if _, err := prod.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(fmt.Sprintf("r%03d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	client.Close()
	n.stop()

	idx, err := filepath.Glob(filepath.Join(n.dir, "ledgers", "*.idx"))
	if err != nil || len(idx) == 0 {
		t.Fatalf("no index files (%v)", err)
	}
	for _, name := range idx {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		const at = record.FileHeaderSize + record.HeaderSize + 2 // into the first index record's payload
		if len(b) <= at {
			continue // a log that never committed
		}
		b[at] ^= 0x5a
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	n.start()
	resp, err := http.Get(n.webURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "\nbookie_index_rebuild_count ") || strings.Contains(string(metrics), "\nbookie_index_rebuild_count 0\n") {
		t.Fatalf("no index rebuild in the metrics:\n%s", grepLines(string(metrics), "bookie_index_rebuild"))
	}
	client = newClient(t, n.serviceURL())
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "after-rebuild",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	for i := range count {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		msg, err := cons.Receive(rctx)
		cancel()
		if err != nil {
			t.Fatalf("message %d after the rebuild: %v", i, err)
		}
		if want := fmt.Sprintf("r%03d", i); string(msg.Payload()) != want {
			t.Fatalf("after the rebuild got %q, want %q", msg.Payload(), want)
		}
		_ = cons.Ack(msg)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
