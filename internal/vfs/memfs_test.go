package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// longTests makes the randomized loops run longer (MAGNETAR_LONG=1).
var longTests = os.Getenv("MAGNETAR_LONG") == "1"

// tree returns every file under dir (recursively) with its content.
func tree(t *testing.T, fs FS, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	names, err := fs.List(dir)
	must(t, err)
	for _, n := range names {
		p := dir + "/" + n
		fi, err := fs.Stat(p)
		must(t, err)
		if fi.IsDir() {
			for k, v := range tree(t, fs, p) {
				out[n+"/"+k] = v
			}
			continue
		}
		out[n] = readFile(t, fs, p)
	}
	return out
}

func TestMemFSCrash(t *testing.T) {
	type ctx struct {
		t  *testing.T
		fs *MemFS
	}
	create := func(c ctx, name, content string, sync bool) File {
		f, err := c.fs.Create(name)
		must(c.t, err)
		_, err = f.Write([]byte(content))
		must(c.t, err)
		if sync {
			must(c.t, f.Sync())
		}
		return f
	}
	cases := []struct {
		name  string
		setup func(c ctx)
		want  map[string]string // files under /d after the crash
	}{
		{
			name: "unsynced data dropped",
			setup: func(c ctx) {
				create(c, "/d/f", "", true)
				must(c.t, c.fs.SyncDir("/d"))
				f, err := c.fs.OpenFile("/d/f", OpenOptions{Write: true})
				must(c.t, err)
				_, err = f.Write([]byte("lost"))
				must(c.t, err)
			},
			want: map[string]string{"f": ""},
		},
		{
			name: "synced data kept, later writes dropped",
			setup: func(c ctx) {
				f := create(c, "/d/f", "kept", true)
				must(c.t, c.fs.SyncDir("/d"))
				_, err := f.Write([]byte("+lost"))
				must(c.t, err)
				_, err = f.WriteAt([]byte("XX"), 0)
				must(c.t, err)
			},
			want: map[string]string{"f": "kept"},
		},
		{
			name: "sync through another handle covers the inode",
			setup: func(c ctx) {
				f := create(c, "/d/f", "abc", false)
				must(c.t, c.fs.SyncDir("/d"))
				g, err := c.fs.Open("/d/f")
				must(c.t, err)
				must(c.t, g.Sync())
				_, err = f.Write([]byte("def"))
				must(c.t, err)
			},
			want: map[string]string{"f": "abc"},
		},
		{
			name: "create without SyncDir vanishes even when synced",
			setup: func(c ctx) {
				create(c, "/d/f", "data", true)
			},
			want: map[string]string{},
		},
		{
			name: "create with SyncDir but data unsynced leaves an empty file",
			setup: func(c ctx) {
				create(c, "/d/f", "data", false)
				must(c.t, c.fs.SyncDir("/d"))
			},
			want: map[string]string{"f": ""},
		},
		{
			name: "rename without SyncDir reverts",
			setup: func(c ctx) {
				create(c, "/d/a", "A", true)
				must(c.t, c.fs.SyncDir("/d"))
				must(c.t, c.fs.Rename("/d/a", "/d/b"))
			},
			want: map[string]string{"a": "A"},
		},
		{
			name: "rename with SyncDir is durable",
			setup: func(c ctx) {
				create(c, "/d/a", "A", true)
				must(c.t, c.fs.SyncDir("/d"))
				must(c.t, c.fs.Rename("/d/a", "/d/b"))
				must(c.t, c.fs.SyncDir("/d"))
			},
			want: map[string]string{"b": "A"},
		},
		{
			name: "rename over a file without SyncDir brings the old target back",
			setup: func(c ctx) {
				create(c, "/d/manifest", "v1", true)
				must(c.t, c.fs.SyncDir("/d"))
				create(c, "/d/tmp", "v2", true)
				must(c.t, c.fs.Rename("/d/tmp", "/d/manifest"))
			},
			want: map[string]string{"manifest": "v1"},
		},
		{
			name: "atomic replace: write tmp, sync, rename, SyncDir",
			setup: func(c ctx) {
				create(c, "/d/manifest", "v1", true)
				must(c.t, c.fs.SyncDir("/d"))
				create(c, "/d/tmp", "v2", true)
				must(c.t, c.fs.Rename("/d/tmp", "/d/manifest"))
				must(c.t, c.fs.SyncDir("/d"))
			},
			want: map[string]string{"manifest": "v2"},
		},
		{
			name: "remove without SyncDir comes back",
			setup: func(c ctx) {
				create(c, "/d/f", "back", true)
				must(c.t, c.fs.SyncDir("/d"))
				must(c.t, c.fs.Remove("/d/f"))
			},
			want: map[string]string{"f": "back"},
		},
		{
			name: "remove with SyncDir is gone",
			setup: func(c ctx) {
				create(c, "/d/f", "gone", true)
				must(c.t, c.fs.SyncDir("/d"))
				must(c.t, c.fs.Remove("/d/f"))
				must(c.t, c.fs.SyncDir("/d"))
			},
			want: map[string]string{},
		},
		{
			name: "RemoveAll without SyncDir comes back with its content",
			setup: func(c ctx) {
				must(c.t, c.fs.MkdirAll("/d/sub", 0o755))
				create(c, "/d/sub/f", "deep", true)
				must(c.t, c.fs.SyncDir("/d/sub"))
				must(c.t, c.fs.RemoveAll("/d/sub"))
			},
			want: map[string]string{"sub/f": "deep"},
		},
		{
			name: "unsynced truncate reverts, synced truncate holds",
			setup: func(c ctx) {
				a := create(c, "/d/a", "0123456789", true)
				b := create(c, "/d/b", "0123456789", true)
				must(c.t, c.fs.SyncDir("/d"))
				must(c.t, a.Truncate(3))
				must(c.t, b.Truncate(3))
				must(c.t, b.Sync())
			},
			want: map[string]string{"a": "0123456789", "b": "012"},
		},
		{
			name: "Create over a synced file truncates only until the crash",
			setup: func(c ctx) {
				create(c, "/d/f", "old", true)
				must(c.t, c.fs.SyncDir("/d"))
				create(c, "/d/f", "", false)
			},
			want: map[string]string{"f": "old"},
		},
		{
			name: "MkdirAll is durable",
			setup: func(c ctx) {
				must(c.t, c.fs.MkdirAll("/d/x/y", 0o755))
				create(c, "/d/x/y/f", "data", true)
				must(c.t, c.fs.SyncDir("/d/x/y"))
			},
			want: map[string]string{"x/y/f": "data"},
		},
		{
			name: "rename across directories with only the target synced shows both names",
			setup: func(c ctx) {
				must(c.t, c.fs.MkdirAll("/d/from", 0o755))
				must(c.t, c.fs.MkdirAll("/d/to", 0o755))
				create(c, "/d/from/f", "F", true)
				must(c.t, c.fs.SyncDir("/d/from"))
				must(c.t, c.fs.Rename("/d/from/f", "/d/to/f"))
				must(c.t, c.fs.SyncDir("/d/to"))
			},
			want: map[string]string{"from/f": "F", "to/f": "F"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := NewMem()
			must(t, fs.MkdirAll("/d", 0o755))
			c.setup(ctx{t, fs})
			fs.Crash()
			if got := tree(t, fs, "/d"); !maps.Equal(got, c.want) {
				t.Fatalf("after crash: %v, want %v\n%s", got, c.want, fs.Dump())
			}
			checkInvariants(t, fs)
			// The filesystem works normally after the crash.
			writeFile(t, fs, "/d/after", "ok")
			must(t, fs.SyncDir("/d"))
			fs.Crash()
			if got := readFile(t, fs, "/d/after"); got != "ok" {
				t.Fatalf("file written after the crash holds %q", got)
			}
		})
	}
}

