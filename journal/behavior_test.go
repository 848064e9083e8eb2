package journal

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/testutil"
	"github.com/magnetar/magnetar/internal/vfs"
)

// syncGate holds the fdatasyncs of segment 1 until released, so a test can
// act while one is in progress. after is how many of them pass first (1
// skips the sync of the segment's creation).
type syncGate struct {
	entered chan struct{}
	release chan struct{}
	armed   atomic.Bool
	rule    *vfs.RuleHandle
	once    sync.Once
}

func newSyncGate(inj *vfs.Injector, after int64) *syncGate {
	g := &syncGate{entered: make(chan struct{}, 16), release: make(chan struct{})}
	g.rule = inj.Add(vfs.Rule{
		Ops:   []vfs.Op{vfs.OpSync},
		Path:  vfs.PathEquals("/j/" + SegmentName(1)),
		After: after,
		Action: vfs.Call(func(vfs.Op, string) error {
			if g.armed.Load() {
				g.entered <- struct{}{}
				<-g.release
			}
			return nil
		}),
	})
	g.armed.Store(true)
	return g
}

// open releases the held sync and lets later ones through. Idempotent, so
// tests defer it: a failing test must not leave Close waiting on a sync.
func (g *syncGate) open() {
	g.once.Do(func() {
		g.armed.Store(false)
		g.rule.Remove()
		close(g.release)
	})
}

// waitFor polls an observable condition, failing after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, cond)
}

type countCB struct {
	n    atomic.Int32
	errs atomic.Int32
	last atomic.Pointer[Pos]
}

func (c *countCB) Done(pos Pos, err error) {
	if err != nil {
		c.errs.Add(1)
	}
	c.last.Store(&pos)
	c.n.Add(1)
}

// TestCompletionAfterSync: a record's callback fires only after the
// fdatasync covering it returns, and records that arrive while an fdatasync
// runs form the next group, together.
func TestCompletionAfterSync(t *testing.T) {
	inj := vfs.NewInjector(vfs.NewMem())
	gate := newSyncGate(inj, 1)
	opts := testOptions(inj, "/j")
	opts.MaxGroupWait = -1
	opts.BufferedWritesThreshold = -1
	j := mustOpen(t, opts)
	defer j.Close()
	defer gate.open() // before Close

	var a, bc countCB
	if err := j.Append(record.KindEntry, 1, 0, payloadFor(1, 0, 100), &a); err != nil {
		t.Fatal(err)
	}
	<-gate.entered // A's group is being synced
	before := j.Stats()
	for e := int64(1); e <= 2; e++ {
		if err := j.Append(record.KindEntry, 1, e, payloadFor(1, e, 100), &bc); err != nil {
			t.Fatal(err)
		}
	}
	if a.n.Load() != 0 || bc.n.Load() != 0 {
		t.Fatal("a callback fired while the fdatasync covering it was still running")
	}
	if s := j.Stats(); s.Writes != before.Writes {
		t.Fatal("records were written during the sync although neither bound was set")
	}
	gate.open()
	waitFor(t, "completions", func() bool { return a.n.Load() == 1 && bc.n.Load() == 2 })
	// The sync counter counts a sync when it returns: A's, then one for
	// B and C together, written together.
	after := j.Stats()
	if syncs, writes := after.Syncs-before.Syncs, after.Writes-before.Writes; syncs != 2 || writes != 1 {
		t.Fatalf("the two records that arrived during A's sync took %d writes and %d syncs after it, want 1 and 1", writes, syncs-1)
	}
	if a.errs.Load()+bc.errs.Load() != 0 {
		t.Fatal("errors")
	}
}

