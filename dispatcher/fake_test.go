package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
)

// fakeCursor is a scripted managedledger.Cursor over an in-memory log of
// entries (ledger 1, entry ids 0, 1, ...). It holds one reference to each
// entry and hands every reader one more. Callbacks run synchronously on the
// caller's goroutine (inside ReadEntriesOrWait, or inside add when a read
// waits), unless async is set, in which case they run on a new goroutine.
type fakeCursor struct {
	t     testing.TB
	async bool
	// hold queues completions until flush (a read that completes late).
	hold     bool
	heldDone []func()
	// cancelled, when set, receives a value after each CancelPendingRead.
	cancelled chan bool

	mu         sync.Mutex
	log        []*bufs.Buf
	readIdx    int64
	markDelete int64 // entry id; -1 before the first
	acked      map[int64]bool
	batchAcked map[int64]map[int]bool
	waiting    managedledger.ReadCallback
	waitMax    int
	reading    bool // a ReadEntriesOrWait is outstanding (waiting or completing)
	readSizes  []int
	failNext   int // fail this many reads with errFakeRead
	failReplay int
	seeks      []base.Position
	rewinds    int
	deletes    int
	closed     bool
	asyncWG    sync.WaitGroup
}

var errFakeRead = errors.New("fake: read failed")

const fakeLedger = 1

func newFakeCursor(t testing.TB) *fakeCursor {
	return &fakeCursor{t: t, markDelete: -1, acked: map[int64]bool{}, batchAcked: map[int64]map[int]bool{}}
}

func pos(e int64) base.Position { return base.Position{Ledger: fakeLedger, Entry: base.EntryID(e)} }

// add appends entries (taking over the references) and completes a waiting
// read.
func (f *fakeCursor) add(bs ...*bufs.Buf) {
	f.mu.Lock()
	f.log = append(f.log, bs...)
	cb, n := f.waiting, f.waitMax
	var entries []managedledger.Entry
	if cb != nil {
		entries = f.takeLocked(n)
		if len(entries) == 0 {
			cb = nil
		} else {
			f.waiting = nil
		}
	}
	f.mu.Unlock()
	if cb != nil {
		f.complete(cb, entries, nil)
	}
}

func (f *fakeCursor) complete(cb managedledger.ReadCallback, entries []managedledger.Entry, err error) {
	finish := func() {
		f.mu.Lock()
		f.reading = false
		f.mu.Unlock()
		cb.ReadComplete(entries, err)
	}
	if f.hold {
		f.mu.Lock()
		f.heldDone = append(f.heldDone, finish)
		f.mu.Unlock()
		return
	}
	if f.async {
		f.asyncWG.Add(1)
		go func() {
			defer f.asyncWG.Done()
			finish()
		}()
		return
	}
	finish()
}

// takeLocked returns up to n unacked entries from the read position and
// moves it past them.
func (f *fakeCursor) takeLocked(n int) []managedledger.Entry {
	var out []managedledger.Entry
	for f.readIdx < int64(len(f.log)) && len(out) < n {
		i := f.readIdx
		f.readIdx++
		if f.acked[i] || i <= f.markDelete {
			continue
		}
		out = append(out, managedledger.Entry{Pos: pos(i), Data: f.log[i].Retain()})
	}
	return out
}

func (f *fakeCursor) Name() string  { return "fake" }
func (f *fakeCursor) Durable() bool { return true }

func (f *fakeCursor) ReadEntriesOrWait(max int, maxBytes int64, cb managedledger.ReadCallback) {
	f.mu.Lock()
	if f.reading {
		f.mu.Unlock()
		f.t.Errorf("fake: ReadEntriesOrWait while a read is outstanding")
		cb.ReadComplete(nil, errors.New("fake: concurrent read"))
		return
	}
	if f.closed {
		f.mu.Unlock()
		cb.ReadComplete(nil, base.ErrClosed)
		return
	}
	f.readSizes = append(f.readSizes, max)
	f.reading = true
	if f.failNext > 0 {
		f.failNext--
		f.mu.Unlock()
		f.complete(cb, nil, errFakeRead)
		return
	}
	entries := f.takeLocked(max)
	if len(entries) == 0 {
		f.waiting, f.waitMax = cb, max
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.complete(cb, entries, nil)
}

func (f *fakeCursor) CancelPendingRead() bool {
	ok := f.cancelPendingRead()
	if f.cancelled != nil {
		f.cancelled <- ok
	}
	return ok
}

func (f *fakeCursor) cancelPendingRead() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.waiting == nil {
		return false
	}
	f.waiting = nil
	f.reading = false
	return true
}

func (f *fakeCursor) ReadEntries(ctx context.Context, max int, maxBytes int64) ([]managedledger.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.takeLocked(max), nil
}

