package journal

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

func long() bool { return os.Getenv("MAGNETAR_LONG") != "" }

type ackRec struct {
	ledger, entry int64
	pos           Pos
}

// ackLog collects acknowledged records from callbacks.
type ackLog struct {
	mu   sync.Mutex
	acks []ackRec
	errs []error
}

func (a *ackLog) add(r ackRec, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.errs = append(a.errs, err)
		return
	}
	a.acks = append(a.acks, r)
}

// crashWorkload appends records of several ledgers from several goroutines,
// with a checkpoint in the middle, until done or until the filesystem dies.
// It returns what was acknowledged, the journal's end (Mark) before it
// closed, and its stats. It must never hang, whatever the filesystem does.
func crashWorkload(fs vfs.FS, opts Options, ledgers, perLedger int) (*ackLog, Checkpoint, Stats) {
	log := &ackLog{}
	j, err := Open(opts)
	if err != nil {
		return log, nil, Stats{}
	}
	var wg sync.WaitGroup
	var ckptOnce sync.Once
	for l := 1; l <= ledgers; l++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ledger := int64(l)
			var pending sync.WaitGroup
			for e := int64(0); e < int64(perLedger); e++ {
				if e == int64(perLedger)/3 && l == 1 {
					pending.Wait()
					ckptOnce.Do(func() {
						mark := j.Mark()
						if SaveCheckpoint(fs, "/ckpt", mark) == nil {
							_ = j.SetCheckpoint(mark)
						}
					})
				}
				pending.Add(1)
				cb := CallbackFunc(func(pos Pos, err error) {
					log.add(ackRec{ledger, e, pos}, err)
					pending.Done()
				})
				if err := j.Append(record.KindEntry, ledger, e, payloadFor(ledger, e, sizeFor(ledger, e)), cb); err != nil {
					pending.Done()
					break
				}
				if e%4 == 3 {
					pending.Wait() // vary group sizes
				}
			}
			pending.Wait()
		}()
	}
	wg.Wait()
	end := j.Mark()
	_ = j.Close()
	return log, end, j.Stats()
}

// verifyAfterCrash reopens the journal on the crashed filesystem: Open and
// Replay must succeed (a crash is never corruption), every acknowledged
// record at or after the checkpoint must replay, in order, with its payload.
// Then the journal must accept appends and replay them after another reopen.
func verifyAfterCrash(t *testing.T, fs vfs.FS, opts Options, log *ackLog, what string) {
	t.Helper()
	cp, err := LoadCheckpoint(fs, "/ckpt")
	if err != nil {
		t.Fatalf("%s: load checkpoint: %v", what, err)
	}
	j, err := Open(opts)
	if err != nil {
		t.Fatalf("%s: reopen after crash: %v", what, err)
	}
	got, err := replayAll(t, j, cp)
	if err != nil {
		j.Close()
		t.Fatalf("%s: replay after crash: %v", what, err)
	}
	checkOrder(t, got)
	present := map[Pos]replayed{}
	for _, r := range got {
		present[r.pos] = r
	}
	for _, a := range log.acks {
		if len(cp) > 0 && a.pos.Less(cp[a.pos.Dir]) {
			continue // checkpointed: may be gone
		}
		r, ok := present[a.pos]
		if !ok || r.ledger != a.ledger || r.entry != a.entry {
			j.Close()
			t.Fatalf("%s: acknowledged record %d:%d at %v not replayed (found %+v)\n%s", what, a.ledger, a.entry, a.pos, r, dumpString(fs, opts))
		}
	}
	// The recovered journal goes on.
	for e := int64(1000); e < 1003; e++ {
		if _, err := j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 500)); err != nil {
			t.Fatalf("%s: append after recovery: %v", what, err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatalf("%s: close: %v", what, err)
	}
	j, err = Open(opts)
	if err != nil {
		t.Fatalf("%s: second reopen: %v", what, err)
	}
	defer j.Close()
	again, err := replayAll(t, j, cp)
	if err != nil {
		t.Fatalf("%s: second replay: %v", what, err)
	}
	if len(again) != len(got)+3 {
		t.Fatalf("%s: second replay has %d records, want %d", what, len(again), len(got)+3)
	}
	checkOrder(t, again)
}

func dumpString(fs vfs.FS, opts Options) string {
	var sb strings.Builder
	for _, d := range opts.Dirs {
		_ = Dump(fs, d, &sb)
	}
	return sb.String()
}