func TestMemFSHandlesDieInCrash(t *testing.T) {
	fs := NewMem()
	f, err := fs.Create("/f")
	must(t, err)
	_, err = f.Write([]byte("x"))
	must(t, err)
	must(t, f.Sync())
	must(t, fs.SyncDir("/"))
	fs.Crash()
	checks := map[string]error{}
	_, checks["Write"] = f.Write([]byte("y"))
	_, checks["WriteAt"] = f.WriteAt([]byte("y"), 0)
	_, checks["ReadAt"] = f.ReadAt(make([]byte, 1), 0)
	_, checks["Read"] = f.Read(make([]byte, 1))
	_, checks["Stat"] = f.Stat()
	checks["Sync"] = f.Sync()
	checks["Truncate"] = f.Truncate(0)
	checks["Preallocate"] = f.Preallocate(0, 10)
	for op, err := range checks {
		if !errors.Is(err, ErrCrashed) {
			t.Errorf("%s on a handle from before the crash: %v, want ErrCrashed", op, err)
		}
	}
	must(t, f.Close()) // closing a dead handle is harmless
	if got := readFile(t, fs, "/f"); got != "x" {
		t.Fatalf("content %q after writes through a dead handle", got)
	}
}

func TestMemFSCrashAfterCutsPower(t *testing.T) {
	fs := NewMem()
	var seen []string
	fs.SetOpHook(func(n int64, op Op, path string) { seen = append(seen, fmt.Sprintf("%d:%s:%s", n, op, path)) })
	must(t, fs.MkdirAll("/d", 0o755))
	fs.CrashAfter(3)
	f, err := fs.Create("/d/f") // op 2
	must(t, err)
	_, err = f.Write([]byte("x")) // op 3: the power is cut after it returns
	must(t, err)
	if !fs.PowerCut() {
		t.Fatal("PowerCut false after the chosen operation")
	}
	for op, err := range map[string]error{
		"Sync":    f.Sync(),
		"SyncDir": fs.SyncDir("/d"),
		"Stat":    func() error { _, err := fs.Stat("/d"); return err }(),
		"List":    func() error { _, err := fs.List("/d"); return err }(),
		"Create":  func() error { _, err := fs.Create("/d/g"); return err }(),
	} {
		if !errors.Is(err, ErrCrashed) {
			t.Errorf("%s after the power cut: %v, want ErrCrashed", op, err)
		}
	}
	if got := fs.Ops(); got != 3 {
		t.Errorf("Ops() = %d after the cut, want 3", got)
	}
	if want := "[1:mkdirall:/d 2:create:/d/f 3:write:/d/f]"; fmt.Sprint(seen) != want {
		t.Errorf("hook saw %v, want %s", seen, want)
	}
	fs.Crash()
	if fs.PowerCut() {
		t.Fatal("PowerCut true after Crash")
	}
	if names, err := fs.List("/d"); err != nil || len(names) != 0 {
		t.Fatalf("after the crash /d holds %v, %v", names, err)
	}
	// CrashAfter with a count already reached cuts at once.
	fs.CrashAfter(fs.Ops())
	if !fs.PowerCut() {
		t.Fatal("CrashAfter(Ops()) did not cut the power")
	}
}