func (f *fakeCursor) ReplayEntries(ctx context.Context, positions []base.Position) ([]managedledger.Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failReplay > 0 {
		f.failReplay--
		return nil, errFakeRead
	}
	var out []managedledger.Entry
	for _, p := range positions {
		i := int64(p.Entry)
		if i < 0 || i >= int64(len(f.log)) || f.acked[i] || i <= f.markDelete {
			continue
		}
		out = append(out, managedledger.Entry{Pos: p, Data: f.log[i].Retain()})
	}
	return out, nil
}

func (f *fakeCursor) ReadPosition() base.Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	return pos(f.readIdx)
}

func (f *fakeCursor) MarkDeletePosition() base.Position {
	f.mu.Lock()
	defer f.mu.Unlock()
	return pos(f.markDelete)
}

func (f *fakeCursor) MarkDelete(p base.Position) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := f.markDelete + 1; i <= int64(p.Entry); i++ {
		f.acked[i] = true
	}
	f.advanceLocked()
	return nil
}

func (f *fakeCursor) advanceLocked() {
	for f.acked[f.markDelete+1] {
		delete(f.acked, f.markDelete+1)
		f.markDelete++
	}
}

func (f *fakeCursor) Delete(positions ...base.Position) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes++
	for _, p := range positions {
		if i := int64(p.Entry); i > f.markDelete {
			f.acked[i] = true
		}
	}
	f.advanceLocked()
	return nil
}

func (f *fakeCursor) DeleteBatchIndexes(p base.Position, batchSize int, indexes []int) error {
	f.mu.Lock()
	i := int64(p.Entry)
	m := f.batchAcked[i]
	if m == nil {
		m = map[int]bool{}
		f.batchAcked[i] = m
	}
	for _, x := range indexes {
		m[x] = true
	}
	full := len(m) >= batchSize
	f.mu.Unlock()
	if full {
		return f.Delete(p)
	}
	return nil
}

func (f *fakeCursor) AckedBatchIndexes(p base.Position) []int { return nil }

func (f *fakeCursor) IsAcknowledged(p base.Position) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := int64(p.Entry)
	return i <= f.markDelete || f.acked[i]
}

func (f *fakeCursor) Seek(p base.Position) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reading {
		f.t.Errorf("fake: Seek while a read is outstanding")
	}
	f.seeks = append(f.seeks, p)
	f.readIdx = int64(p.Entry)
}

func (f *fakeCursor) Rewind() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reading {
		f.t.Errorf("fake: Rewind while a read is outstanding")
	}
	f.rewinds++
	f.readIdx = f.markDelete + 1
}

func (f *fakeCursor) ResetCursor(ctx context.Context, p base.Position) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reading {
		f.t.Errorf("fake: ResetCursor while a read is outstanding")
	}
	f.markDelete = int64(p.Entry) - 1
	clear(f.acked)
	f.readIdx = int64(p.Entry)
	return nil
}

func (f *fakeCursor) SkipEntries(ctx context.Context, n int64) error { return base.ErrNotImplemented }

func (f *fakeCursor) Backlog() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.log)) - f.markDelete - 1 - int64(len(f.acked))
}

func (f *fakeCursor) Close(ctx context.Context) error { return nil }

// flush runs the held completions.
func (f *fakeCursor) flush() {
	f.mu.Lock()
	fs := f.heldDone
	f.heldDone = nil
	f.hold = false
	f.mu.Unlock()
	for _, fn := range fs {
		fn()
	}
}

// release drops the log's references (end of test).
func (f *fakeCursor) release() {
	f.flush()
	f.asyncWG.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, b := range f.log {
		b.Release()
	}
	f.log = nil
}

// allAcked reports whether every entry of the log is acknowledged.
func (f *fakeCursor) allAcked() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.markDelete == int64(len(f.log))-1
}

func (f *fakeCursor) setFailNext(n int) {
	f.mu.Lock()
	f.failNext = n
	f.mu.Unlock()
}

// ---- entries ----

// entrySpec describes a test entry.
type entrySpec struct {
	msgs   int32  // 0: not a batch
	key    string // ordering key ("" none)
	pkey   string // partition key
	b64    bool
	marker bool
}

// makeEntry builds a Pulsar entry in a buffer from pool.
func makeEntry(pool *bufs.Pool, s entrySpec, payload string) *bufs.Buf {
	md := pulsar.MessageMetadata{ProducerName: []byte("p"), SequenceID: 1, PublishTime: 1}
	if s.msgs > 0 {
		md.NumMessagesInBatch, md.HasNumMessagesInBatch = s.msgs, true
	}
	if s.key != "" {
		md.OrderingKey = []byte(s.key)
	}
	if s.pkey != "" {
		md.PartitionKey = []byte(s.pkey)
		md.PartitionKeyB64Encoded = s.b64
	}
	if s.marker {
		md.MarkerType, md.HasMarkerType = 1, true
	}
	raw := pulsar.AppendEntry(nil, &md, []byte(payload))
	b := pool.Get(len(raw))
	copy(b.Bytes(), raw)
	return b
}

