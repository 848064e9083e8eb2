package vfs

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// injEnv is an Injector over a MemFS holding /d/f ("content", synced) and
// an open handle on it.
type injEnv struct {
	mem *MemFS
	in  *Injector
	f   File
}

func newInjEnv(t *testing.T) *injEnv {
	t.Helper()
	mem := NewMem()
	must(t, mem.MkdirAll("/d", 0o755))
	writeFile(t, mem, "/d/f", "content")
	must(t, mem.SyncDir("/d"))
	in := NewInjector(mem)
	f, err := in.OpenFile("/d/f", OpenOptions{Write: true})
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return &injEnv{mem: mem, in: in, f: f}
}

// injectedOps lists, for each operation, a call of it and a check that a
// failed call did not reach the wrapped FS.
var injectedOps = []struct {
	op        Op
	call      func(e *injEnv) error
	unchanged func(t *testing.T, e *injEnv)
}{
	{OpOpen, func(e *injEnv) error { _, err := e.in.Open("/d/f"); return err }, nil},
	{OpCreate, func(e *injEnv) error { _, err := e.in.Create("/d/new"); return err }, func(t *testing.T, e *injEnv) {
		if _, err := e.mem.Stat("/d/new"); !IsNotExist(err) {
			t.Errorf("failed create made the file: %v", err)
		}
	}},
	{OpRead, func(e *injEnv) error { _, err := e.f.Read(make([]byte, 3)); return err }, nil},
	{OpReadAt, func(e *injEnv) error { _, err := e.f.ReadAt(make([]byte, 3), 0); return err }, nil},
	{OpWrite, func(e *injEnv) error { _, err := e.f.Write([]byte("XXXXXXX")); return err }, contentIs("content")},
	{OpWriteAt, func(e *injEnv) error { _, err := e.f.WriteAt([]byte("XX"), 2); return err }, contentIs("content")},
	{OpSync, func(e *injEnv) error { return e.f.Sync() }, nil},
	{OpPreallocate, func(e *injEnv) error { return e.f.Preallocate(0, 1<<20) }, nil},
	{OpTruncate, func(e *injEnv) error { return e.f.Truncate(1) }, contentIs("content")},
	{OpStat, func(e *injEnv) error { _, err := e.f.Stat(); return err }, nil},
	{OpRemove, func(e *injEnv) error { return e.in.Remove("/d/f") }, contentIs("content")},
	{OpRemoveAll, func(e *injEnv) error { return e.in.RemoveAll("/d") }, contentIs("content")},
	{OpRename, func(e *injEnv) error { return e.in.Rename("/d/f", "/d/g") }, contentIs("content")},
	{OpMkdirAll, func(e *injEnv) error { return e.in.MkdirAll("/d/sub", 0o755) }, func(t *testing.T, e *injEnv) {
		if _, err := e.mem.Stat("/d/sub"); !IsNotExist(err) {
			t.Errorf("failed MkdirAll made the directory: %v", err)
		}
	}},
	{OpList, func(e *injEnv) error { _, err := e.in.List("/d"); return err }, nil},
	{OpSyncDir, func(e *injEnv) error { return e.in.SyncDir("/d") }, nil},
	{OpDiskUsage, func(e *injEnv) error { _, err := e.in.DiskUsage("/d"); return err }, nil},
	{OpClose, func(e *injEnv) error { return e.f.Close() }, nil},
}

func contentIs(want string) func(t *testing.T, e *injEnv) {
	return func(t *testing.T, e *injEnv) {
		t.Helper()
		if got := readFile(t, e.mem, "/d/f"); got != want {
			t.Errorf("/d/f holds %q, want %q: the failed call reached the FS", got, want)
		}
	}
}

