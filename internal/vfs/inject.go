package vfs

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Injector wraps an FS and makes chosen operations fail, write short, wait,
// or call back into the test. Rules are added and removed at any time, from
// any goroutine; with no rules installed it only forwards.
//
// Every call is checked against the rules in the order they were added; the
// first rule that fires decides what happens to it, and later rules do not
// see the call. Injected errors satisfy errors.Is(err, ErrInjected) and
// errors.Is(err, e) for the error e the rule gave (syscall.ENOSPC makes
// IsNoSpace true).
type Injector struct {
	fs     FS
	nrules atomic.Int32 // lets calls skip the lock when there are no rules
	mu     struct {
		sync.Mutex
		rules []*RuleHandle
		rng   *rand.Rand
		sleep func(time.Duration)
	}
}

// Rule chooses calls and says what to do with them.
type Rule struct {
	// Ops are the operations the rule applies to; empty means all.
	Ops []Op
	// Path chooses by path (for Rename: either the old or the new name);
	// nil means every path. See PathPrefix, PathSuffix and PathEquals.
	Path func(path string) bool
	// After lets the first After matching calls through untouched.
	After int64
	// Times is how often the rule fires before it goes quiet; 0 means
	// without limit, 1 makes a one-shot rule.
	Times int64
	// Probability, strictly between 0 and 1, makes each matching call past
	// After fire with that probability, drawn from the Injector's seeded
	// source. 0 (and 1) mean every time.
	Probability float64
	// Action is what happens to a call the rule fires on. The zero Action
	// fails the call with ErrInjected.
	Action Action
}

type actionKind uint8

const (
	actFail actionKind = iota
	actShortWrite
	actDelay
	actCall
)

// Action is what a firing rule does. Make one with Fail, ShortWrite, Delay or
// Call.
type Action struct {
	kind actionKind
	err  error
	n    int
	d    time.Duration
	fn   func(op Op, path string) error
}

// Fail makes the call fail with err (ErrInjected when nil) without reaching
// the wrapped FS.
func Fail(err error) Action { return Action{kind: actFail, err: err} }

// ShortWrite makes a Write or WriteAt of more than n bytes write only the
// first n and then fail with err (io.ErrShortWrite when nil; syscall.ENOSPC
// gives a disk that filled up mid-write). It applies to no other operation,
// and to no write of n bytes or fewer. On a direct handle n should be a
// multiple of the alignment, or the wrapped FS refuses the write.
func ShortWrite(n int, err error) Action { return Action{kind: actShortWrite, n: n, err: err} }

// Delay makes the call wait d, then proceed.
func Delay(d time.Duration) Action { return Action{kind: actDelay, d: d} }

// Call runs fn (from the calling goroutine, without the Injector's lock)
// before the call; the call fails with fn's error when it is not nil, and
// proceeds otherwise. A test can block in fn to hold an fsync, or cut a
// MemFS's power at a chosen operation.
func Call(fn func(op Op, path string) error) Action { return Action{kind: actCall, fn: fn} }

// RuleHandle is an installed rule.
type RuleHandle struct {
	in      *Injector
	rule    Rule
	seen    int64 // matching calls; guarded by in.mu
	fired   atomic.Int64
	removed bool // guarded by in.mu
}

// Fired is how many calls the rule has fired on.
func (h *RuleHandle) Fired() int64 { return h.fired.Load() }

// Remove uninstalls the rule; calls already acting on it finish.
func (h *RuleHandle) Remove() {
	in := h.in
	in.mu.Lock()
	defer in.mu.Unlock()
	if h.removed {
		return
	}
	h.removed = true
	in.mu.rules = slices.DeleteFunc(in.mu.rules, func(r *RuleHandle) bool { return r == h })
	in.nrules.Store(int32(len(in.mu.rules)))
}

// PathPrefix chooses paths that start with prefix.
func PathPrefix(prefix string) func(string) bool {
	return func(p string) bool { return len(p) >= len(prefix) && p[:len(prefix)] == prefix }
}

// PathSuffix chooses paths that end with suffix.
func PathSuffix(suffix string) func(string) bool {
	return func(p string) bool { return len(p) >= len(suffix) && p[len(p)-len(suffix):] == suffix }
}

// PathEquals chooses exactly name.
func PathEquals(name string) func(string) bool {
	return func(p string) bool { return p == name }
}