// TestGroupBounds: while an fdatasync runs, MaxGroupWait and
// BufferedWritesThreshold make the writer write the accumulating group.
func TestGroupBounds(t *testing.T) {
	t.Run("MaxGroupWait", func(t *testing.T) {
		inj := vfs.NewInjector(vfs.NewMem())
		gate := newSyncGate(inj, 1)
		opts := testOptions(inj, "/j")
		opts.MaxGroupWait = time.Millisecond
		opts.BufferedWritesThreshold = -1
		j := mustOpen(t, opts)
		defer j.Close()
		defer gate.open()
		var cb countCB
		j.Append(record.KindEntry, 1, 0, payloadFor(1, 0, 100), &cb)
		<-gate.entered
		before := j.Stats()
		j.Append(record.KindEntry, 1, 1, payloadFor(1, 1, 100), &cb)
		waitFor(t, "the group to be written during the sync", func() bool { return j.Stats().Writes > before.Writes })
		if cb.n.Load() != 0 {
			t.Fatal("completed before its sync")
		}
		gate.open()
		waitFor(t, "completions", func() bool { return cb.n.Load() == 2 })
	})
	t.Run("BufferedWritesThreshold", func(t *testing.T) {
		inj := vfs.NewInjector(vfs.NewMem())
		gate := newSyncGate(inj, 1)
		opts := testOptions(inj, "/j")
		opts.MaxGroupWait = -1
		opts.BufferedWritesThreshold = 8 << 10
		j := mustOpen(t, opts)
		defer j.Close()
		defer gate.open()
		var cb countCB
		j.Append(record.KindEntry, 1, 0, payloadFor(1, 0, 100), &cb)
		<-gate.entered
		before := j.Stats()
		for e := int64(1); e <= 10; e++ {
			j.Append(record.KindEntry, 1, e, payloadFor(1, e, 2000), &cb)
		}
		waitFor(t, "whole blocks to be written during the sync", func() bool { return j.Stats().Writes > before.Writes })
		if s := j.Stats(); s.PaddingBytes != before.PaddingBytes {
			t.Fatal("an early write was padded; only whole blocks should go")
		}
		gate.open()
		waitFor(t, "completions", func() bool { return cb.n.Load() == 11 })
	})
}

// TestBackPressure: with QueueMaxBytes in flight, TryAppend fails with
// ErrBusy and Append waits until a sync frees room (or Close).
func TestBackPressure(t *testing.T) {
	inj := vfs.NewInjector(vfs.NewMem())
	gate := newSyncGate(inj, 1)
	defer gate.open()
	opts := testOptions(inj, "/j")
	opts.QueueMaxBytes = 64 << 10
	j := mustOpen(t, opts)
	var cb countCB
	j.Append(record.KindEntry, 1, 0, payloadFor(1, 0, 100), &cb)
	<-gate.entered
	var busy error
	accepted := 1
	for e := int64(1); e < 100 && busy == nil; e++ {
		if busy = j.TryAppend(record.KindEntry, 1, e, payloadFor(1, e, 8<<10), &cb); busy == nil {
			accepted++
		}
	}
	if !errors.Is(busy, ErrBusy) || !errors.Is(busy, base.ErrBusy) {
		t.Fatalf("TryAppend on a full queue: %v", busy)
	}
	if accepted > 8 {
		t.Fatalf("%d records of 8 KiB accepted in a 64 KiB queue", accepted)
	}
	blocked := make(chan error, 2)
	for e := int64(200); e < 202; e++ {
		go func() { blocked <- j.Append(record.KindEntry, 1, e, payloadFor(1, e, 8<<10), &cb) }()
	}
	d := j.dirs[0]
	waitFor(t, "two appenders blocked", func() bool { return d.blocked.Load() == 2 })
	gate.open()
	for range 2 {
		if err := <-blocked; err != nil {
			t.Fatal(err)
		}
	}
	total := int32(accepted + 2)
	waitFor(t, "completions", func() bool { return cb.n.Load() == total })

	// A blocked Append fails with ErrClosed when the journal closes.
	gate2 := newSyncGate(inj, 0) // holds the next sync of segment 1
	defer gate2.open()
	j.Append(record.KindEntry, 1, 300, payloadFor(1, 300, 100), &cb)
	<-gate2.entered
	for e := int64(301); e < 400; e++ {
		if j.TryAppend(record.KindEntry, 1, e, payloadFor(1, e, 8<<10), &cb) != nil {
			break
		}
	}
	go func() { blocked <- j.Append(record.KindEntry, 1, 500, payloadFor(1, 500, 8<<10), &cb) }()
	waitFor(t, "an appender blocked", func() bool { return d.blocked.Load() == 1 })
	closed := make(chan error)
	go func() { closed <- j.Close() }()
	if err := <-blocked; !errors.Is(err, ErrClosed) {
		t.Fatalf("blocked Append during Close: %v", err)
	}
	gate2.open()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if cb.errs.Load() != 0 {
		t.Fatal("a record accepted before Close failed")
	}
}

