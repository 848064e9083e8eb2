package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// quietLogger discards the journal's log lines in tests.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// payloadFor is the deterministic payload of (ledger, entry): a header that
// names them, then filler derived from them, so replay can tell a record
// that was appended from anything else.
func payloadFor(ledger, entry int64, size int) []byte {
	size = max(size, 16)
	p := make([]byte, size)
	binary.LittleEndian.PutUint64(p[0:], uint64(ledger))
	binary.LittleEndian.PutUint64(p[8:], uint64(entry))
	x := uint32(ledger*7919 + entry*104729 + 1)
	for i := 16; i < size; i++ {
		x = x*1664525 + 1013904223
		p[i] = byte(x >> 24)
	}
	return p
}

// sizeFor gives records varied sizes, some crossing blocks.
func sizeFor(ledger, entry int64) int { return 16 + int((ledger*31+entry*977)%3000) }

type replayed struct {
	pos    Pos
	h      record.Header
	ledger int64
	entry  int64
}

// replayAll replays from cp, checking every record's payload against
// payloadFor, and returns them.
func replayAll(t testing.TB, j *Journal, cp Checkpoint) ([]replayed, error) {
	t.Helper()
	var out []replayed
	err := j.Replay(cp, func(pos Pos, h record.Header, p []byte) error {
		if h.Kind == record.KindEntry {
			if want := payloadFor(h.Ledger, h.Entry, len(p)); !bytes.Equal(p, want) {
				return fmt.Errorf("record %d:%d at %v: payload is not what was appended", h.Ledger, h.Entry, pos)
			}
		}
		out = append(out, replayed{pos: pos, h: h, ledger: h.Ledger, entry: h.Entry})
		return nil
	})
	return out, err
}

func testOptions(fs vfs.FS, dirs ...string) Options {
	return Options{
		Dirs:            dirs,
		FS:              fs,
		MaxSegmentBytes: 256 << 10,
		PreallocBytes:   64 << 10,
		QueueMaxBytes:   1 << 20,
		Logger:          quietLogger(),
	}
}

func mustOpen(t testing.TB, opts Options) *Journal {
	t.Helper()
	j, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j
}

// fsCases are the filesystems every basic test runs on: the OS with direct
// I/O, the OS buffered, and the memory filesystem without O_DIRECT support
// (exercising the fallback).
func fsCases(t *testing.T) map[string]func(t *testing.T) (vfs.FS, string, bool) {
	return map[string]func(t *testing.T) (vfs.FS, string, bool){
		"os-direct":   func(t *testing.T) (vfs.FS, string, bool) { return vfs.Default, t.TempDir(), false },
		"os-buffered": func(t *testing.T) (vfs.FS, string, bool) { return vfs.Default, t.TempDir(), true },
		"mem-nodirect": func(t *testing.T) (vfs.FS, string, bool) {
			m := vfs.NewMem()
			m.SetDirectSupport(false)
			return m, "/journal", false
		},
	}
}

