package itest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/ledger"
	"github.com/magnetar/magnetar/metastore"
)

// Environment of the writer child process.
const (
	envZK     = "MAGNETAR_ITEST_ZK"
	envRoot   = "MAGNETAR_ITEST_ROOT"
	envQuorum = "MAGNETAR_ITEST_QUORUM"
	envWindow = "MAGNETAR_ITEST_WINDOW"
)

// TestHelperWriter is the writer process of TestWriterKilledMidStream (the
// test binary run again with childEnv=writer): it creates a ledger, prints
// "ledger <id>", then adds payload(id, e) for e = 0, 1, ... with a window
// of adds in flight and prints "confirmed <e>" for each confirmation, in
// order, until it is killed (or a bound is reached).
func TestHelperWriter(t *testing.T) {
	if os.Getenv(childEnv) != "writer" {
		t.Skip("the writer process of TestWriterKilledMidStream")
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "writer: "+format+"\n", args...)
		os.Exit(3)
	}
	var q quorum
	if _, err := fmt.Sscanf(os.Getenv(envQuorum), "%d,%d,%d", &q.e, &q.w, &q.a); err != nil {
		fail("bad %s: %v", envQuorum, err)
	}
	window, err := strconv.Atoi(os.Getenv(envWindow))
	if err != nil || window < 1 {
		fail("bad %s", envWindow)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	store, err := metastore.Open(os.Getenv(envZK), metastore.Options{Logger: log})
	if err != nil {
		fail("metadata store: %v", err)
	}
	cl, err := ledger.NewClient(ledger.Options{Store: store, LedgersRoot: os.Getenv(envRoot), Logger: log})
	if err != nil {
		fail("client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	h, err := cl.CreateLedger(ctx, q.create())
	if err != nil {
		fail("create: %v", err)
	}
	// One write(2) per line: what the parent reads was printed whole.
	fmt.Fprintf(os.Stdout, "ledger %d\n", h.ID())
	sem := make(chan struct{}, window)
	end := time.Now().Add(2 * time.Minute)
	for e := base.EntryID(0); e < 1_000_000 && time.Now().Before(end); e++ {
		sem <- struct{}{}
		h.AddEntry(bufsOf(payload(h.ID(), e)), ledger.AddFunc(func(got base.EntryID, err error) {
			if err != nil || got != e {
				fail("add %d: entry %d, %v", e, got, err)
			}
			fmt.Fprintf(os.Stdout, "confirmed %d\n", got)
			<-sem
		}))
	}
	fail("not killed within the bounds")
}

// TestWriterKilledMidStream kills a writer process (SIGKILL) at a random
// moment while it adds entries, then two other clients open the ledger with
// recovery at the same time. Both must close it at the same entry, that
// entry must include every entry the writer had reported confirmed (and
// nothing it never sent), every entry must have the writer's bytes, and the
// two recovering readers and a third, non-recovering one must read exactly
// the same content.
//
// Every other pair of cycles also kills a bookie of the ledger's ensemble
// right after the writer, so that recovery fences, reads and re-replicates
// with a bookie down (four bookies: the recovery writer needs a
// replacement), and restarts it afterwards.
func TestWriterKilledMidStream(t *testing.T) {
	cycles := 8
	if long() {
		cycles = 40
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	c := newCluster(t, 4, testSettings)
	for i := range cycles {
		q := []quorum{e3w3a2, e3w2a2}[i%2]
		bookieDown := i%4 >= 2
		name := fmt.Sprintf("cycle=%d/%s", i, q.name)
		if bookieDown {
			name += "/bookie-down"
		}
		t.Run(name, func(t *testing.T) {
			writerKillCycle(t, c, q, rng.IntN(300), bookieDown, rng)
		})
		if t.Failed() {
			return
		}
	}
}

// writerOutput is what the parent reads from the writer: the ledger id,
// then confirmations.
type writerOutput struct {
	ledger chan base.LedgerID
	conf   chan base.EntryID
	err    chan error // the reader's end: nil at EOF, or a protocol error
}

func readWriterOutput(r *bufio.Reader) *writerOutput {
	out := &writerOutput{ledger: make(chan base.LedgerID, 1), conf: make(chan base.EntryID, 1024), err: make(chan error, 1)}
	go func() {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				// A line cut by the kill has no newline: it was not
				// printed whole, and is ignored.
				close(out.conf)
				out.err <- nil
				return
			}
			line = strings.TrimSuffix(line, "\n")
			if s, ok := strings.CutPrefix(line, "ledger "); ok {
				id, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					close(out.conf)
					out.err <- fmt.Errorf("bad line %q", line)
					return
				}
				out.ledger <- base.LedgerID(id)
			} else if s, ok := strings.CutPrefix(line, "confirmed "); ok {
				e, err := strconv.ParseInt(s, 10, 64)
				if err != nil {
					close(out.conf)
					out.err <- fmt.Errorf("bad line %q", line)
					return
				}
				out.conf <- base.EntryID(e)
			}
		}
	}()
	return out
}