// NewInjector wraps fs. Its random source is seeded with 1; see SetSeed.
func NewInjector(fs FS) *Injector {
	in := &Injector{fs: fs}
	in.mu.rng = rand.New(rand.NewPCG(1, 0))
	in.mu.sleep = time.Sleep
	return in
}

// SetSeed reseeds the source that probabilistic rules draw from.
func (in *Injector) SetSeed(seed uint64) {
	in.mu.Lock()
	in.mu.rng = rand.New(rand.NewPCG(seed, 0))
	in.mu.Unlock()
}

// SetSleep replaces time.Sleep for Delay actions (a test can record the
// delays instead of waiting them out).
func (in *Injector) SetSleep(sleep func(time.Duration)) {
	in.mu.Lock()
	in.mu.sleep = sleep
	in.mu.Unlock()
}

// Add installs r after the rules already installed.
func (in *Injector) Add(r Rule) *RuleHandle {
	r.Ops = slices.Clone(r.Ops)
	h := &RuleHandle{in: in, rule: r}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.mu.rules = append(in.mu.rules, h)
	in.nrules.Store(int32(len(in.mu.rules)))
	return h
}

// Clear uninstalls every rule.
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, h := range in.mu.rules {
		h.removed = true
	}
	in.mu.rules = nil
	in.nrules.Store(0)
}

// FS is the wrapped filesystem.
func (in *Injector) FS() FS { return in.fs }

func (r *Rule) matches(op Op, p1, p2 string, writeLen int) bool {
	if len(r.Ops) > 0 && !slices.Contains(r.Ops, op) {
		return false
	}
	if r.Action.kind == actShortWrite && ((op != OpWrite && op != OpWriteAt) || writeLen <= r.Action.n) {
		return false
	}
	if r.Path != nil && !r.Path(p1) && (p2 == "" || !r.Path(p2)) {
		return false
	}
	return true
}

