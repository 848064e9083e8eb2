package journal

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

const (
	kill9DirEnv   = "MAGNETAR_JOURNAL_KILL9_DIR"
	kill9CycleEnv = "MAGNETAR_JOURNAL_KILL9_CYCLE"
)

func kill9Options(root string) Options {
	return Options{
		Dirs:            []string{filepath.Join(root, "j0"), filepath.Join(root, "j1")},
		MaxSegmentBytes: 1 << 20,
		PreallocBytes:   256 << 10,
		QueueMaxBytes:   4 << 20,
		MaxBackups:      1,
		Logger:          quietLogger(),
	}
}

// TestKill9 runs a real process that appends to a journal on the OS
// filesystem and reports every acknowledgement through a pipe, kills it with
// SIGKILL at a random moment, and checks that every acknowledged record
// replays, in order, with its payload. The child checkpoints as it goes, so
// retention runs under the kills too. MAGNETAR_LONG=1 runs many cycles.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	cycles := 5
	if long() {
		cycles = 150
	}
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	total := 0
	for cycle := 1; cycle <= cycles; cycle++ {
		before, err := LoadCheckpoint(vfs.Default, filepath.Join(root, "checkpoint"))
		if err != nil {
			t.Fatal(err)
		}
		acks := runKill9Child(t, root, cycle, time.Duration(20+rng.IntN(300))*time.Millisecond)
		// Positions only move forward: whatever this run acknowledged lies
		// at or after the checkpoint in force when it started.
		for _, a := range acks {
			if len(before) > 0 && a.pos.Less(before[a.pos.Dir]) {
				t.Fatalf("cycle %d: %d:%d acknowledged at %v, below the checkpoint %v", cycle, a.ledger, a.entry, a.pos, before)
			}
		}
		total += len(acks)
		verifyKill9(t, root, acks, cycle)
	}
	if total == 0 {
		t.Fatal("no add was ever acknowledged")
	}
	var dump strings.Builder
	for _, d := range kill9Options(root).Dirs {
		if err := Dump(vfs.Default, d, &dump); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(dump.String(), recycleSuffix) && !strings.Contains(dump.String(), "recycled file") {
		t.Fatal("the child never recycled a segment")
	}
	t.Logf("%d cycles, %d acknowledged adds checked", cycles, total)
}

// runKill9Child starts the child, lets it run for about d after it is
// ready, kills it, and returns the acknowledgements it reported.
func runKill9Child(t *testing.T, root string, cycle int, d time.Duration) []ackRec {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
	cmd.Env = append(os.Environ(), kill9DirEnv+"="+root, kill9CycleEnv+"="+strconv.Itoa(cycle))
	cmd.ExtraFiles = []*os.File{pw} // fd 3 in the child
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	var acks []ackRec
	ready := make(chan struct{})
	readDone := make(chan error, 1)
	go func() {
		br := bufio.NewReader(pr)
		readyClosed := false
		defer func() {
			if !readyClosed {
				close(ready)
			}
		}()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				// A line the kill cut short is not an acknowledgement.
				if err == io.EOF {
					err = nil
				}
				readDone <- err
				return
			}
			line = line[:len(line)-1]
			if line == "READY" {
				close(ready)
				readyClosed = true
				continue
			}
			var a ackRec
			if _, err := fmt.Sscanf(line, "A %d %d %d %d %d", &a.ledger, &a.entry, &a.pos.Dir, &a.pos.File, &a.pos.Offset); err != nil {
				readDone <- fmt.Errorf("bad line %q: %v", line, err)
				return
			}
			acks = append(acks, a)
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("child never became ready")
	}
	time.Sleep(d) // the kill lands at a random moment; not synchronisation
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if rerr := <-readDone; rerr != nil {
		t.Fatal(rerr)
	}
	pr.Close()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("cycle %d: child ended on its own before the kill: %v", cycle, err)
	}
	return acks
}