func TestAppendReplay(t *testing.T) {
	for name, mk := range fsCases(t) {
		t.Run(name, func(t *testing.T) {
			fs, root, buffered := mk(t)
			opts := testOptions(fs, filepath.Join(root, "a"), filepath.Join(root, "b"))
			opts.DisableDirectIO = buffered
			j := mustOpen(t, opts)
			type ack struct {
				ledger, entry int64
				pos           Pos
			}
			var acks []ack
			for e := int64(0); e < 40; e++ {
				for l := int64(1); l <= 3; l++ {
					pos, err := j.AppendSync(record.KindEntry, l, e, payloadFor(l, e, sizeFor(l, e)))
					if err != nil {
						t.Fatal(err)
					}
					if pos.Dir != j.DirFor(l) {
						t.Fatalf("ledger %d in dir %d, want %d", l, pos.Dir, j.DirFor(l))
					}
					acks = append(acks, ack{l, e, pos})
				}
			}
			if _, err := j.AppendSync(record.KindFence, 2, -1, nil); err != nil {
				t.Fatal(err)
			}
			st := j.Stats()
			if st.Records != 121 || st.Syncs == 0 || st.WrittenBytes%4096 != 0 || len(st.Dirs) != 2 {
				t.Fatalf("stats %+v", st)
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := j.AppendSync(record.KindEntry, 1, 99, nil); !errors.Is(err, ErrClosed) || !errors.Is(err, base.ErrClosed) {
				t.Fatalf("append after close: %v", err)
			}

			j = mustOpen(t, opts)
			defer j.Close()
			got, err := replayAll(t, j, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 121 {
				t.Fatalf("replayed %d records, want 121", len(got))
			}
			byPos := map[Pos]replayed{}
			for _, r := range got {
				byPos[r.pos] = r
			}
			for _, a := range acks {
				r, ok := byPos[a.pos]
				if !ok || r.ledger != a.ledger || r.entry != a.entry {
					t.Fatalf("ack %d:%d at %v: replayed %+v", a.ledger, a.entry, a.pos, r)
				}
			}
			checkOrder(t, got)
			// The fence was the last record appended to ledger 2's directory.
			var lastOfDir replayed
			for _, r := range got {
				if r.pos.Dir == j.DirFor(2) {
					lastOfDir = r
				}
			}
			if lastOfDir.h.Kind != record.KindFence || lastOfDir.ledger != 2 {
				t.Fatalf("last record of dir %d: %+v, want the fence of ledger 2", j.DirFor(2), lastOfDir)
			}
		})
	}
}

// checkOrder checks that each ledger's entries replay in increasing order
// and positions increase within a directory.
func checkOrder(t testing.TB, got []replayed) {
	t.Helper()
	lastEntry := map[int64]int64{}
	lastPos := map[int]Pos{}
	for _, r := range got {
		if p, ok := lastPos[r.pos.Dir]; ok && !p.Less(r.pos) {
			t.Fatalf("position %v after %v", r.pos, p)
		}
		lastPos[r.pos.Dir] = r.pos
		if r.h.Kind != record.KindEntry {
			continue
		}
		if e, ok := lastEntry[r.ledger]; ok && r.entry <= e {
			t.Fatalf("ledger %d: entry %d replayed after %d", r.ledger, r.entry, e)
		}
		lastEntry[r.ledger] = r.entry
	}
}

func TestConcurrentAppends(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/j/0", "/j/1")
	opts.MaxSegmentBytes = 64 << 10
	j := mustOpen(t, opts)
	const goroutines, perG = 8, 150
	var wg sync.WaitGroup
	var fails atomic.Int32
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ledger := int64(g + 10)
			var pending sync.WaitGroup
			for e := int64(0); e < perG; e++ {
				pending.Add(1)
				cb := CallbackFunc(func(_ Pos, err error) {
					if err != nil {
						fails.Add(1)
					}
					pending.Done()
				})
				if err := j.Append(record.KindEntry, ledger, e, payloadFor(ledger, e, sizeFor(ledger, e)), cb); err != nil {
					t.Error(err)
					pending.Done()
				}
			}
			pending.Wait()
		}()
	}
	wg.Wait()
	if fails.Load() != 0 {
		t.Fatalf("%d appends failed", fails.Load())
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = mustOpen(t, opts)
	defer j.Close()
	got, err := replayAll(t, j, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != goroutines*perG {
		t.Fatalf("replayed %d, want %d", len(got), goroutines*perG)
	}
	checkOrder(t, got)
	segs, _, _ := listSegments(fs, "/j/0")
	if len(segs) < 3 {
		t.Fatalf("expected rotation, found %d segments", len(segs))
	}
}

// TestLoneAddNotHeld: with a group wait of an hour, a lone add still
// completes: the wait only bounds a group's accumulation while a sync runs.
func TestLoneAddNotHeld(t *testing.T) {
	opts := testOptions(vfs.NewMem(), "/j")
	opts.MaxGroupWait = time.Hour
	opts.BufferedWritesThreshold = -1
	j := mustOpen(t, opts)
	defer j.Close()
	for e := int64(0); e < 5; e++ {
		if _, err := j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 100)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAppendErrors(t *testing.T) {
	opts := testOptions(vfs.NewMem(), "/j")
	opts.QueueMaxBytes = 64 << 10
	j := mustOpen(t, opts)
	defer j.Close()
	if _, err := j.AppendSync(record.KindPadding, 1, 0, nil); !errors.Is(err, ErrKind) {
		t.Fatalf("padding kind: %v", err)
	}
	if _, err := j.AppendSync(record.KindInvalid, 1, 0, nil); !errors.Is(err, ErrKind) {
		t.Fatalf("invalid kind: %v", err)
	}
	if _, err := j.AppendSync(record.KindEntry, 1, 0, make([]byte, 64<<10)); !errors.Is(err, base.ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	if err := j.Append(record.KindEntry, 1, 0, nil, nil); err == nil {
		t.Fatal("nil callback accepted")
	}
	if _, err := Open(Options{}); err == nil {
		t.Fatal("no dirs accepted")
	}
	if _, err := Open(Options{Dirs: []string{"/x"}, FS: vfs.NewMem(), Alignment: 1000}); err == nil || !strings.Contains(err.Error(), "alignment") {
		t.Fatalf("bad alignment: %v", err)
	}
}

// TestCheckpointRetention: SetCheckpoint deletes the segments wholly below
// the mark, keeping MaxBackups, and replay from the checkpoint returns
// exactly the records at or after it.
func TestCheckpointRetention(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/j")
	opts.MaxSegmentBytes = 64 << 10
	opts.MaxBackups = 2
	j := mustOpen(t, opts)
	for e := int64(0); e < 200; e++ {
		if _, err := j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	mark := j.Mark()
	if mark[0].File < 4 {
		t.Fatalf("mark %v: expected several segments", mark)
	}
	for e := int64(200); e < 230; e++ {
		if _, err := j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := SaveCheckpoint(fs, "/ckpt", mark); err != nil {
		t.Fatal(err)
	}
	if err := j.SetCheckpoint(mark); err != nil {
		t.Fatal(err)
	}
	segs, _, _ := listSegments(fs, "/j")
	if segs[0].num != mark[0].File-2 {
		t.Fatalf("oldest segment %d, want %d (checkpoint %d, 2 backups)", segs[0].num, mark[0].File-2, mark[0].File)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	cp, err := LoadCheckpoint(fs, "/ckpt")
	if err != nil || !slices.Equal(cp, mark) {
		t.Fatalf("loaded %v, %v; want %v", cp, err, mark)
	}
	j = mustOpen(t, opts)
	defer j.Close()
	got, err := replayAll(t, j, cp)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 30 || got[0].entry != 200 || got[29].entry != 229 {
		t.Fatalf("replayed %d records from the checkpoint, first %+v", len(got), got[0])
	}
	// From the beginning is refused: segment 1 is gone.
	if _, err := replayAll(t, j, nil); !errors.Is(err, base.ErrCorruption) {
		t.Fatalf("replay from scratch after retention: %v", err)
	}
}

func TestCheckpointFile(t *testing.T) {
	fs := vfs.NewMem()
	if cp, err := LoadCheckpoint(fs, "/missing"); err != nil || cp != nil {
		t.Fatalf("missing: %v %v", cp, err)
	}
	want := Checkpoint{{Dir: 0, File: 7, Offset: 8192}, {Dir: 1, File: 3, Offset: 4096}}
	if err := SaveCheckpoint(fs, "/c", want); err != nil {
		t.Fatal(err)
	}
	fs.Crash() // durable once SaveCheckpoint returned
	got, err := LoadCheckpoint(fs, "/c")
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %v %v", got, err)
	}
	f, _ := fs.OpenFile("/c", vfs.OpenOptions{Write: true})
	f.WriteAt([]byte{0xff}, 20)
	f.Close()
	if _, err := LoadCheckpoint(fs, "/c"); !errors.Is(err, base.ErrCorruption) {
		t.Fatalf("damaged: %v", err)
	}
}

func TestDump(t *testing.T) {
	fs := vfs.NewMem()
	j := mustOpen(t, testOptions(fs, "/j"))
	j.AppendSync(record.KindEntry, 5, 0, payloadFor(5, 0, 100))
	j.AppendSync(record.KindFence, 5, -1, nil)
	j.Close()
	var out bytes.Buffer
	if err := Dump(fs, "/j", &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"0000000000000001.journal", "entry   ledger=5 entry=0 len=100", "fence   ledger=5 entry=-1", "clean end"} {
		if !strings.Contains(s, want) {
			t.Fatalf("dump lacks %q:\n%s", want, s)
		}
	}
}

// TestRecycling: segments freed by a checkpoint are reused for new segments;
// a reused segment that ends before its old contents does so with a
// segment-end record, and the stale bytes after it replay as nothing.
func TestRecycling(t *testing.T) {
	fs := vfs.NewMem()
	opts := testOptions(fs, "/j")
	opts.MaxSegmentBytes = 128 << 10
	opts.MaxBackups = -1
	j := mustOpen(t, opts)
	for e := int64(0); e < 300; e++ { // ~10 segments
		if _, err := j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	cp := j.Mark()
	if err := j.SetCheckpoint(cp); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.List("/j")
	if n := countSuffix(names, recycleSuffix); n != maxRecycle {
		t.Fatalf("%d files kept for reuse, want %d: %v", n, maxRecycle, names)
	}
	if n := countSuffix(names, deadSuffix); n != 0 {
		t.Fatalf("%d removals left unfinished: %v", n, names)
	}
	// Reopen with smaller segments: the recycled files are found again
	// and outlast the segments made from them. A removal that a crash cut
	// short (a file renamed out of the segments and partly shrunk) is
	// finished by Open.
	j.Close()
	dead := "/j/" + deadName(99)
	f, err := fs.Create(dead)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 5000))
	f.Close()
	opts.MaxSegmentBytes = 64 << 10
	j = mustOpen(t, opts)
	if _, err := fs.Stat(dead); !vfs.IsNotExist(err) {
		t.Fatalf("Open left %s: %v", dead, err)
	}
	for e := int64(300); e < 500; e++ {
		if _, err := j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 2500)); err != nil {
			t.Fatal(err)
		}
	}
	if st := j.Stats(); st.Recycled < maxRecycle {
		t.Fatalf("%d segments made from recycled files, want at least %d", st.Recycled, maxRecycle)
	}
	j.Close()
	var out bytes.Buffer
	Dump(fs, "/j", &out)
	if !strings.Contains(out.String(), "stale bytes of a recycled file follow") {
		t.Fatalf("no recycled segment ends before its old contents:\n%s", out.String())
	}
	j = mustOpen(t, opts)
	defer j.Close()
	got, err := replayAll(t, j, cp)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 200 || got[0].entry != 300 {
		t.Fatalf("replayed %d records from %v", len(got), cp)
	}
	checkOrder(t, got)
}

func countSuffix(names []string, suffix string) int {
	n := 0
	for _, name := range names {
		if strings.HasSuffix(name, suffix) {
			n++
		}
	}
	return n
}

// TestDirectoryLock: a journal directory is open in one journal at a time;
// a second Open fails with vfs.ErrLocked, and the directory is free again
// once the first is closed.
func TestDirectoryLock(t *testing.T) {
	opts := testOptions(vfs.Default, t.TempDir())
	j := mustOpen(t, opts)
	if j2, err := Open(opts); !errors.Is(err, vfs.ErrLocked) {
		if err == nil {
			j2.Close()
		}
		t.Fatalf("second Open of the same directory: %v, want vfs.ErrLocked", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, opts).Close()
}