// wop is one mutating operation of a crash-test workload, applied both to a
// MemFS and to the reference model.
type wop struct {
	kind string // create, write, writeat, sync, truncate, rename, remove, syncdir
	h    string // handle label (create, write, writeat, sync, truncate)
	name string // create, rename, remove
	to   string // rename
	off  int64  // writeat offset; truncate size
	data string
}

func (w wop) String() string {
	switch w.kind {
	case "create":
		return fmt.Sprintf("create %s as %s", w.name, w.h)
	case "write":
		return fmt.Sprintf("write %s %q", w.h, w.data)
	case "writeat":
		return fmt.Sprintf("writeat %s %d %q", w.h, w.off, w.data)
	case "sync":
		return "sync " + w.h
	case "truncate":
		return fmt.Sprintf("truncate %s %d", w.h, w.off)
	case "rename":
		return fmt.Sprintf("rename %s %s", w.name, w.to)
	case "remove":
		return "remove " + w.name
	}
	return w.kind
}

// run performs w on fs under /d.
func (w wop) run(fs FS, handles map[string]File) error {
	if _, ok := handles[w.h]; w.h != "" && w.kind != "create" && !ok {
		// Its create failed, which the caller checked was because of a
		// power cut.
		return fmt.Errorf("handle %s was never opened: %w", w.h, ErrCrashed)
	}
	switch w.kind {
	case "create":
		f, err := fs.Create("/d/" + w.name)
		if err == nil {
			handles[w.h] = f
		}
		return err
	case "write":
		_, err := handles[w.h].Write([]byte(w.data))
		return err
	case "writeat":
		_, err := handles[w.h].WriteAt([]byte(w.data), w.off)
		return err
	case "sync":
		return handles[w.h].Sync()
	case "truncate":
		return handles[w.h].Truncate(w.off)
	case "rename":
		return fs.Rename("/d/"+w.name, "/d/"+w.to)
	case "remove":
		return fs.Remove("/d/" + w.name)
	case "syncdir":
		return fs.SyncDir("/d")
	}
	panic("unknown op " + w.kind)
}

// model is the durability contract written as plainly as possible: inodes
// with current and synced content, a directory with current and synced
// entries.
type model struct {
	handles  map[string]*minode
	pos      map[string]int64 // file offset of each handle
	cur, dur map[string]*minode
}

type minode struct{ cur, synced []byte }