func verifyKill9(t *testing.T, root string, acks []ackRec, cycle int) {
	t.Helper()
	opts := kill9Options(root)
	cp, err := LoadCheckpoint(vfs.Default, filepath.Join(root, "checkpoint"))
	if err != nil {
		t.Fatalf("cycle %d: %v", cycle, err)
	}
	j, err := Open(opts)
	if err != nil {
		t.Fatalf("cycle %d: reopen after kill: %v", cycle, err)
	}
	defer j.Close()
	got, err := replayAll(t, j, cp)
	if err != nil {
		var sb strings.Builder
		for _, d := range opts.Dirs {
			names, _ := vfs.Default.List(d)
			for _, n := range names {
				fi, _ := os.Stat(filepath.Join(d, n))
				fmt.Fprintf(&sb, "%s %d\n", filepath.Join(d, n), fi.Size())
			}
			Dump(vfs.Default, d, &sb)
		}
		// MAGNETAR_KILL9_DEBUG=DIR keeps a copy of the journal for study.
		if dbg := os.Getenv("MAGNETAR_KILL9_DEBUG"); dbg != "" {
			exec.Command("cp", "-a", root, dbg).Run()
		}
		t.Fatalf("cycle %d: replay from %v: %v\n%s", cycle, cp, err, tail(sb.String(), 60000))
	}
	checkOrder(t, got)
	present := make(map[Pos]replayed, len(got))
	for _, r := range got {
		present[r.pos] = r
	}
	for _, a := range acks {
		if len(cp) > 0 && a.pos.Less(cp[a.pos.Dir]) {
			continue
		}
		if r, ok := present[a.pos]; !ok || r.ledger != a.ledger || r.entry != a.entry {
			t.Fatalf("cycle %d: acknowledged %d:%d at %v lost (replayed %d records from %v)", cycle, a.ledger, a.entry, a.pos, len(got), cp)
		}
	}
}

// TestKill9Child is the child process of TestKill9; it does nothing unless
// started by it.
func TestKill9Child(t *testing.T) {
	root := os.Getenv(kill9DirEnv)
	if root == "" {
		t.Skip("only run as TestKill9's child")
	}
	cycle, _ := strconv.Atoi(os.Getenv(kill9CycleEnv))
	out := bufio.NewWriter(os.NewFile(3, "acks"))
	j, err := Open(kill9Options(root))
	if err != nil {
		t.Fatal(err)
	}
	ackCh := make(chan ackRec, 4096)
	var outMu sync.Mutex
	fmt.Fprintln(out, "READY")
	out.Flush()
	// Writes acknowledgements to the pipe; a kill loses at most the ones
	// not yet written, which the parent then does not check.
	go func() {
		for a := range ackCh {
			outMu.Lock()
			fmt.Fprintf(out, "A %d %d %d %d %d\n", a.ledger, a.entry, a.pos.Dir, a.pos.File, a.pos.Offset)
			if len(ackCh) == 0 {
				out.Flush()
			}
			outMu.Unlock()
		}
	}()
	// Checkpoint now and then, as the bookie would after a flush.
	go func() {
		for {
			time.Sleep(40 * time.Millisecond)
			mark := j.Mark()
			if err := SaveCheckpoint(vfs.Default, filepath.Join(root, "checkpoint"), mark); err != nil {
				panic(err)
			}
			if err := j.SetCheckpoint(mark); err != nil {
				panic(err)
			}
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem := make(chan struct{}, 32)
			for seq := int64(0); time.Now().Before(deadline); seq++ {
				ledger := int64(1 + p*2 + int(seq%2))
				entry := int64(cycle)<<32 | seq
				sem <- struct{}{}
				cb := CallbackFunc(func(pos Pos, err error) {
					if err != nil {
						panic(err)
					}
					ackCh <- ackRec{ledger, entry, pos}
					<-sem
				})
				if err := j.Append(record.KindEntry, ledger, entry, payloadFor(ledger, entry, sizeFor(ledger, entry)), cb); err != nil {
					panic(err)
				}
			}
		}()
	}
	wg.Wait()
	// Only reached when the parent never killed us.
	j.Close()
	close(ackCh)
	outMu.Lock()
	out.Flush()
	outMu.Unlock()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