// TestZeroAllocAppend: the steady-state add allocates nothing.
func TestZeroAllocAppend(t *testing.T) {
	j := mustOpen(t, testOptions(vfs.NewMem(), "/j"))
	defer j.Close()
	cb := &countCB{}
	payload := payloadFor(1, 0, 1000)
	for e := int64(0); e < 2000; e++ { // grow the waiter queue
		j.Append(record.KindEntry, 1, e, payload, cb)
	}
	waitFor(t, "warm-up", func() bool { return cb.n.Load() == 2000 })
	e := int64(2000)
	allocs := testing.AllocsPerRun(500, func() {
		if err := j.Append(record.KindEntry, 1, e, payload, cb); err != nil {
			t.Fatal(err)
		}
		e++
	})
	if allocs != 0 {
		t.Fatalf("%.2f allocations per Append", allocs)
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDirectFallbackLoggedOnce: where O_DIRECT is refused the journal writes
// buffered, saying so once, however many segments it makes.
func TestDirectFallbackLoggedOnce(t *testing.T) {
	mem := vfs.NewMem()
	mem.SetDirectSupport(false)
	var logs lockedBuf
	opts := testOptions(mem, "/j/0", "/j/1")
	opts.MaxSegmentBytes = 64 << 10
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	j := mustOpen(t, opts)
	for e := int64(0); e < 100; e++ {
		if _, err := j.AppendSync(record.KindEntry, e%2, e, payloadFor(e%2, e, 3000)); err != nil {
			t.Fatal(err)
		}
	}
	if st := j.Stats(); st.Segments < 6 {
		t.Fatalf("only %d segments made", st.Segments)
	}
	j.Close()
	if n := strings.Count(logs.String(), "O_DIRECT refused"); n != 1 {
		t.Fatalf("fallback logged %d times:\n%s", n, logs.String())
	}
}

// FuzzRecover opens a journal whose only segment holds arbitrary bytes: Open,
// Replay and Dump must not panic, and any error must be corruption.
func FuzzRecover(f *testing.F) {
	mem := vfs.NewMem()
	opts := testOptions(mem, "/j")
	j, _ := Open(opts)
	for e := int64(0); e < 4; e++ {
		j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 300))
	}
	j.Close()
	f.Add(readFileFS(mem, "/j/"+SegmentName(1)))
	f.Add(headerBlock(1, 4096))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		fs.MkdirAll("/j", 0o755)
		w, _ := fs.Create("/j/" + SegmentName(1))
		w.Write(data)
		w.Sync()
		w.Close()
		fs.SyncDir("/j")
		opts := testOptions(fs, "/j")
		var out bytes.Buffer
		if err := Dump(fs, "/j", &out); err != nil {
			t.Fatalf("dump: %v", err)
		}
		j, err := Open(opts)
		if err != nil {
			if !errors.Is(err, base.ErrCorruption) {
				t.Fatalf("open: %v", err)
			}
			return
		}
		defer j.Close()
		err = j.Replay(nil, func(Pos, record.Header, []byte) error { return nil })
		if err != nil && !errors.Is(err, base.ErrCorruption) {
			t.Fatalf("replay: %v", err)
		}
	})
}