// pick returns the action of the first rule that fires on the call.
func (in *Injector) pick(op Op, p1, p2 string, writeLen int) (Action, func(time.Duration), bool) {
	if in.nrules.Load() == 0 {
		return Action{}, nil, false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, h := range in.mu.rules {
		r := &h.rule
		if !r.matches(op, p1, p2, writeLen) {
			continue
		}
		h.seen++
		if h.seen <= r.After {
			continue
		}
		if r.Times > 0 && h.fired.Load() >= r.Times {
			continue
		}
		if r.Probability > 0 && r.Probability < 1 && in.mu.rng.Float64() >= r.Probability {
			continue
		}
		h.fired.Add(1)
		return r.Action, in.mu.sleep, true
	}
	return Action{}, nil, false
}

// injectedError is what a firing rule's call fails with.
type injectedError struct {
	op   Op
	path string
	err  error
}

func (e *injectedError) Error() string {
	if e.err == ErrInjected {
		return fmt.Sprintf("%v: %s %s", ErrInjected, e.op, e.path)
	}
	return fmt.Sprintf("%v: %s %s: %v", ErrInjected, e.op, e.path, e.err)
}

func (e *injectedError) Unwrap() []error { return []error{e.err, ErrInjected} }

func injected(op Op, p string, err error, def error) error {
	if err == nil {
		err = def
	}
	return &injectedError{op: op, path: p, err: err}
}

// before runs the action chosen for a call that is not a write; a non-nil
// error is what the call must fail with.
func (in *Injector) before(op Op, p1, p2 string) error {
	a, sleep, ok := in.pick(op, p1, p2, 0)
	if !ok {
		return nil
	}
	return a.run(op, p1, sleep)
}

func (a Action) run(op Op, p string, sleep func(time.Duration)) error {
	switch a.kind {
	case actDelay:
		sleep(a.d)
		return nil
	case actCall:
		if err := a.fn(op, p); err != nil {
			return injected(op, p, err, nil)
		}
		return nil
	default:
		return injected(op, p, a.err, ErrInjected)
	}
}

// write runs the action chosen for a write of b at off (OpWriteAt) or at the
// file offset (OpWrite), then writes what is left of b.
func (f *injFile) write(op Op, b []byte, off int64) (int, error) {
	p := f.f.Name()
	a, sleep, ok := f.in.pick(op, p, "", len(b))
	if ok {
		if a.kind == actShortWrite {
			n, err := f.writeThrough(op, b[:a.n], off)
			if err != nil {
				return n, err
			}
			return n, injected(op, p, a.err, io.ErrShortWrite)
		}
		if err := a.run(op, p, sleep); err != nil {
			return 0, err
		}
	}
	return f.writeThrough(op, b, off)
}

func (f *injFile) writeThrough(op Op, b []byte, off int64) (int, error) {
	if op == OpWrite {
		return f.f.Write(b)
	}
	return f.f.WriteAt(b, off)
}

// OpenFile opens name through the wrapped FS.
func (in *Injector) OpenFile(name string, opts OpenOptions) (File, error) {
	op := OpOpen
	if opts.Create {
		op = OpCreate
	}
	if err := in.before(op, name, ""); err != nil {
		return nil, err
	}
	f, err := in.fs.OpenFile(name, opts)
	if err != nil {
		return nil, err
	}
	return &injFile{in: in, f: f}, nil
}

// Open opens name read-only.
func (in *Injector) Open(name string) (File, error) { return in.OpenFile(name, OpenOptions{}) }

// Create creates or truncates name and opens it for writing.
func (in *Injector) Create(name string) (File, error) {
	return in.OpenFile(name, OpenOptions{Write: true, Create: true, Truncate: true})
}

func (in *Injector) Remove(name string) error {
	if err := in.before(OpRemove, name, ""); err != nil {
		return err
	}
	return in.fs.Remove(name)
}

func (in *Injector) RemoveAll(name string) error {
	if err := in.before(OpRemoveAll, name, ""); err != nil {
		return err
	}
	return in.fs.RemoveAll(name)
}

func (in *Injector) Rename(oldname, newname string) error {
	if err := in.before(OpRename, oldname, newname); err != nil {
		return err
	}
	return in.fs.Rename(oldname, newname)
}

func (in *Injector) MkdirAll(dir string, perm os.FileMode) error {
	if err := in.before(OpMkdirAll, dir, ""); err != nil {
		return err
	}
	return in.fs.MkdirAll(dir, perm)
}

func (in *Injector) List(dir string) ([]string, error) {
	if err := in.before(OpList, dir, ""); err != nil {
		return nil, err
	}
	return in.fs.List(dir)
}

func (in *Injector) Stat(name string) (os.FileInfo, error) {
	if err := in.before(OpStat, name, ""); err != nil {
		return nil, err
	}
	return in.fs.Stat(name)
}

func (in *Injector) SyncDir(dir string) error {
	if err := in.before(OpSyncDir, dir, ""); err != nil {
		return err
	}
	return in.fs.SyncDir(dir)
}

func (in *Injector) DiskUsage(path string) (DiskUsage, error) {
	if err := in.before(OpDiskUsage, path, ""); err != nil {
		return DiskUsage{}, err
	}
	return in.fs.DiskUsage(path)
}

func (in *Injector) Alignment() int { return in.fs.Alignment() }

// injFile is a file opened through an Injector.
type injFile struct {
	in *Injector
	f  File
}

func (f *injFile) Name() string { return f.f.Name() }
func (f *injFile) Direct() bool { return f.f.Direct() }

func (f *injFile) Read(b []byte) (int, error) {
	if err := f.in.before(OpRead, f.f.Name(), ""); err != nil {
		return 0, err
	}
	return f.f.Read(b)
}

func (f *injFile) ReadAt(b []byte, off int64) (int, error) {
	if err := f.in.before(OpReadAt, f.f.Name(), ""); err != nil {
		return 0, err
	}
	return f.f.ReadAt(b, off)
}

func (f *injFile) Write(b []byte) (int, error) { return f.write(OpWrite, b, 0) }

func (f *injFile) WriteAt(b []byte, off int64) (int, error) { return f.write(OpWriteAt, b, off) }

func (f *injFile) Sync() error {
	if err := f.in.before(OpSync, f.f.Name(), ""); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *injFile) Preallocate(off, n int64) error {
	if err := f.in.before(OpPreallocate, f.f.Name(), ""); err != nil {
		return err
	}
	return f.f.Preallocate(off, n)
}

func (f *injFile) Truncate(size int64) error {
	if err := f.in.before(OpTruncate, f.f.Name(), ""); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *injFile) Stat() (os.FileInfo, error) {
	if err := f.in.before(OpStat, f.f.Name(), ""); err != nil {
		return nil, err
	}
	return f.f.Stat()
}

// Close closes the wrapped file even when a rule fails the call, as close(2)
// releases the descriptor whatever it reports.
func (f *injFile) Close() error {
	ierr := f.in.before(OpClose, f.f.Name(), "")
	err := f.f.Close()
	if ierr != nil {
		return ierr
	}
	return err
}