func newModel() *model {
	return &model{handles: map[string]*minode{}, pos: map[string]int64{}, cur: map[string]*minode{}, dur: map[string]*minode{}}
}

func modelWrite(b []byte, off int64, p string) []byte {
	for int64(len(b)) < off+int64(len(p)) {
		b = append(b, 0)
	}
	copy(b[off:], p)
	return b
}

func (m *model) apply(w wop) {
	switch w.kind {
	case "create":
		n := m.cur[w.name]
		if n == nil {
			n = &minode{}
			m.cur[w.name] = n
		}
		n.cur = nil
		m.handles[w.h] = n
		m.pos[w.h] = 0
	case "write":
		n := m.handles[w.h]
		n.cur = modelWrite(n.cur, m.pos[w.h], w.data)
		m.pos[w.h] += int64(len(w.data))
	case "writeat":
		n := m.handles[w.h]
		n.cur = modelWrite(n.cur, w.off, w.data)
	case "sync":
		n := m.handles[w.h]
		n.synced = slices.Clone(n.cur)
	case "truncate":
		n := m.handles[w.h]
		if int64(len(n.cur)) > w.off {
			n.cur = n.cur[:w.off]
		} else {
			n.cur = modelWrite(n.cur, w.off, "")
		}
	case "rename":
		n := m.cur[w.name]
		delete(m.cur, w.name)
		m.cur[w.to] = n
	case "remove":
		delete(m.cur, w.name)
	case "syncdir":
		m.dur = maps.Clone(m.cur)
	}
}

// durable is what a crash must leave: the synced entries with their
// inodes' synced content.
func (m *model) durable() map[string]string {
	out := map[string]string{}
	for name, n := range m.dur {
		out[name] = string(n.synced)
	}
	return out
}

// scriptedWorkload is a journal-and-manifest-like sequence: appends, syncs,
// an atomic manifest replacement, truncation, removal.
func scriptedWorkload() []wop {
	return []wop{
		{kind: "create", h: "a", name: "a"},
		{kind: "write", h: "a", data: "one."},
		{kind: "sync", h: "a"},
		{kind: "syncdir"},
		{kind: "write", h: "a", data: "two."},
		{kind: "create", h: "tmp1", name: "tmp"},
		{kind: "write", h: "tmp1", data: "manifest-1"},
		{kind: "sync", h: "tmp1"},
		{kind: "rename", name: "tmp", to: "m"},
		{kind: "syncdir"},
		{kind: "write", h: "a", data: "three."},
		{kind: "sync", h: "a"},
		{kind: "truncate", h: "a", off: 4},
		{kind: "create", h: "b", name: "b"},
		{kind: "write", h: "b", data: "bee"},
		{kind: "sync", h: "b"},
		{kind: "remove", name: "a"},
		{kind: "rename", name: "b", to: "c"},
		{kind: "syncdir"},
		{kind: "writeat", h: "b", off: 0, data: "B"},
		{kind: "sync", h: "b"},
		{kind: "create", h: "tmp2", name: "tmp"},
		{kind: "write", h: "tmp2", data: "manifest-2"},
		{kind: "sync", h: "tmp2"},
		{kind: "rename", name: "tmp", to: "m"},
		{kind: "remove", name: "c"},
		{kind: "syncdir"},
		{kind: "write", h: "a", data: "to an unlinked inode"},
		{kind: "sync", h: "a"},
	}
}

// randomWorkload draws n operations on a few names, valid for the state the
// model is in when each is drawn.
func randomWorkload(seed uint64, n int) []wop {
	rng := rand.New(rand.NewPCG(seed, 0))
	m := newModel()
	var ops []wop
	names := []string{"a", "b", "c", "d"}
	handles := 0
	for len(ops) < n {
		var w wop
		pickHandle := func() string { return fmt.Sprint("h", rng.IntN(handles)) }
		existing := slices.Sorted(maps.Keys(m.cur))
		switch k := rng.IntN(10); {
		case k == 0 || handles == 0:
			w = wop{kind: "create", h: fmt.Sprint("h", handles), name: names[rng.IntN(len(names))]}
			handles++
		case k <= 2:
			w = wop{kind: "write", h: pickHandle(), data: strings.Repeat(string(rune('a'+rng.IntN(26))), 1+rng.IntN(6))}
		case k == 3:
			w = wop{kind: "writeat", h: pickHandle(), off: int64(rng.IntN(12)), data: strings.Repeat("Z", 1+rng.IntN(4))}
		case k == 4:
			w = wop{kind: "sync", h: pickHandle()}
		case k == 5:
			w = wop{kind: "truncate", h: pickHandle(), off: int64(rng.IntN(10))}
		case k == 6 && len(existing) > 0:
			w = wop{kind: "rename", name: existing[rng.IntN(len(existing))], to: names[rng.IntN(len(names))]}
		case k == 7 && len(existing) > 0:
			w = wop{kind: "remove", name: existing[rng.IntN(len(existing))]}
		case k >= 8:
			w = wop{kind: "syncdir"}
		default:
			continue
		}
		m.apply(w)
		ops = append(ops, w)
	}
	return ops
}