func readFileFS(fs vfs.FS, path string) []byte {
	f, err := fs.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var b bytes.Buffer
	b.ReadFrom(f)
	return b.Bytes()
}

// TestMarkIsDurableEnd: a mark never covers bytes that are written but not
// yet synced (a crash could lose them and a restart reuse their positions).
func TestMarkIsDurableEnd(t *testing.T) {
	inj := vfs.NewInjector(vfs.NewMem())
	opts := testOptions(inj, "/j")
	opts.MaxGroupWait = -1
	j := mustOpen(t, opts)
	defer j.Close()
	posA, err := j.AppendSync(record.KindEntry, 1, 0, payloadFor(1, 0, 100))
	if err != nil {
		t.Fatal(err)
	}
	m1 := j.Mark()
	if !posA.Less(m1[0]) {
		t.Fatalf("mark %v does not cover the acknowledged record at %v", m1, posA)
	}
	gate := newSyncGate(inj, 0)
	defer gate.open()
	var cb countCB
	j.Append(record.KindEntry, 1, 1, payloadFor(1, 1, 100), &cb)
	<-gate.entered // B is written, its sync held
	if m2 := j.Mark(); m2[0] != m1[0] {
		t.Fatalf("mark moved to %v while B was unsynced (was %v)", m2, m1)
	}
	gate.open()
	waitFor(t, "B's completion", func() bool { return cb.n.Load() == 1 })
	if m3 := j.Mark(); !m1[0].Less(m3[0]) || !cb.last.Load().Less(m3[0]) {
		t.Fatalf("mark %v after B (at %v) was synced", m3, *cb.last.Load())
	}
}

// TestMarkAtSegmentEnd: a mark taken when a reused segment is durable up to
// its end marker, before the writer has moved to the next segment, must
// replay cleanly: it names the next segment, not the stale bytes after the
// end marker.
func TestMarkAtSegmentEnd(t *testing.T) {
	t.Run("replay", func(t *testing.T) { testMarkAtSegmentEnd(t, false) })
	t.Run("checkpoint then crash", func(t *testing.T) { testMarkAtSegmentEnd(t, true) })
}