// TestCrashAtEveryOperation cuts the power right after each mutating
// filesystem operation of a workload (every write, sync, create, rename,
// remove, directory sync), crashes, and checks what survives. Once with a
// strict crash (nothing unsynced survives) and once keeping a random prefix
// of the unsynced writes, the last one torn at a random byte.
func TestCrashAtEveryOperation(t *testing.T) {
	ledgers, perLedger := 4, 40
	if long() {
		ledgers, perLedger = 5, 150
	}
	for _, torn := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepUnsyncedPrefix=%v", torn), func(t *testing.T) {
			ops, recycled := int64(0), uint64(0)
			for n := int64(1); ; n++ {
				fs := vfs.NewMem()
				opts := testOptions(fs, "/j/0", "/j/1")
				opts.MaxSegmentBytes = 64 << 10
				opts.PreallocBytes = 16 << 10
				opts.MaxBackups = -1
				fs.CrashAfter(n)
				log, end, st := crashWorkload(fs, opts, ledgers, perLedger)
				if !fs.PowerCut() {
					ops = n - 1
					if end[0].File < 2 || end[1].File < 2 {
						t.Fatalf("the workload did not rotate segments in both directories: ended at %v", end)
					}
					break
				}
				recycled += st.Recycled
				if torn {
					fs.CrashWith(vfs.CrashOptions{KeepUnsyncedPrefix: rand.New(rand.NewPCG(uint64(n), 7))})
				} else {
					fs.Crash()
				}
				verifyAfterCrash(t, fs, opts, log, fmt.Sprintf("crash after op %d", n))
			}
			if recycled == 0 {
				t.Fatal("no run reused a recycled segment before its crash")
			}
			if ops < 100 {
				t.Fatalf("workload had only %d operations", ops)
			}
			t.Logf("crashed at each of %d operations; %d segments made from recycled files before crashes", ops, recycled)
		})
	}
}

// TestInjectedFaults: ENOSPC and I/O errors fail the affected adds with a
// clear error, and nothing that was not synced is acknowledged: after a
// crash every acknowledged record is there.
func TestInjectedFaults(t *testing.T) {
	cases := []struct {
		name    string
		rule    vfs.Rule
		noSpace bool
	}{
		{"write ENOSPC", vfs.Rule{Ops: []vfs.Op{vfs.OpWriteAt}, Path: vfs.PathSuffix(".journal"), After: 12, Action: vfs.Fail(errNoSpc)}, true},
		{"short write ENOSPC", vfs.Rule{Ops: []vfs.Op{vfs.OpWriteAt}, Path: vfs.PathSuffix(".journal"), After: 12, Action: vfs.ShortWrite(4096, errNoSpc)}, true},
		{"write EIO", vfs.Rule{Ops: []vfs.Op{vfs.OpWriteAt}, Path: vfs.PathSuffix(".journal"), After: 20, Action: vfs.Fail(errEIO)}, false},
		{"fdatasync EIO", vfs.Rule{Ops: []vfs.Op{vfs.OpSync}, Path: vfs.PathSuffix(".journal"), After: 15, Action: vfs.Fail(errEIO)}, false},
		{"new segment ENOSPC", vfs.Rule{Ops: []vfs.Op{vfs.OpCreate}, Path: vfs.PathSuffix(".journal"), After: 3, Action: vfs.Fail(errNoSpc)}, true},
		{"preallocate ENOSPC", vfs.Rule{Ops: []vfs.Op{vfs.OpPreallocate}, Path: vfs.PathSuffix(".journal"), After: 4, Action: vfs.Fail(errNoSpc)}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := vfs.NewMem()
			inj := vfs.NewInjector(mem)
			h := inj.Add(c.rule)
			opts := testOptions(inj, "/j/0")
			opts.MaxSegmentBytes = 64 << 10
			opts.PreallocBytes = 16 << 10
			log, _, _ := crashWorkload(inj, opts, 2, 60)
			if h.Fired() == 0 {
				t.Fatal("the fault was never injected")
			}
			if len(log.errs) == 0 {
				t.Fatal("no add failed")
			}
			for _, err := range log.errs {
				if !errors.Is(err, vfs.ErrInjected) || (c.noSpace && !errors.Is(err, base.ErrNoSpace)) {
					t.Fatalf("add failed with %v", err)
				}
			}
			t.Logf("%d acknowledged, %d failed: %v", len(log.acks), len(log.errs), log.errs[0])
			// Power cut: only synced data survives.
			inj.Clear()
			mem.Crash()
			verifyAfterCrash(t, mem, testOptionsLike(opts, mem), log, c.name)
		})
	}
}

var (
	errNoSpc = syscall.ENOSPC
	errEIO   = syscall.EIO
)

func testOptionsLike(o Options, fs vfs.FS) Options {
	o.FS = fs
	return o
}