// crashEveryBoundary cuts the power after each operation of ops in turn and
// checks that the crash leaves exactly the durable state the model predicts
// after that many operations.
func crashEveryBoundary(t *testing.T, ops []wop) {
	t.Helper()
	for cut := 1; cut <= len(ops); cut++ {
		fs := NewMem()
		must(t, fs.MkdirAll("/d", 0o755))
		base := fs.Ops()
		fs.CrashAfter(base + int64(cut))
		handles := map[string]File{}
		for i, w := range ops {
			err := w.run(fs, handles)
			if i < cut && err != nil {
				t.Fatalf("cut %d: op %d (%v) before the cut failed: %v", cut, i+1, w, err)
			}
			if i >= cut && !errors.Is(err, ErrCrashed) {
				t.Fatalf("cut %d: op %d (%v) after the cut: %v, want ErrCrashed", cut, i+1, w, err)
			}
		}
		if !fs.PowerCut() || fs.Ops() != base+int64(cut) {
			t.Fatalf("cut %d: PowerCut %v, %d ops", cut, fs.PowerCut(), fs.Ops()-base)
		}
		fs.Crash()
		m := newModel()
		for _, w := range ops[:cut] {
			m.apply(w)
		}
		if got, want := tree(t, fs, "/d"), m.durable(); !maps.Equal(got, want) {
			t.Fatalf("cut after op %d (%v):\n got  %v\n want %v\nops: %v", cut, ops[cut-1], got, want, ops[:cut])
		}
		checkInvariants(t, fs)
	}
}

func TestMemFSCrashAfterEveryOpScripted(t *testing.T) {
	ops := scriptedWorkload()
	// Without a cut the workload runs to the end, one counted op per step.
	fs := NewMem()
	must(t, fs.MkdirAll("/d", 0o755))
	base := fs.Ops()
	handles := map[string]File{}
	for _, w := range ops {
		must(t, w.run(fs, handles))
	}
	if n := fs.Ops() - base; n != int64(len(ops)) {
		t.Fatalf("workload of %d steps counted %d ops", len(ops), n)
	}
	crashEveryBoundary(t, ops)
}

func TestMemFSCrashAfterEveryOpRandom(t *testing.T) {
	seeds, n := 20, 40
	if longTests {
		seeds, n = 500, 80
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			crashEveryBoundary(t, randomWorkload(uint64(seed), n))
		})
	}
}