// ---- sinks ----

type got struct {
	pos          base.Position
	msgs         int32
	redeliveries uint32
	data         []byte // the entry's bytes as delivered (aliases the buffer until released)
}

// recSink records what a consumer receives and releases the buffers (or
// keeps them when hold is set). onDeliver, if set, runs after recording,
// without the sink's lock (it may call the dispatcher).
type recSink struct {
	t    testing.TB
	name string

	mu        sync.Mutex
	got       []got
	active    []bool
	held      []*bufs.Buf
	hold      bool
	closed    bool // the test closed the consumer: nothing may arrive
	onDeliver func(batch []Delivery)
}

func newRecSink(t testing.TB, name string) *recSink { return &recSink{t: t, name: name} }

func (s *recSink) Deliver(batch []Delivery) {
	s.mu.Lock()
	if s.closed {
		s.t.Errorf("%s: delivery after close: %v", s.name, batch[0].Pos)
	}
	for _, d := range batch {
		if d.Data == nil || d.Data.Refs() < 1 {
			s.t.Errorf("%s: delivery %v without a live buffer", s.name, d.Pos)
			continue
		}
		s.got = append(s.got, got{pos: d.Pos, msgs: d.NumMessages, redeliveries: d.RedeliveryCount})
		if s.hold {
			s.held = append(s.held, d.Data)
		} else {
			d.Data.Release()
		}
	}
	hook := s.onDeliver
	s.mu.Unlock()
	if hook != nil {
		hook(batch)
	}
}

func (s *recSink) ActiveConsumerChanged(active bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active = append(s.active, active)
}

func (s *recSink) deliveries() []got {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

func (s *recSink) positions() []int64 {
	var out []int64
	for _, g := range s.deliveries() {
		out = append(out, int64(g.pos.Entry))
	}
	return out
}

func (s *recSink) messages() int64 {
	var n int64
	for _, g := range s.deliveries() {
		n += int64(g.msgs)
	}
	return n
}

func (s *recSink) notifications() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.active)
}

func (s *recSink) releaseHeld() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.held {
		b.Release()
	}
	s.held = nil
}

func (s *recSink) markClosed() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// ---- fixture ----

// fixture is a dispatcher over a fake cursor with entries from a private
// pool, checked for leaks at the end.
type fixture struct {
	t      testing.TB
	pool   *bufs.Pool
	cursor *fakeCursor
	d      *Dispatcher
	clock  *fakeClock
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	f := &fixture{t: t, pool: bufs.NewPool(), cursor: newFakeCursor(t), clock: &fakeClock{}}
	opts.afterFunc = f.clock.afterFunc
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.goAsync == nil {
		opts.goAsync = func(fn func()) { fn() }
	}
	d, err := New(f.cursor, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	t.Cleanup(f.finish)
	return f
}

// finish closes everything and checks that every buffer went back.
func (f *fixture) finish() {
	f.d.Close()
	f.cursor.release()
	if n := f.pool.LiveBuffers(); n != 0 {
		f.t.Errorf("leak: %d buffers still live after the test", n)
	}
}

// addEntries appends n entries made by spec(i) (i counts from the current
// log length).
func (f *fixture) addEntries(n int, spec func(i int) entrySpec) {
	f.cursor.mu.Lock()
	base := len(f.cursor.log)
	f.cursor.mu.Unlock()
	bs := make([]*bufs.Buf, n)
	for i := range bs {
		s := entrySpec{}
		if spec != nil {
			s = spec(base + i)
		}
		bs[i] = makeEntry(f.pool, s, fmt.Sprintf("m%d", base+i))
	}
	f.cursor.add(bs...)
}

func (f *fixture) consumer(name string, cfg ConsumerConfig) (*Consumer, *recSink) {
	f.t.Helper()
	s := newRecSink(f.t, name)
	cfg.Name = name
	c, err := f.d.AddConsumer(s, cfg)
	if err != nil {
		f.t.Fatalf("AddConsumer(%s): %v", name, err)
	}
	return c, s
}

// fakeClock runs timers when the test says so.
type fakeClock struct {
	mu     sync.Mutex
	timers []*fakeTimer
}

type fakeTimer struct {
	d       time.Duration
	f       func()
	stopped bool
}

func (c *fakeClock) afterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{d: d, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// fire runs every pending timer and reports how many ran.
func (c *fakeClock) fire() int {
	c.mu.Lock()
	ts := c.timers
	c.timers = nil
	c.mu.Unlock()
	n := 0
	for _, t := range ts {
		if !t.stopped {
			t.stopped = true
			t.f()
			n++
		}
	}
	return n
}

func (c *fakeClock) pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, t := range c.timers {
		if !t.stopped {
			out = append(out, t.d)
		}
	}
	return out
}

func entries(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func poss(ids ...int64) []base.Position {
	out := make([]base.Position, len(ids))
	for i, id := range ids {
		out[i] = pos(id)
	}
	return out
}