func writerKillCycle(t *testing.T, c *cluster, q quorum, killAfter int, bookieDown bool, rng *rand.Rand) {
	const window = 64
	stderr := &logBuffer{}
	dumpOnFailure(t, "writer process stderr", stderr)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(cleanEnv(), childEnv+"=writer",
		envZK+"="+c.zk.URL(""), envRoot+"="+c.root,
		fmt.Sprintf("%s=%d,%d,%d", envQuorum, q.e, q.w, q.a),
		fmt.Sprintf("%s=%d", envWindow, window))
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	t.Cleanup(func() {
		kill()
		_ = cmd.Wait()
	})
	out := readWriterOutput(bufio.NewReader(stdout))

	timeout := time.After(waitTimeout)
	var l base.LedgerID
	select {
	case l = <-out.ledger:
	case err := <-out.err:
		t.Fatalf("the writer ended before creating its ledger (%v)", err)
	case <-c.crashed:
		t.Fatal("a bookie crashed")
	case <-timeout:
		t.Fatal("the writer did not create its ledger in time")
	}
	// Kill after killAfter confirmations (0: as soon as the ledger exists),
	// then read what the writer printed before it died.
	next := base.EntryID(0)
	if killAfter == 0 {
		kill()
	}
	for done := false; !done; {
		select {
		case e, ok := <-out.conf:
			if !ok {
				done = true
				break
			}
			if e != next {
				t.Fatalf("the writer confirmed entry %d after %d", e, next-1)
			}
			next++
			if int(next) == killAfter {
				kill()
			}
		case <-c.crashed:
			t.Fatal("a bookie crashed")
		case <-timeout:
			t.Fatalf("the writer confirmed %d entries in %v; waiting for %d and its end", next, waitTimeout, killAfter)
		}
	}
	if err := <-out.err; err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if !killed {
		t.Fatalf("the writer exited by itself: %s", stderr.tail(2000))
	}
	lastConfirmed := next - 1
	t.Logf("ledger %d (%s): writer killed after %d confirmations (asked for %d)", l, q.name, next, killAfter)
	if bookieDown {
		md, err := c.client(t, "metadata").LedgerMetadata(c.ctx(t), l)
		if err != nil {
			t.Fatal(err)
		}
		ens := md.LastSegment().Bookies
		down := c.byID(ens[rng.IntN(len(ens))])
		down.kill()
		t.Logf("killed bookie %s of the ensemble %v", down.id, ens)
		defer func() {
			if !t.Failed() {
				down.restart(t)
			}
		}()
	}

	// Two clients recover the ledger at the same time.
	type recovered struct {
		r   *ledger.ReadHandle
		err error
	}
	var wg sync.WaitGroup
	recs := make([]recovered, 2)
	clients := []*ledger.Client{c.client(t, "recoverer-0"), c.client(t, "recoverer-1")}
	for i := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i].r, recs[i].err = clients[i].OpenLedger(c.ctx(t), l, password, ledger.OpenOptions{Recovery: true})
		}()
	}
	wg.Wait()
	for i, rec := range recs {
		if rec.err != nil {
			t.Fatalf("recovery %d: %v", i, rec.err)
		}
	}
	md := recs[0].r.Metadata()
	for i, rec := range recs {
		m := rec.r.Metadata()
		if !rec.r.IsClosed() || m.LastEntry != md.LastEntry || m.Length != md.Length {
			t.Fatalf("recovery %d: state %v, last entry %d, length %d; recovery 0: %v, %d, %d",
				i, m.State, m.LastEntry, m.Length, md.State, md.LastEntry, md.Length)
		}
	}
	last := md.LastEntry
	if last < lastConfirmed {
		t.Fatalf("recovered ledger ends at %d, but the writer had confirmed entry %d", last, lastConfirmed)
	}
	if last > lastConfirmed+window {
		t.Fatalf("recovered ledger ends at %d, but the writer sent nothing past %d", last, lastConfirmed+window)
	}
	var length int64
	for e := base.EntryID(0); e <= last; e++ {
		length += int64(len(payload(l, e)))
	}
	if md.Length != length {
		t.Fatalf("recovered length %d, want %d for entries 0..%d", md.Length, length, last)
	}
	t.Logf("recovered at entry %d (%d past the last confirmation)", last, last-lastConfirmed)

	// Every reader sees the same bytes: both recovering handles, and a new
	// client opening without recovery.
	plain, err := c.client(t, "reader").OpenLedger(c.ctx(t), l, password, ledger.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plain.Metadata().LastEntry != last || !plain.IsClosed() {
		t.Fatalf("plain reader: last entry %d, closed %v; want %d, closed", plain.Metadata().LastEntry, plain.IsClosed(), last)
	}
	want := checkEntries(c.ctx(t), t, "recoverer 0", recs[0].r.Read, l, last)
	for who, read := range map[string]func(context.Context, base.EntryID, base.EntryID) ([]ledger.Entry, error){
		"recoverer 1": recs[1].r.Read, "plain reader": plain.Read,
	} {
		got := checkEntries(c.ctx(t), t, who, read, l, last)
		if len(got) != len(want) {
			t.Fatalf("%s read %d entries, recoverer 0 %d", who, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%s and recoverer 0 disagree on entry %d", who, i)
			}
		}
	}
	// Reading past the end fails for everyone.
	if _, err := plain.Read(c.ctx(t), last+1, last+1); !errors.Is(err, base.ErrNoEntry) {
		t.Fatalf("read past the recovered end: %v, want an error wrapping base.ErrNoEntry", err)
	}
}