// TestInjectorFailEachOp fails each operation in turn with each kind of
// error, and checks that only that operation fails and that it did not
// reach the wrapped FS.
func TestInjectorFailEachOp(t *testing.T) {
	errs := []struct {
		name string
		err  error
		is   []error
	}{
		{"default", nil, []error{ErrInjected}},
		{"ENOSPC", syscall.ENOSPC, []error{ErrInjected, syscall.ENOSPC}},
		{"EIO", syscall.EIO, []error{ErrInjected, syscall.EIO}},
	}
	for _, target := range injectedOps {
		for _, e := range errs {
			t.Run(fmt.Sprintf("%s/%s", target.op, e.name), func(t *testing.T) {
				env := newInjEnv(t)
				h := env.in.Add(Rule{Ops: []Op{target.op}, Action: Fail(e.err)})
				// Every other operation still works.
				for _, other := range injectedOps {
					if other.op == target.op || other.op == OpClose || other.op == OpRemoveAll ||
						other.op == OpRemove || other.op == OpRename || other.op == OpTruncate ||
						other.op == OpWrite || other.op == OpWriteAt {
						continue // these would disturb the fixture
					}
					if err := other.call(env); err != nil {
						t.Fatalf("%s with a rule on %s: %v", other.op, target.op, err)
					}
				}
				err := target.call(env)
				for _, want := range e.is {
					if !errors.Is(err, want) {
						t.Fatalf("%s: %v, want errors.Is %v", target.op, err, want)
					}
				}
				if want := e.err == syscall.ENOSPC; IsNoSpace(err) != want {
					t.Fatalf("IsNoSpace(%v) = %v", err, !want)
				}
				if target.unchanged != nil {
					target.unchanged(t, env)
				}
				if h.Fired() != 1 {
					t.Fatalf("Fired() = %d, want 1", h.Fired())
				}
				// Once removed, the rule no longer fails the call.
				h.Remove()
				if target.op == OpClose {
					return // the handle is closed now
				}
				if err := target.call(env); err != nil {
					t.Fatalf("%s after removing the rule: %v", target.op, err)
				}
			})
		}
	}
}

func TestInjectorShortWrite(t *testing.T) {
	cases := []struct {
		name    string
		action  Action
		op      Op
		payload string
		wantN   int
		wantErr []error
		content string
	}{
		{"Write default", ShortWrite(3, nil), OpWrite, "ABCDEFG", 3, []error{io.ErrShortWrite, ErrInjected}, "ABCtent"},
		{"WriteAt ENOSPC", ShortWrite(2, syscall.ENOSPC), OpWriteAt, "XYZ", 2, []error{syscall.ENOSPC, ErrInjected}, "cXYtent"},
		{"nothing written", ShortWrite(0, syscall.ENOSPC), OpWrite, "ZZZ", 0, []error{syscall.ENOSPC}, "content"},
		{"write not longer than n passes", ShortWrite(5, nil), OpWrite, "ABCDE", 5, nil, "ABCDEnt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newInjEnv(t)
			env.in.Add(Rule{Action: c.action}) // every op: ShortWrite picks writes only
			var n int
			var err error
			if c.op == OpWrite {
				n, err = env.f.Write([]byte(c.payload))
			} else {
				n, err = env.f.WriteAt([]byte(c.payload), 1)
			}
			if n != c.wantN {
				t.Errorf("wrote %d, want %d", n, c.wantN)
			}
			if c.wantErr == nil && err != nil {
				t.Errorf("error %v, want none", err)
			}
			for _, want := range c.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("error %v, want errors.Is %v", err, want)
				}
			}
			if got := readFile(t, env.mem, "/d/f"); got != c.content {
				t.Errorf("file holds %q, want %q", got, c.content)
			}
			// Other operations are not touched by a ShortWrite rule.
			must(t, env.f.Sync())
			must(t, env.in.SyncDir("/d"))
		})
	}
}

func TestInjectorDelayAndCall(t *testing.T) {
	env := newInjEnv(t)
	var slept []time.Duration
	env.in.SetSleep(func(d time.Duration) { slept = append(slept, d) })
	env.in.Add(Rule{Ops: []Op{OpSync}, Action: Delay(7 * time.Millisecond)})
	must(t, env.f.Sync())
	if fmt.Sprint(slept) != "[7ms]" {
		t.Fatalf("slept %v, want [7ms]", slept)
	}
	// The delayed operation still happens.
	_, err := env.f.WriteAt([]byte("C"), 0)
	must(t, err)
	must(t, env.f.Sync())
	env.mem.Crash()
	if got := readFile(t, env.mem, "/d/f"); got != "Content" {
		t.Fatalf("delayed sync did not sync: %q", got)
	}

	env = newInjEnv(t)
	var calls []string
	boom := errors.New("boom")
	env.in.Add(Rule{Ops: []Op{OpRename}, Action: Call(func(op Op, path string) error {
		calls = append(calls, op.String()+" "+path)
		if len(calls) == 1 {
			return nil
		}
		return boom
	})})
	must(t, env.in.Rename("/d/f", "/d/g")) // fn returned nil: the rename happens
	if _, err := env.mem.Stat("/d/g"); err != nil {
		t.Fatalf("rename did not happen: %v", err)
	}
	err = env.in.Rename("/d/g", "/d/h")
	if !errors.Is(err, boom) || !errors.Is(err, ErrInjected) {
		t.Fatalf("rename with fn failing: %v", err)
	}
	if _, err := env.mem.Stat("/d/g"); err != nil {
		t.Fatalf("failed rename moved the file: %v", err)
	}
	if want := "[rename /d/f rename /d/g]"; fmt.Sprint(calls) != want {
		t.Fatalf("calls %v, want %s", calls, want)
	}
}