// TestMemFSCrashKeepsUnsyncedPrefix checks the torn-write mode: each file
// keeps its synced content plus a prefix of the later appends (possibly cut
// inside one), and the directory keeps a prefix of its unsynced creations.
func TestMemFSCrashKeepsUnsyncedPrefix(t *testing.T) {
	outcomes := map[string]bool{}
	dirOutcomes := map[string]bool{}
	for seed := range uint64(300) {
		fs := NewMem()
		must(t, fs.MkdirAll("/d", 0o755))
		f, err := fs.Create("/d/log")
		must(t, err)
		must(t, fs.SyncDir("/d"))
		_, err = f.Write([]byte("AAAA"))
		must(t, err)
		must(t, f.Sync())
		for _, s := range []string{"BBBB", "CCCC", "DDDD"} {
			_, err = f.Write([]byte(s))
			must(t, err)
		}
		for _, name := range []string{"x", "y", "z"} {
			g, err := fs.Create("/d/" + name)
			must(t, err)
			must(t, g.Close())
		}
		fs.CrashWith(CrashOptions{KeepUnsyncedPrefix: rand.New(rand.NewPCG(seed, 1))})
		got := readFile(t, fs, "/d/log")
		if !strings.HasPrefix(got, "AAAA") || !strings.HasPrefix("AAAABBBBCCCCDDDD", got) {
			t.Fatalf("seed %d: log holds %q, not the synced part plus a prefix of the rest", seed, got)
		}
		outcomes[got] = true
		names, err := fs.List("/d")
		must(t, err)
		list := strings.Join(names, ",")
		if !slices.Contains([]string{"log", "log,x", "log,x,y", "log,x,y,z"}, list) {
			t.Fatalf("seed %d: directory holds %s, not a prefix of the creations", seed, list)
		}
		dirOutcomes[list] = true
		checkInvariants(t, fs)
	}
	// With 300 seeds every kind of outcome shows up: nothing kept, all
	// kept, and a tear inside a write.
	for _, want := range []string{"AAAA", "AAAABBBBCCCCDDDD"} {
		if !outcomes[want] {
			t.Errorf("no seed gave %q; outcomes %v", want, slices.Sorted(maps.Keys(outcomes)))
		}
	}
	torn := false
	for o := range outcomes {
		torn = torn || (len(o)-4)%4 != 0
	}
	if !torn {
		t.Errorf("no seed tore a write; outcomes %v", slices.Sorted(maps.Keys(outcomes)))
	}
	if len(dirOutcomes) != 4 {
		t.Errorf("directory outcomes %v, want all four prefixes", slices.Sorted(maps.Keys(dirOutcomes)))
	}
	// The same seed gives the same crash.
	run := func() string {
		fs := NewMem()
		f, err := fs.Create("/f")
		must(t, err)
		must(t, fs.SyncDir("/"))
		for range 10 {
			_, err = f.Write([]byte("0123456789"))
			must(t, err)
		}
		fs.CrashWith(CrashOptions{KeepUnsyncedPrefix: rand.New(rand.NewPCG(42, 42))})
		return readFile(t, fs, "/f")
	}
	if a, b := run(), run(); a != b {
		t.Errorf("same seed, different crashes: %q and %q", a, b)
	}
}

func TestMemFSNoSpace(t *testing.T) {
	fs := NewMem()
	fs.SetCapacity(10000)
	du, err := fs.DiskUsage("/")
	must(t, err)
	if du.TotalBytes != 10000 || du.FreeBytes != 10000 {
		t.Fatalf("DiskUsage = %+v", du)
	}
	f, err := fs.Create("/f")
	must(t, err)
	_, err = f.Write(make([]byte, 8192))
	must(t, err)
	n, err := f.Write(make([]byte, 4096))
	if n != 10000-8192 || !IsNoSpace(err) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past capacity = %d, %v; want %d and ENOSPC", n, err, 10000-8192)
	}
	du, err = fs.DiskUsage("/")
	must(t, err)
	if du.FreeBytes != 0 {
		t.Fatalf("free %d when full", du.FreeBytes)
	}
	// Overwriting in place needs no space.
	if _, err := f.WriteAt([]byte("overwrite"), 0); err != nil {
		t.Fatalf("overwrite in place when full: %v", err)
	}
	for op, err := range map[string]error{
		"Truncate up": f.Truncate(20000),
		"Preallocate": f.Preallocate(0, 20000),
	} {
		if !IsNoSpace(err) {
			t.Errorf("%s past capacity: %v, want ENOSPC", op, err)
		}
	}
	// An unlinked file holds its space until its last handle closes.
	must(t, fs.Remove("/f"))
	if du, _ := fs.DiskUsage("/"); du.FreeBytes != 0 {
		t.Fatalf("free %d with the removed file still open", du.FreeBytes)
	}
	must(t, f.Close())
	if du, _ := fs.DiskUsage("/"); du.FreeBytes != 10000 {
		t.Fatalf("free %d after closing the removed file", du.FreeBytes)
	}

	// Removing a closed file, or a tree, gives its space back at once.
	writeFile(t, fs, "/h", strings.Repeat("h", 4000))
	must(t, fs.MkdirAll("/tree/sub", 0o755))
	writeFile(t, fs, "/tree/sub/i", strings.Repeat("i", 5000))
	if du, _ := fs.DiskUsage("/"); du.FreeBytes != 1000 {
		t.Fatalf("free %d with 9000 bytes in files", du.FreeBytes)
	}
	must(t, fs.Remove("/h"))
	must(t, fs.RemoveAll("/tree"))
	if du, _ := fs.DiskUsage("/"); du.FreeBytes != 10000 {
		t.Fatalf("free %d after removing every file", du.FreeBytes)
	}

	// A direct write that does not fit writes whole blocks only.
	fs.SetCapacity(3*4096 + 100)
	d, err := fs.OpenFile("/direct", OpenOptions{Write: true, Create: true, Direct: true})
	must(t, err)
	n, err = d.WriteAt(AlignedBuffer(4*4096, 4096), 0)
	if n != 3*4096 || !IsNoSpace(err) {
		t.Fatalf("direct write past capacity = %d, %v; want %d and ENOSPC", n, err, 3*4096)
	}
	// Preallocated space counts as used.
	g, err := fs.Create("/g")
	must(t, err)
	if err := g.Preallocate(0, 200); !IsNoSpace(err) {
		t.Fatalf("Preallocate beyond the 100 free bytes: %v", err)
	}
	must(t, g.Preallocate(0, 100))
	if _, err := g.Write([]byte("x")); err != nil {
		t.Fatalf("write into preallocated space: %v", err)
	}
	if du, _ := fs.DiskUsage("/"); du.FreeBytes != 0 {
		t.Fatalf("free %d after preallocating the rest", du.FreeBytes)
	}
	checkInvariants(t, fs)
}

