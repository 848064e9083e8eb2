package managedledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
)

// TestTailingReadsHitTheCache: a cursor that keeps up with the writer
// never reads from the ledger layer, and the cache does not keep what it
// has read.
func TestTailingReadsHitTheCache(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/tail", Config{MaxEntriesPerLedger: 7, MinRolloverTime: -1})
	c := mustCursor(t, ml, "sub", Latest)
	w := newReadWaiter()
	for i := 0; i < 50; i++ {
		c.ReadEntriesOrWait(10, 0, w)
		e.add(ml, fmt.Sprintf("m-%d", i))
		r := w.wait(t)
		if r.err != nil || len(r.payloads) != 1 || r.payloads[0] != fmt.Sprintf("m-%d", i) {
			t.Fatalf("read %d: %+v", i, r)
		}
	}
	if st := e.bk.Stats(); st.Reads != 0 {
		t.Fatalf("%d reads reached BookKeeper", st.Reads)
	}
	if n := ml.cache.entries(); n != 0 {
		t.Fatalf("%d entries cached after the only cursor read them", n)
	}
	if cs := f.CacheStats(); cs.Hits < 50 || cs.Bytes != 0 {
		t.Fatalf("cache stats %+v", cs)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// TestCacheEvictionKeepsUnread: with the cache over budget, entries no
// active cursor still needs go first, then the oldest.
func TestCacheEvictionKeepsUnread(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CacheSizeBytes = 1000 })
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/evict", Config{})
	fast := mustCursor(t, ml, "fast", Latest)
	slow := mustCursor(t, ml, "slow", Latest)
	payload := strings.Repeat("x", 100)
	for i := 0; i < 5; i++ {
		e.add(ml, payload)
	}
	if n := ml.cache.entries(); n != 5 {
		t.Fatalf("%d cached, want 5", n)
	}
	readAll(t, fast)
	if n := ml.cache.entries(); n != 5 {
		t.Fatalf("%d cached after one of two cursors read, want 5", n)
	}
	// The slow cursor becomes inactive (no consumer): nothing it has not
	// read is protected any more, and what the fast one read goes.
	slow.SetActive(false)
	if n := ml.cache.entries(); n != 0 {
		t.Fatalf("%d cached with the only active cursor past them", n)
	}
	slow.SetActive(true)
	// Over budget: the oldest go first, down to 90%.
	ps := e.addN(ml, "y", 11) // 11 x 3 bytes... small; then big ones
	_ = ps
	for i := 0; i < 12; i++ {
		e.add(ml, payload)
	}
	if b := f.CacheStats().Bytes; b > 1000 {
		t.Fatalf("cache holds %d bytes, budget 1000", b)
	}
	// The newest entries are still cached, the oldest are not.
	last := ml.LastConfirmed()
	if b := ml.cache.get(last); b == nil {
		t.Fatal("newest entry evicted")
	} else {
		b.Release()
	}
	if b := ml.cache.get(ps[0]); b != nil {
		b.Release()
		t.Fatal("oldest entry kept over budget")
	}
	// The slow cursor still reads everything, from BookKeeper where
	// evicted.
	reads := e.bk.Stats().Reads
	got, _ := readAll(t, slow)
	if len(got) != 5+11+12 {
		t.Fatalf("slow cursor read %d entries", len(got))
	}
	if e.bk.Stats().Reads == reads {
		t.Fatal("evicted entries did not come from BookKeeper")
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// TestConcurrentMissesCollapse: two cursors missing the cache on the same
// range cause one read of the ledger layer.
func TestConcurrentMissesCollapse(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CacheSizeBytes = -1 })
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/single-flight", Config{})
	a := mustCursor(t, ml, "a", Earliest)
	b := mustCursor(t, ml, "b", Earliest)
	e.addN(ml, "m", 10)
	var calls atomic.Int32
	entered := make(chan struct{}, 4)
	release := make(chan struct{})
	e.bk.SetHooks(MemHooks{BeforeRead: func(ctx context.Context, id base.LedgerID, first, last base.EntryID) error {
		calls.Add(1)
		entered <- struct{}{}
		<-release
		return nil
	}})
	type res struct {
		got []string
	}
	out := make(chan res, 2)
	go func() { g, _ := read(t, a, 10); out <- res{g} }()
	<-entered
	go func() { g, _ := read(t, b, 10); out <- res{g} }()
	eventually(t, "the second read joined the first", func() bool {
		ml.readsMu.Lock()
		defer ml.readsMu.Unlock()
		return len(ml.reads) == 1 && ml.reads[0].refs == 2
	})
	close(release)
	r1, r2 := <-out, <-out
	want := make([]string, 10)
	for i := range want {
		want[i] = fmt.Sprintf("m-%d", i)
	}
	if !slices.Equal(r1.got, want) || !slices.Equal(r2.got, want) {
		t.Fatalf("reads %v and %v", r1.got, r2.got)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d reads reached BookKeeper, want 1", n)
	}
	e.bk.SetHooks(MemHooks{})
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// TestCatchUpReadsInBatches: a cursor far behind reads from the ledger
// layer ReadBatchSize entries at a time, across ledgers, and the read-ahead
// serves the next reads from the cache.
func TestCatchUpReadsInBatches(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ReadBatchSize = 20 })
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/catch-up", Config{MaxEntriesPerLedger: 50, MinRolloverTime: -1})
	c := mustCursor(t, ml, "sub", Earliest)
	c.SetActive(false) // nothing is cached while it has no consumer
	e.addN(ml, "m", 120)
	settle(t, ml)
	c.SetActive(true)
	var got []string
	for {
		s, _ := read(t, c, 5)
		if len(s) == 0 {
			break
		}
		got = append(got, s...)
	}
	if len(got) != 120 || got[119] != "m-119" {
		t.Fatalf("read %d entries", len(got))
	}
	// 120 entries in ledgers of 50: batches of 20 within each ledger
	// (50 = 20+20+10), so 7 reads.
	if st := e.bk.Stats(); st.Reads != 7 || st.EntriesRead != 120 {
		t.Fatalf("BookKeeper reads %+v, want 7 reads of 120 entries", st)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// TestReadRespectsMaxBytes: a read stops before maxBytes (but returns at
// least one entry).
func TestReadRespectsMaxBytes(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/max-bytes", Config{})
	c := mustCursor(t, ml, "sub", Earliest)
	for i := 0; i < 10; i++ {
		e.add(ml, strings.Repeat("z", 100))
	}
	es, err := c.ReadEntries(context.Background(), 100, 350)
	if err != nil {
		t.Fatal(err)
	}
	releaseEntries(es)
	if len(es) != 3 {
		t.Fatalf("read %d entries of 100 bytes with maxBytes 350", len(es))
	}
	es, _ = c.ReadEntries(context.Background(), 100, 10)
	releaseEntries(es)
	if len(es) != 1 {
		t.Fatalf("read %d entries with maxBytes below one entry", len(es))
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

func TestFindNewest(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/find", Config{MaxEntriesPerLedger: 7, MinRolloverTime: -1})
	mustCursor(t, ml, "keep", Earliest)
	ps := e.addN(ml, "m", 40)
	settle(t, ml)
	for _, k := range []int{0, 6, 7, 20, 39} {
		got, err := ml.FindNewest(context.Background(), func(en Entry) bool {
			var i int
			fmt.Sscanf(string(en.Data.Bytes()), "m-%d", &i)
			return i <= k
		})
		if err != nil || got != ps[k] {
			t.Fatalf("FindNewest(<= %d) = %v, %v; want %v", k, got, err, ps[k])
		}
	}
	got, err := ml.FindNewest(context.Background(), func(Entry) bool { return false })
	if err != nil || got != (base.Position{Ledger: ps[0].Ledger, Entry: -1}) {
		t.Fatalf("FindNewest(none) = %v, %v", got, err)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

func TestInternalStatsAndProperties(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	name := "t/ns/persistent/stats"
	ml := open(t, f, name, Config{MaxEntriesPerLedger: 4, MinRolloverTime: -1})
	c := mustCursor(t, ml, "sub", Earliest)
	ps := e.addN(ml, "m", 10)
	settle(t, ml)
	if err := c.Delete(ps[3], ps[5], ps[6]); err != nil {
		t.Fatal(err)
	}
	st := ml.InternalStats()
	if st.EntriesAddedCounter != 10 || st.NumberOfEntries != 10 || st.LastConfirmedEntry != ps[9] || st.State != "LedgerOpened" {
		t.Fatalf("stats %+v", st)
	}
	if len(st.Ledgers) < 3 || st.Ledgers[0].Entries != 4 || st.CurrentLedgerEntries != 2 {
		t.Fatalf("ledgers %+v current %d", st.Ledgers, st.CurrentLedgerEntries)
	}
	cs := st.Cursors["sub"]
	want := fmt.Sprintf("[(%v..%v],(%v..%v]]", ps[2], ps[3], ps[4], ps[6])
	if cs.IndividuallyDeletedMessages != want || cs.MarkDeletePosition.Entry != -1 {
		t.Fatalf("cursor stats %+v, want ranges %s", cs, want)
	}
	if err := ml.SetProperties(context.Background(), map[string]string{"a": "1", "b": "2"}); err != nil {
		t.Fatal(err)
	}
	if err := ml.SetProperties(context.Background(), map[string]string{"a": ""}); err != nil {
		t.Fatal(err)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ml2 := open(t, f, name, Config{})
	if p := ml2.Properties(); len(p) != 1 || p["b"] != "2" {
		t.Fatalf("properties after reopen %v", p)
	}
	if err := ml2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

func TestFactoryDeleteAndExists(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	name := "t/ns/persistent/doomed"
	ml := open(t, f, name, Config{MaxEntriesPerLedger: 3, MinRolloverTime: -1})
	c := mustCursor(t, ml, "sub", Earliest)
	ps := e.addN(ml, "m", 7)
	if err := c.MarkDelete(ps[1]); err != nil {
		t.Fatal(err)
	}
	flush(t, c)
	if ok, err := f.Exists(context.Background(), name); !ok || err != nil {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	if err := f.Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.Exists(context.Background(), name); ok {
		t.Fatal("exists after delete")
	}
	if ids := e.bk.LedgerIDs(); len(ids) != 0 {
		t.Fatalf("ledgers left after delete: %v", ids)
	}
	e.checkLeaks()
}

// orderedReader re-arms its read from the callback (as a dispatcher does)
// and checks that it sees every entry once, in order.
type orderedReader struct {
	t      *testing.T
	c      Cursor
	rng    *rand.Rand
	next   int
	want   int
	last   base.Position
	done   chan struct{}
	errors []error
	ack    bool
}

func (r *orderedReader) ReadComplete(entries []Entry, err error) {
	if err != nil {
		r.errors = append(r.errors, err)
		close(r.done)
		return
	}
	for _, en := range entries {
		if s := string(en.Data.Bytes()); s != fmt.Sprintf("m-%d", r.next) {
			r.errors = append(r.errors, fmt.Errorf("read %q at %v, want m-%d", s, en.Pos, r.next))
		}
		if !r.last.Less(en.Pos) {
			r.errors = append(r.errors, fmt.Errorf("position %v after %v", en.Pos, r.last))
		}
		r.last = en.Pos
		r.next++
		if r.ack {
			if err := r.c.Delete(en.Pos); err != nil {
				r.errors = append(r.errors, err)
			}
		}
		en.Data.Release()
	}
	if r.next >= r.want || len(r.errors) > 0 {
		close(r.done)
		return
	}
	r.c.ReadEntriesOrWait(1+r.rng.IntN(10), int64(r.rng.IntN(64)), r)
}

// TestTailingReadersUnderLoad: readers that re-arm from their callbacks see
// every entry once and in order while writers add concurrently across
// rollovers; one of them lags behind the cache.
func TestTailingReadersUnderLoad(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CacheSizeBytes = 2000 })
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/load", Config{MaxEntriesPerLedger: 50, MinRolloverTime: -1})
	const n = 2000
	var readers []*orderedReader
	for i := range 3 {
		c := mustCursor(t, ml, fmt.Sprintf("sub-%d", i), Earliest)
		r := &orderedReader{t: t, c: c, rng: rand.New(rand.NewPCG(uint64(i), 9)), want: n, done: make(chan struct{}), ack: i != 2}
		readers = append(readers, r)
		if i < 2 {
			c.ReadEntriesOrWait(5, 0, r)
		}
	}
	rec := newAddRecorder()
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		ml.AddEntry(e.buf(fmt.Sprintf("m-%d", i)), semRec{rec, i, sem})
	}
	rec.wait(t, n)
	// The third reader starts late: most of what it reads has left the
	// cache.
	readers[2].c.ReadEntriesOrWait(5, 0, readers[2])
	for i, r := range readers {
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("reader %d stuck at %d", i, r.next)
		}
		if len(r.errors) > 0 {
			t.Fatalf("reader %d: %v", i, r.errors[0])
		}
	}
	for i, r := range readers[:2] {
		if b := r.c.Backlog(); b != 0 {
			t.Fatalf("reader %d backlog %d after acking everything", i, b)
		}
	}
	if e.bk.Stats().Reads == 0 {
		t.Fatal("the late reader never read from BookKeeper")
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

type semRec struct {
	r   *addRecorder
	tag int
	sem chan struct{}
}

func (s semRec) AddEntryComplete(p base.Position, err error) {
	taggedAdd{s.r, s.tag}.AddEntryComplete(p, err)
	<-s.sem
}

// TestCacheAgeEviction: the maintenance pass drops entries older than
// CacheEvictionTimeThreshold, read or not.
func TestCacheAgeEviction(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CacheEvictionTimeThreshold = time.Second })
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/age", Config{})
	c := mustCursor(t, ml, "sub", Earliest)
	e.addN(ml, "old", 5)
	e.clock.Advance(1500 * time.Millisecond)
	e.addN(ml, "new", 3)
	f.RunMaintenance()
	if n := ml.cache.entries(); n != 3 {
		t.Fatalf("%d entries cached after the old ones aged out, want 3", n)
	}
	if got, _ := readAll(t, c); len(got) != 8 {
		t.Fatalf("read %v", got)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}
