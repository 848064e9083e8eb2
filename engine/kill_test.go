package engine

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/vfs"
)

const childDirEnv = "MAGNETAR_ENGINE_CHILD_DIR"

// printer is the child's callback: it reports an acknowledged entry on
// stdout, which the parent reads.
type printer struct {
	mu  *sync.Mutex
	out *bufio.Writer
	sem chan struct{}
	l   base.LedgerID
	e   base.EntryID
}

func (p *printer) AddComplete(err error) {
	if err == nil {
		p.mu.Lock()
		fmt.Fprintf(p.out, "%d %d\n", p.l, p.e)
		p.out.Flush()
		p.mu.Unlock()
	}
	<-p.sem
}

// TestHelperBookieProcess is the child of TestKill9: it adds entries to a
// bookie forever (with checkpoints running), printing each acknowledgement.
func TestHelperBookieProcess(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("child process of TestKill9 only")
	}
	l, _ := strconv.ParseInt(os.Getenv("MAGNETAR_ENGINE_CHILD_LEDGER"), 10, 64)
	opts := testOptions(vfs.Default, dir)
	opts.FlushInterval = 20 * time.Millisecond
	opts.Journal.MaxSegmentBytes = 256 << 10
	b, err := Open(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	sem := make(chan struct{}, 64)
	for e := base.EntryID(0); ; e++ {
		sem <- struct{}{}
		ledger := base.LedgerID(l)*10 + base.LedgerID(e%3)
		p := &printer{mu: &mu, out: out, sem: sem, l: ledger, e: e}
		buf := bufs.Wrap(entryBytes(ledger, e, e-1, 200))
		if err := b.AddEntry(context.Background(), ledger, e, key, buf, false, p); err != nil {
			fmt.Fprintln(os.Stderr, "add:", err)
			os.Exit(4)
		}
	}
}

// TestKill9 kills a real bookie process with SIGKILL at random moments while
// it adds entries and checkpoints, restarts the storage in this process, and
// checks that every entry the child acknowledged is there with its bytes.
func TestKill9(t *testing.T) {
	cycles := 3
	if os.Getenv("MAGNETAR_LONG") != "" {
		cycles = 25
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := map[[2]int64]bool{}
	for cycle := 1; cycle <= cycles; cycle++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBookieProcess$", "-test.v=false")
		cmd.Env = append(os.Environ(), childDirEnv+"="+dir, "MAGNETAR_ENGINE_CHILD_LEDGER="+strconv.Itoa(cycle))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		if !sc.Scan() || sc.Text() != "ready" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("cycle %d: child did not start (%q)", cycle, sc.Text())
		}
		killAt := 200 + rng.IntN(3000)
		n := 0
		for sc.Scan() {
			var l, e int64
			if _, err := fmt.Sscanf(sc.Text(), "%d %d", &l, &e); err != nil {
				continue // a line cut by the kill
			}
			acked[[2]int64{l, e}] = true
			n++
			if n == killAt {
				_ = cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		_ = cmd.Wait()
		if n < killAt {
			t.Fatalf("cycle %d: child stopped after %d acks, before the kill", cycle, n)
		}

		b, err := Open(testOptions(vfs.Default, dir))
		if err != nil {
			t.Fatalf("cycle %d: reopen after kill: %v", cycle, err)
		}
		for k := range acked {
			l, e := base.LedgerID(k[0]), base.EntryID(k[1])
			buf, err := b.ReadEntry(context.Background(), l, e)
			if err != nil {
				b.Close()
				t.Fatalf("cycle %d: acknowledged entry %d:%d lost: %v", cycle, l, e, err)
			}
			want := entryBytes(l, e, e-1, 200)
			if string(buf.Bytes()) != string(want) {
				b.Close()
				t.Fatalf("cycle %d: entry %d:%d has wrong bytes", cycle, l, e)
			}
			buf.Release()
		}
		if err := b.Close(); err != nil {
			t.Fatalf("cycle %d: close: %v", cycle, err)
		}
		t.Logf("cycle %d: killed after %d acks; %d acknowledged entries verified", cycle, n, len(acked))
	}
}