// TestInjectorCallHoldsOperation blocks a Sync inside a Call action until the
// test lets it go, as a group-commit test holds an fsync.
func TestInjectorCallHoldsOperation(t *testing.T) {
	env := newInjEnv(t)
	entered, release := make(chan struct{}), make(chan struct{})
	env.in.Add(Rule{Ops: []Op{OpSync}, Times: 1, Action: Call(func(Op, string) error {
		close(entered)
		<-release
		return nil
	})})
	done := make(chan error, 1)
	go func() { done <- env.f.Sync() }()
	<-entered
	select {
	case err := <-done:
		t.Fatalf("Sync returned (%v) while held", err)
	default:
	}
	// Other operations go on meanwhile: the Injector holds no lock in fn.
	_, err := env.f.WriteAt([]byte("x"), 0)
	must(t, err)
	close(release)
	must(t, <-done)
}

func TestInjectorPathFilter(t *testing.T) {
	cases := []struct {
		name string
		path func(string) bool
		fail []string // of /d/a.log, /d/b.idx, /e/a.log
	}{
		{"suffix", PathSuffix(".log"), []string{"/d/a.log", "/e/a.log"}},
		{"prefix", PathPrefix("/d/"), []string{"/d/a.log", "/d/b.idx"}},
		{"equals", PathEquals("/d/b.idx"), []string{"/d/b.idx"}},
		{"nil means all", nil, []string{"/d/a.log", "/d/b.idx", "/e/a.log"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := NewInjector(NewMem())
			must(t, in.MkdirAll("/d", 0o755))
			must(t, in.MkdirAll("/e", 0o755))
			in.Add(Rule{Ops: []Op{OpCreate}, Path: c.path})
			var failed []string
			for _, p := range []string{"/d/a.log", "/d/b.idx", "/e/a.log"} {
				f, err := in.Create(p)
				if err != nil {
					failed = append(failed, p)
					continue
				}
				f.Close()
			}
			if !slices.Equal(failed, c.fail) {
				t.Fatalf("failed %v, want %v", failed, c.fail)
			}
		})
	}
	// A Rename matches by either name.
	in := NewInjector(NewMem())
	writeFile(t, in, "/a", "")
	writeFile(t, in, "/c", "")
	in.Add(Rule{Ops: []Op{OpRename}, Path: PathEquals("/b")})
	if err := in.Rename("/a", "/b"); !errors.Is(err, ErrInjected) {
		t.Fatalf("rename to the chosen path: %v", err)
	}
	must(t, in.Rename("/c", "/d"))
}

func TestInjectorTriggers(t *testing.T) {
	cases := []struct {
		name string
		rule Rule
		want string // outcome of 8 consecutive Syncs: . ok, X failed
	}{
		{"every time", Rule{}, "XXXXXXXX"},
		{"one-shot", Rule{Times: 1}, "X......."},
		{"twice", Rule{Times: 2}, "XX......"},
		{"after 3", Rule{After: 3}, "...XXXXX"},
		{"after 3 once", Rule{After: 3, Times: 1}, "...X...."},
		{"probability 1", Rule{Probability: 1}, "XXXXXXXX"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newInjEnv(t)
			c.rule.Ops = []Op{OpSync}
			h := env.in.Add(c.rule)
			got := ""
			for range 8 {
				if err := env.f.Sync(); err != nil {
					got += "X"
				} else {
					got += "."
				}
			}
			if got != c.want {
				t.Fatalf("outcomes %s, want %s", got, c.want)
			}
			if want := int64(strings.Count(c.want, "X")); h.Fired() != want {
				t.Fatalf("Fired() = %d, want %d", h.Fired(), want)
			}
		})
	}
}