func TestMemFSDirectSupport(t *testing.T) {
	fs := NewMem()
	fs.SetDirectSupport(false)
	if _, err := fs.OpenFile("/f", OpenOptions{Write: true, Create: true, Direct: true}); !errors.Is(err, ErrDirectUnsupported) {
		t.Fatalf("direct open with direct I/O switched off: %v", err)
	}
	fs.SetDirectSupport(true)
	f, err := fs.OpenFile("/f", OpenOptions{Write: true, Create: true, Direct: true})
	must(t, err)
	must(t, f.Close())
}

// TestMemFSConcurrentCrash runs writers while the power is cut and restored
// under them; every call either works or reports the crash or its effects
// (a file that vanished), and the tree stays consistent.
func TestMemFSConcurrentCrash(t *testing.T) {
	fs := NewMem()
	must(t, fs.MkdirAll("/d", 0o755))
	const writers, rounds = 4, 200
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				name := fmt.Sprintf("/d/w%d-%d", w, i%5)
				f, err := fs.Create(name)
				if err != nil {
					if !errors.Is(err, ErrCrashed) {
						errs <- err
						return
					}
					continue
				}
				for _, err := range []error{
					func() error { _, err := f.Write([]byte("payload")); return err }(),
					f.Sync(),
					fs.SyncDir("/d"),
					fs.Rename(name, name+".done"),
					fs.Remove(name + ".done"),
				} {
					if err != nil && !errors.Is(err, ErrCrashed) && !IsNotExist(err) {
						errs <- err
						return
					}
				}
				f.Close()
			}
		})
	}
	for range 20 {
		fs.CrashAfter(fs.Ops() + 7)
		fs.Crash()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	fs.Crash()
	checkInvariants(t, fs)
}

// TestMemFSInvariantsUnderRandomOps drives random operations (including
// concurrent handles, renames of directories and ENOSPC) and checks after
// each that the logs replay to the current state and the space accounting
// matches the tree.
func TestMemFSInvariantsUnderRandomOps(t *testing.T) {
	seeds, steps := 10, 300
	if longTests {
		seeds, steps = 200, 2000
	}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 7))
		fs := NewMem()
		fs.SetCapacity(64 << 10)
		paths := []string{"/a", "/b", "/x/a", "/x/b", "/x/y/c", "/z"}
		dirs := []string{"/", "/x", "/x/y", "/w"}
		var open []File
		for step := range steps {
			p := paths[rng.IntN(len(paths))]
			switch rng.IntN(12) {
			case 0:
				fs.MkdirAll(dirs[rng.IntN(len(dirs))], 0o755)
			case 1:
				if f, err := fs.Create(p); err == nil {
					open = append(open, f)
				}
			case 2, 3:
				if len(open) > 0 {
					b := make([]byte, rng.IntN(9000))
					open[rng.IntN(len(open))].WriteAt(b, int64(rng.IntN(20000)))
				}
			case 4:
				if len(open) > 0 {
					open[rng.IntN(len(open))].Sync()
				}
			case 5:
				if len(open) > 0 {
					open[rng.IntN(len(open))].Truncate(int64(rng.IntN(30000)))
				}
			case 6:
				fs.Rename(p, paths[rng.IntN(len(paths))])
			case 7:
				fs.Rename(dirs[rng.IntN(len(dirs))], dirs[rng.IntN(len(dirs))])
			case 8:
				fs.Remove(p)
			case 9:
				fs.SyncDir(dirs[rng.IntN(len(dirs))])
			case 10:
				if len(open) > 0 {
					i := rng.IntN(len(open))
					open[i].Close()
					open = slices.Delete(open, i, i+1)
				}
			case 11:
				if len(open) > 0 {
					open[rng.IntN(len(open))].Preallocate(0, int64(rng.IntN(40000)))
				}
			}
			checkAccounting(t, fs, open)
			if step%50 == 49 {
				var opts CrashOptions
				if rng.IntN(2) == 0 {
					opts.KeepUnsyncedPrefix = rng
				}
				fs.CrashWith(opts)
				open = nil
				checkInvariants(t, fs)
			}
		}
	}
}