func testMarkAtSegmentEnd(t *testing.T, crash bool) {
	mem := vfs.NewMem()
	inj := vfs.NewInjector(mem)
	opts := testOptions(inj, "/j")
	opts.MaxSegmentBytes = 128 << 10
	opts.MaxBackups = -1
	j := mustOpen(t, opts)
	for e := int64(0); e < 200; e++ {
		if _, err := j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.SetCheckpoint(j.Mark()); err != nil {
		t.Fatal(err)
	}
	j.Close()

	// Reopen with smaller segments: the first one reuses a 128 KiB file,
	// so stale bytes follow its end marker. Hold the making of the next,
	// from before the reopen (the preparer makes it at once).
	segs, _, _ := listSegments(mem, "/j")
	cur := segs[len(segs)-1].num + 1 // the segment the reopen will write
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	defer open()
	inj.Add(vfs.Rule{
		Ops:    []vfs.Op{vfs.OpCreate, vfs.OpRename},
		Path:   vfs.PathEquals("/j/" + SegmentName(cur+1)),
		Action: vfs.Call(func(vfs.Op, string) error { <-release; return nil }),
	})
	opts.MaxSegmentBytes = 64 << 10
	j = mustOpen(t, opts)
	defer func() { j.Close() }()
	d := j.dirs[0]
	if got := j.Mark()[0].File; got != cur {
		t.Fatalf("reopened at segment %d, want %d", got, cur)
	}
	if j.Stats().Recycled == 0 {
		t.Fatal("the segment was not made from a reused file")
	}
	var cb countCB
	n := int32(0)
	for e := int64(1000); j.Mark()[0].File == cur && e < 2000; e++ {
		if err := j.Append(record.KindEntry, 1, e, payloadFor(1, e, 1000), &cb); err != nil {
			t.Fatal(err)
		}
		n++
		d.mu.Lock()
		rotated := len(d.mu.switches) > 0
		d.mu.Unlock()
		if rotated {
			waitFor(t, "the old segment to be durable to its end", func() bool {
				d.mu.Lock()
				defer d.mu.Unlock()
				return d.durable.Load() >= d.mu.switches[0].at
			})
			break
		}
	}
	mark := j.Mark()
	if mark[0].File != cur+1 || mark[0].Offset != 4096 {
		t.Fatalf("mark %v at the end of segment %d, want the start of segment %d", mark, cur, cur+1)
	}
	if crash {
		// Checkpoint at that mark, then lose power before the next
		// segment exists. The segment being written must survive, so
		// that the restart numbers its new segment past the checkpoint.
		if err := j.SetCheckpoint(mark); err != nil {
			t.Fatal(err)
		}
		mem.CrashAfter(mem.Ops())
		open()
		j.Close()
		mem.Crash()
		recovered := testOptionsLike(opts, mem)
		j = mustOpen(t, recovered)
		if _, err := replayAll(t, j, mark); err != nil {
			t.Fatalf("replay from %v after the crash: %v", mark, err)
		}
		for e := int64(5000); e < 5003; e++ {
			if _, err := j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 100)); err != nil {
				t.Fatal(err)
			}
		}
		j.Close()
		j = mustOpen(t, recovered)
		got, err := replayAll(t, j, mark)
		if err != nil || len(got) < 3 || got[len(got)-1].entry != 5002 {
			t.Fatalf("records appended after the restart not replayed from %v: %d records, %v", mark, len(got), err)
		}
		return
	}
	open()
	waitFor(t, "completions", func() bool { return cb.n.Load() == n })
	j.Close()
	j = mustOpen(t, testOptionsLike(opts, mem))
	if _, err := replayAll(t, j, mark); err != nil {
		t.Fatalf("replay from %v: %v", mark, err)
	}
}

// TestCheckpointAtEmptySegmentCrash: a checkpoint naming the start of a
// segment that holds nothing durable yet, with every older segment freed,
// then a power cut: the restart must not number its new segment below the
// checkpoint.
func TestCheckpointAtEmptySegmentCrash(t *testing.T) {
	mem := vfs.NewMem()
	opts := testOptions(mem, "/j")
	opts.MaxSegmentBytes = 64 << 10
	opts.MaxBackups = -1
	j := mustOpen(t, opts)
	for e := int64(0); j.Mark()[0].File < 4; e++ {
		if _, err := j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 3000)); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()
	j = mustOpen(t, opts) // a new, empty segment
	mark := j.Mark()
	if mark[0].Offset != 4096 {
		t.Fatalf("mark %v: expected the start of an empty segment", mark)
	}
	if err := j.SetCheckpoint(mark); err != nil {
		t.Fatal(err)
	}
	if segs, _, _ := listSegments(mem, "/j"); len(segs) == 0 || segs[0].num != mark[0].File {
		t.Fatalf("segments after the checkpoint: %+v", segs)
	}
	mem.CrashAfter(mem.Ops())
	j.Close()
	mem.Crash()
	j = mustOpen(t, opts)
	if m := j.Mark(); m[0].Less(mark[0]) {
		t.Fatalf("after the crash the journal writes at %v, below the checkpoint %v", m[0], mark[0])
	}
	if _, err := j.AppendSync(record.KindEntry, 1, 9999, payloadFor(1, 9999, 10)); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = mustOpen(t, opts)
	defer j.Close()
	got, err := replayAll(t, j, mark)
	if err != nil || len(got) != 1 || got[0].entry != 9999 {
		t.Fatalf("replay from %v: %+v, %v", mark, got, err)
	}
}