func TestInjectorProbability(t *testing.T) {
	run := func(seed uint64) string {
		env := newInjEnv(t)
		env.in.SetSeed(seed)
		env.in.Add(Rule{Ops: []Op{OpSync}, Probability: 0.3})
		out := make([]byte, 1000)
		for i := range out {
			out[i] = '.'
			if env.f.Sync() != nil {
				out[i] = 'X'
			}
		}
		return string(out)
	}
	a := run(5)
	fails := 0
	for _, c := range a {
		if c == 'X' {
			fails++
		}
	}
	// 1000 draws at p=0.3: 300 expected, sd about 14.5; the seed is fixed,
	// so this is deterministic, and a broken probability lands far away.
	if fails < 230 || fails > 370 {
		t.Fatalf("%d of 1000 calls failed at probability 0.3", fails)
	}
	if run(5) != a {
		t.Fatal("the same seed gave a different sequence")
	}
	if run(6) == a {
		t.Fatal("a different seed gave the same sequence")
	}
}

func TestInjectorRuleOrderAndClear(t *testing.T) {
	env := newInjEnv(t)
	first := env.in.Add(Rule{Ops: []Op{OpSync}, Action: Fail(syscall.EIO), Times: 1})
	second := env.in.Add(Rule{Ops: []Op{OpSync}, Action: Fail(syscall.ENOSPC)})
	if err := env.f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("first sync: %v, want the first rule's EIO", err)
	}
	if err := env.f.Sync(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second sync: %v, want the second rule's ENOSPC once the first went quiet", err)
	}
	if first.Fired() != 1 || second.Fired() != 1 {
		t.Fatalf("fired %d and %d", first.Fired(), second.Fired())
	}
	env.in.Clear()
	must(t, env.f.Sync())
	second.Remove() // removing a cleared rule is harmless
	first.Remove()
	must(t, env.f.Sync())
}

// TestInjectorCloseAlwaysCloses checks that a failed Close still releases
// the wrapped handle: the removed file's space comes back.
func TestInjectorCloseAlwaysCloses(t *testing.T) {
	mem := NewMem()
	mem.SetCapacity(1000)
	in := NewInjector(mem)
	f, err := in.Create("/f")
	must(t, err)
	_, err = f.Write(make([]byte, 600))
	must(t, err)
	must(t, in.Remove("/f"))
	in.Add(Rule{Ops: []Op{OpClose}})
	if err := f.Close(); !errors.Is(err, ErrInjected) {
		t.Fatalf("Close: %v", err)
	}
	du, err := in.DiskUsage("/")
	must(t, err)
	if du.FreeBytes != 1000 {
		t.Fatalf("free %d: the wrapped file was not closed", du.FreeBytes)
	}
}

// TestInjectorConcurrentRules adds and removes rules while writers run; each
// write either lands or fails with ErrInjected.
func TestInjectorConcurrentRules(t *testing.T) {
	in := NewInjector(NewMem())
	const writers, writes = 4, 300
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			f, err := in.Create(fmt.Sprintf("/w%d", w))
			if err != nil && !errors.Is(err, ErrInjected) {
				errs <- err
				return
			}
			for f == nil {
				if f, err = in.Create(fmt.Sprintf("/w%d", w)); err != nil && !errors.Is(err, ErrInjected) {
					errs <- err
					return
				}
			}
			defer f.Close()
			for i := range writes {
				if _, err := f.WriteAt([]byte{byte(i)}, int64(i)); err != nil && !errors.Is(err, ErrInjected) {
					errs <- err
					return
				}
			}
		})
	}
	for i := range 200 {
		h := in.Add(Rule{Ops: []Op{OpWriteAt, OpCreate}, Probability: 0.5})
		if i%3 == 0 {
			in.Add(Rule{Times: 1})
		}
		h.Remove()
		if i%10 == 0 {
			in.Clear()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestOpString(t *testing.T) {
	for op := OpOpen; op < numOps; op++ {
		if s := op.String(); strings.HasPrefix(s, "op(") {
			t.Errorf("Op %d has no name", op)
		}
	}
	if s := Op(200).String(); s != "op(200)" {
		t.Errorf("Op(200).String() = %q", s)
	}
}