// checkStructure checks that every file's and directory's change log
// replays from its synced state to its current state.
func checkStructure(t *testing.T, fs *MemFS) {
	t.Helper()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	seen := map[*memNode]bool{}
	var walk func(n *memNode, p string)
	walk = func(n *memNode, p string) {
		if seen[n] {
			return
		}
		seen[n] = true
		if n.dir {
			m := maps.Clone(n.syncedChildren)
			for _, op := range n.dirLog {
				op.apply(m)
			}
			if !maps.Equal(m, n.children) {
				t.Fatalf("%s: directory log does not replay to the current entries", p)
			}
			for name, c := range n.children {
				walk(c, p+"/"+name)
			}
			return
		}
		content := slices.Clone(n.synced)
		for _, op := range n.log {
			content = n.applyTo(content, op)
		}
		if !bytes.Equal(content, n.data) {
			t.Fatalf("%s: file log replays to %d bytes, current is %d", p, len(content), len(n.data))
		}
		if n.charged != max(int64(len(n.data)), n.prealloc) {
			t.Fatalf("%s: charged %d for %d bytes, preallocated %d", p, n.charged, len(n.data), n.prealloc)
		}
	}
	walk(fs.mu.root, "")
}

// checkInvariants checks the structure and, with no handle open (as after a
// crash), that the bytes in use are those of the files in the tree and the
// link counts match the names.
func checkInvariants(t *testing.T, fs *MemFS) {
	t.Helper()
	checkAccounting(t, fs, nil)
}

// checkAccounting checks the structure, that the link counts match the
// names, and that the bytes in use are those of the files in the tree and
// of the files open handles hold.
func checkAccounting(t *testing.T, fs *MemFS, open []File) {
	t.Helper()
	checkStructure(t, fs)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	links := map[*memNode]int{}
	var walk func(n *memNode)
	walk = func(n *memNode) {
		links[n]++
		if links[n] > 1 || !n.dir {
			return
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(fs.mu.root)
	var used int64
	for n, l := range links {
		if n != fs.mu.root && n.links != l {
			t.Fatalf("node with %d names counts %d links", l, n.links)
		}
		used += n.charged
	}
	for _, f := range open {
		if n := f.(*memFile).node; links[n] == 0 {
			links[n] = -1 // count an unlinked open file once
			used += n.charged
		}
	}
	if fs.mu.used != used {
		t.Fatalf("used %d, files in the tree hold %d", fs.mu.used, used)
	}
}

// TestWriteFileAtomicCrash cuts the power after every operation of a
// WriteFileAtomic that replaces a file: after the crash the file holds the
// old bytes or the new ones, whole, and once the call returned, the new.
func TestWriteFileAtomicCrash(t *testing.T) {
	old, next := []byte("old contents"), []byte("the next, longer contents")
	for cut := int64(1); ; cut++ {
		fs := NewMem()
		if err := fs.MkdirAll("/d", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteFileAtomic(fs, "/d/f", old); err != nil {
			t.Fatal(err)
		}
		fs.CrashAfter(fs.Ops() + cut)
		err := WriteFileAtomic(fs, "/d/f", next)
		cutShort := fs.PowerCut()
		fs.Crash()
		got, rerr := readAll(fs, "/d/f")
		if rerr != nil {
			t.Fatalf("cut after op %d: read: %v", cut, rerr)
		}
		if !bytes.Equal(got, old) && !bytes.Equal(got, next) {
			t.Fatalf("cut after op %d: file holds %q", cut, got)
		}
		if err == nil && !bytes.Equal(got, next) {
			t.Fatalf("cut after op %d: WriteFileAtomic returned nil but the file holds %q", cut, got)
		}
		if !cutShort {
			if cut < 4 {
				t.Fatalf("the call ran whole within %d operations: the cuts tested nothing", cut)
			}
			return // the whole call ran before the cut
		}
	}
}

func readAll(fs FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
