package ledgerstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/vfs"
)

const (
	killChildEnv = "LEDGERSTORE_KILL_CHILD_DIR"
	killLedgers  = 5
)

func killOptions(dir string) Options {
	opts := testOptions(vfs.Default, dir+"/a", dir+"/b")
	opts.EntryLogSizeLimit = 64 << 10
	opts.GCInterval = 50 * time.Millisecond // compaction runs under the kill too
	opts.MajorCompactionThreshold = 0.6
	opts.MajorCompactionInterval = 100 * time.Millisecond
	opts.MinorCompactionInterval = 50 * time.Millisecond
	return opts
}

// TestHelperProcess is the child of TestKillDuringLoad: it adds rounds of
// entries (one entry per ledger per round, continuing from what the store
// holds), flushes, and prints "flushed N" once round N is durable. Every
// third round it deletes the oldest scratch ledger so that compaction has
// work. It runs until killed (bounded by a round count).
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(killChildEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	s, err := Open(killOptions(dir))
	if err != nil {
		fmt.Println("open error:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	next := base.EntryID(0)
	if last, err := s.LastEntry(1); err == nil {
		next = last + 1
	}
	for round := next; round < next+100000; round++ {
		for l := base.LedgerID(1); l <= killLedgers; l++ {
			if err := s.AddEntry(ctx, l, round, bufs.Wrap(payload(l, round, sizeFor(l, round)))); err != nil {
				fmt.Println("add error:", err)
				os.Exit(2)
			}
		}
		// Scratch ledgers 1000+round/3: written, then deleted later.
		scratch := base.LedgerID(1000 + round/3)
		if err := s.AddEntry(ctx, scratch, round%3, bufs.Wrap(payload(scratch, round%3, 3000))); err != nil {
			fmt.Println("add error:", err)
			os.Exit(2)
		}
		if round%3 == 2 && round >= 6 {
			if err := s.DeleteLedger(ctx, scratch-2); err != nil {
				fmt.Println("delete error:", err)
				os.Exit(2)
			}
		}
		if err := s.Flush(ctx); err != nil {
			fmt.Println("flush error:", err)
			os.Exit(2)
		}
		fmt.Printf("flushed %d\n", round)
	}
	os.Exit(0)
}

// TestKillDuringLoad runs the store in a child process under load, kills
// it with SIGKILL at a random moment, reopens the directories, checks that
// every round the child reported flushed is there with its bytes, and
// repeats on the same directories.
func TestKillDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	cycles := 3
	if longTests() {
		cycles = 25
	}
	dir := t.TempDir()
	acked := base.EntryID(-1)
	for cycle := range cycles {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it run a varying number of rounds past the last check.
		target := acked + base.EntryID(20+cycle*37%60)
		sc := bufio.NewScanner(out)
		killed := false
		for sc.Scan() {
			line := sc.Text()
			if n, ok := strings.CutPrefix(line, "flushed "); ok {
				r, _ := strconv.ParseInt(n, 10, 64)
				acked = base.EntryID(r)
				if acked >= target {
					cmd.Process.Signal(syscall.SIGKILL)
					killed = true
					break
				}
				continue
			}
			t.Fatalf("child: %s", line)
		}
		if !killed {
			t.Fatalf("child ended before round %d: %v", target, sc.Err())
		}
		cmd.Wait()

		s, err := Open(killOptions(dir))
		if err != nil {
			t.Fatalf("cycle %d: reopen after kill: %v", cycle, err)
		}
		for l := base.LedgerID(1); l <= killLedgers; l++ {
			for e := base.EntryID(0); e <= acked; e++ {
				checkEntry(t, s, l, e, sizeFor(l, e))
			}
		}
		// Deletions acknowledged before a reported flush stay deleted.
		for r := base.EntryID(8); r <= acked; r += 3 {
			checkMissing(t, s, base.LedgerID(1000+r/3-2), 0, base.ErrNoLedger)
		}
		st := s.Stats()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("cycle %d: killed after round %d; all intact; %d logs, %d of %d bytes live",
			cycle, acked, st.EntryLogs, st.LiveBytes, st.EntryLogBytes)
	}
}
