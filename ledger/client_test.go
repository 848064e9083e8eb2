package ledger_test

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/bk"
	"github.com/magnetar/magnetar/ledger"
	"github.com/magnetar/magnetar/ledger/ledgertest"
	"github.com/magnetar/magnetar/metastore"
)

func TestCreateAppendReadClose(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client()
	custom := map[string][]byte{"component": []byte("test")}
	h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2,
		Password: []byte("pw"), Custom: custom})
	if err != nil {
		t.Fatal(err)
	}
	id := h.ID()
	if h.LastAddConfirmed() != base.InvalidEntry || h.Length() != 0 {
		t.Fatalf("new ledger: LAC %d length %d", h.LastAddConfirmed(), h.Length())
	}
	// The metadata is at BookKeeper's path, OPEN, in format 3.
	data, _, err := c.reg.Get(ctx(t), metastore.LedgerPath(metastore.LedgersRoot, int64(id)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("BookieMetadataFormatVersion\t3\n")) {
		t.Fatalf("metadata %q", data)
	}
	md, err := ledger.UnmarshalMetadata(data)
	if err != nil || md.State != ledger.StateOpen || !bytes.Equal(md.Custom["component"], []byte("test")) ||
		md.DigestType != bk.DigestCRC32C || len(md.Segments) != 1 {
		t.Fatalf("metadata %+v, %v", md, err)
	}
	var length int64
	for i := 0; i < 50; i++ {
		e, err := h.Append(ctx(t), payload(id, i))
		if err != nil || e != base.EntryID(i) {
			t.Fatalf("append %d: entry %d, %v", i, e, err)
		}
		length += int64(len(payload(id, i)))
	}
	if h.LastAddConfirmed() != 49 || h.Length() != length {
		t.Fatalf("LAC %d length %d, want 49 %d", h.LastAddConfirmed(), h.Length(), length)
	}
	readAll(t, h.Read, 49, func(e int) []byte { return payload(id, e) })
	// Striping: E3 W2 puts entry e on ensemble members e%3 and (e+1)%3 only.
	for i, b := range md.Segments[0].Bookies {
		for _, e := range c.bookie(b).Entries(id) {
			if int(e)%3 != i && (int(e)+1)%3 != i {
				t.Fatalf("entry %d stored on ensemble member %d", e, i)
			}
		}
	}
	if err := h.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Append(ctx(t), []byte("late")); !errors.Is(err, ledger.ErrHandleClosed) {
		t.Fatalf("append after close: %v", err)
	}
	r, err := c.client().OpenLedger(ctx(t), id, []byte("pw"), ledger.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.IsClosed() || r.LastAddConfirmed() != 49 || r.Metadata().Length != length {
		t.Fatalf("reopened: closed %v LAC %d length %d", r.IsClosed(), r.LastAddConfirmed(), r.Metadata().Length)
	}
	readAll(t, r.Read, 49, func(e int) []byte { return payload(id, e) })
	if _, err := r.Read(ctx(t), 49, 50); !errors.Is(err, ledger.ErrBeyondLAC) {
		t.Fatalf("read past the end: %v", err)
	}
}

func TestAddCallbacksInOrder(t *testing.T) {
	for _, q := range []struct{ e, w, a int }{{1, 1, 1}, {3, 3, 2}, {3, 2, 2}, {5, 3, 2}} {
		c := newCluster(t, q.e)
		h, err := c.client().CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: q.e, WriteQuorum: q.w, AckQuorum: q.a})
		if err != nil {
			t.Fatal(err)
		}
		const n = 500
		a := newAdder(t, h, n)
		for i := 0; i < n; i++ {
			a.add(payload(h.ID(), i))
		}
		for i, r := range a.wait() {
			if r.err != nil || r.entry != base.EntryID(i) {
				t.Fatalf("E%d W%d A%d: completion %d: entry %d, %v", q.e, q.w, q.a, i, r.entry, r.err)
			}
		}
		if h.LastAddConfirmed() != n-1 {
			t.Fatalf("LAC %d", h.LastAddConfirmed())
		}
		if err := h.Close(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPasswordAndDeletion(t *testing.T) {
	c := newCluster(t, 1)
	cl := c.client()
	h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 1, WriteQuorum: 1, AckQuorum: 1, Password: []byte("a")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.OpenLedger(ctx(t), h.ID(), []byte("b"), ledger.OpenOptions{}); !errors.Is(err, base.ErrUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := cl.DeleteLedger(ctx(t), h.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.OpenLedger(ctx(t), h.ID(), []byte("a"), ledger.OpenOptions{}); !errors.Is(err, base.ErrNoLedger) {
		t.Fatalf("open deleted: %v", err)
	}
	if err := cl.DeleteLedger(ctx(t), h.ID()); !errors.Is(err, ledger.ErrNoLedger) {
		t.Fatalf("delete twice: %v", err)
	}
	// Ids come from the sequential generator and increase.
	h2, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 1, WriteQuorum: 1, AckQuorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	if h2.ID() <= h.ID() {
		t.Fatalf("ids %d then %d", h.ID(), h2.ID())
	}
}

func TestNotEnoughBookies(t *testing.T) {
	c := newCluster(t, 2)
	cl := c.client()
	// A read-only bookie does not count.
	if _, err := c.reg.Create(ctx(t), metastore.ReadOnlyBookiePath("127.0.0.1:1"), nil,
		metastore.Ephemeral|metastore.CreateParents); err != nil {
		t.Fatal(err)
	}
	_, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
	if !errors.Is(err, ledger.ErrNotEnoughBookies) {
		t.Fatalf("got %v", err)
	}
	// The client watches the registrations: a new bookie shows up.
	b := c.addBookie()
	waitFor(t, "the new bookie", func() bool { return slices.Contains(cl.Bookies(), b.ID()) })
	if n := len(cl.Bookies()); n != 3 {
		t.Fatalf("%d bookies: %v", n, cl.Bookies())
	}
	h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	// A bookie that goes away (its session ends) disappears too.
	if err := b.Unregister(ctx(t), c.reg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the bookie to go", func() bool { return !slices.Contains(cl.Bookies(), b.ID()) })
	if !slices.Contains(h.Metadata().Segments[0].Bookies, b.ID()) {
		t.Fatalf("ensemble %v lacks %s", h.Metadata().Segments[0].Bookies, b.ID())
	}
	_, err = c.client().CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 2, WriteQuorum: 3, AckQuorum: 2})
	if !errors.Is(err, ledger.ErrBadOptions) {
		t.Fatalf("W > E: %v", err)
	}
}

// TestEnsembleChange kills a bookie of the ensemble in the middle of a
// stream of adds: the writer replaces it, no add fails, and a reader reads
// every confirmed entry.
func TestEnsembleChange(t *testing.T) {
	for _, q := range []struct{ e, w, a int }{{3, 3, 2}, {3, 2, 2}} {
		c := newCluster(t, 5)
		cl := c.client(func(o *ledger.Options) { o.AddEntryTimeout = 2 * time.Second })
		h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: q.e, WriteQuorum: q.w, AckQuorum: q.a})
		if err != nil {
			t.Fatal(err)
		}
		id := h.ID()
		const n = 600
		a := newAdder(t, h, n)
		victim := c.bookie(h.Metadata().Segments[0].Bookies[1])
		for i := 0; i < n; i++ {
			if i == 200 {
				waitFor(t, "150 confirmations", func() bool { return a.count() >= 150 })
				victim.Kill()
			}
			a.add(payload(id, i))
		}
		for i, r := range a.wait() {
			if r.err != nil || r.entry != base.EntryID(i) {
				t.Fatalf("E%dW%dA%d: completion %d: entry %d, %v", q.e, q.w, q.a, i, r.entry, r.err)
			}
		}
		md := h.Metadata()
		if len(md.Segments) < 2 || slices.Contains(md.LastSegment().Bookies, victim.ID()) {
			t.Fatalf("E%dW%dA%d: no ensemble change: %+v", q.e, q.w, q.a, md.Segments)
		}
		stored, err := cl.LedgerMetadata(ctx(t), id)
		if err != nil || len(stored.Segments) != len(md.Segments) {
			t.Fatalf("stored metadata %+v, %v", stored, err)
		}
		// A reader of the open ledger reads up to the LAC it learns. The
		// LAC travels in later entries: one more add carries LAC n-1.
		if _, err := h.Append(ctx(t), payload(id, n)); err != nil {
			t.Fatal(err)
		}
		r, err := c.client().OpenLedger(ctx(t), id, nil, ledger.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		lac, err := r.ReadLastAddConfirmed(ctx(t))
		if err != nil || lac != n-1 {
			t.Fatalf("reader LAC %d, %v", lac, err)
		}
		readAll(t, r.Read, lac, func(e int) []byte { return payload(id, e) })
		if err := h.Close(ctx(t)); err != nil {
			t.Fatal(err)
		}
		r2, err := c.client().OpenLedger(ctx(t), id, nil, ledger.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r2.LastAddConfirmed() != n {
			t.Fatalf("closed at %d", r2.LastAddConfirmed())
		}
		readAll(t, r2.Read, n, func(e int) []byte { return payload(id, e) })
	}
}

// TestSlowBookieReplaced: a bookie that stops answering adds is replaced
// after AddEntryTimeout.
func TestSlowBookieReplaced(t *testing.T) {
	c := newCluster(t, 4)
	var changes sync.Map
	cl := c.client(func(o *ledger.Options) {
		o.AddEntryTimeout = 300 * time.Millisecond
		o.Hooks.EnsembleChanged = func(_ base.LedgerID, first base.EntryID, _ int, replaced, _ string) {
			changes.Store(replaced, first)
		}
	})
	h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 3, AckQuorum: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := h.Append(ctx(t), payload(h.ID(), i)); err != nil {
			t.Fatal(err)
		}
	}
	slow := c.bookie(h.Metadata().Segments[0].Bookies[2])
	slow.SetFault(func(r ledgertest.Request) ledgertest.Fault { return ledgertest.Fault{Drop: r.Op == "ADD"} })
	for i := 10; i < 20; i++ {
		if _, err := h.Append(ctx(t), payload(h.ID(), i)); err != nil {
			t.Fatal(err)
		}
	}
	if first, ok := changes.Load(slow.ID()); !ok || first.(base.EntryID) != 10 {
		t.Fatalf("slow bookie replaced from %v (%v)", first, ok)
	}
	if err := h.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	r, err := c.client().OpenLedger(ctx(t), h.ID(), nil, ledger.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, r.Read, 19, func(e int) []byte { return payload(h.ID(), e) })
}

// TestEnsembleChangeWithoutReplacement: with no spare bookie the handle
// fails its adds, and Close records the confirmed entries.
func TestEnsembleChangeWithoutReplacement(t *testing.T) {
	c := newCluster(t, 3)
	h, err := c.client().CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 3, AckQuorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := h.Append(ctx(t), payload(h.ID(), i)); err != nil {
			t.Fatal(err)
		}
	}
	c.bookie(h.Metadata().Segments[0].Bookies[0]).Kill()
	// The two live bookies may still confirm an add or two (A=2) before
	// the failure of the third is handled; then every add fails.
	last := base.EntryID(4)
	for i := 5; ; i++ {
		e, err := h.Append(ctx(t), payload(h.ID(), i))
		if err == nil {
			if e != last+1 || i > 100 {
				t.Fatalf("append %d: entry %d", i, e)
			}
			last = e
			continue
		}
		if !errors.Is(err, ledger.ErrNotEnoughBookies) {
			t.Fatalf("append without a spare bookie: %v", err)
		}
		break
	}
	if _, err := h.Append(ctx(t), []byte("later")); !errors.Is(err, ledger.ErrNotEnoughBookies) {
		t.Fatalf("later append: %v", err)
	}
	if err := h.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	md, err := c.client().LedgerMetadata(ctx(t), h.ID())
	if err != nil || md.State != ledger.StateClosed || md.LastEntry != last {
		t.Fatalf("closed metadata %+v, %v; last confirmed %d", md, err, last)
	}
}

func TestReadFailoverAndDigest(t *testing.T) {
	c := newCluster(t, 3)
	cl := c.client(func(o *ledger.Options) { o.BatchReadMaxCount = -1 })
	h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	id := h.ID()
	for i := 0; i < 30; i++ {
		if _, err := h.Append(ctx(t), payload(id, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	ens := h.Metadata().Segments[0].Bookies
	// Every read of bookie 0 fails; entry 4's first replica (ensemble
	// member 1) is corrupt. Reads fail over to the other replica.
	c.bookie(ens[0]).SetFault(func(r ledgertest.Request) ledgertest.Fault {
		if r.Op == "READ" {
			return ledgertest.Fault{RC: bk.RCIO}
		}
		return ledgertest.Fault{}
	})
	if !c.bookie(ens[1]).CorruptEntry(id, 4) {
		t.Fatal("entry 4 not on ensemble member 1")
	}
	r, err := c.client(func(o *ledger.Options) { o.BatchReadMaxCount = -1 }).OpenLedger(ctx(t), id, nil, ledger.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, r.Read, 29, func(e int) []byte { return payload(id, e) })
	// Entry 3's replicas are members 0 (failing) and 1: corrupt that too.
	c.bookie(ens[1]).CorruptEntry(id, 3)
	_, err = r.Read(ctx(t), 3, 3)
	if !errors.Is(err, base.ErrCorruption) && !errors.Is(err, bk.ErrIO) {
		t.Fatalf("read with no good replica: %v", err)
	}
}

// TestBatchReads: with E == W reads use BATCH_READ_ENTRY, in several rounds
// when a response is limited by size.
func TestBatchReads(t *testing.T) {
	c := newCluster(t, 2)
	cl := c.client(func(o *ledger.Options) { o.BatchReadMaxCount = 16; o.BatchReadMaxSize = 300 })
	h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 2, WriteQuorum: 2, AckQuorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if _, err := h.Append(ctx(t), payload(h.ID(), i)); err != nil {
			t.Fatal(err)
		}
	}
	readAll(t, h.Read, 99, func(e int) []byte { return payload(h.ID(), e) })
	var batches, reads int64
	for _, b := range c.bookies {
		batches += b.Stats().BatchReads
		reads += b.Stats().Reads
	}
	if batches < 7 || reads > batches {
		t.Fatalf("%d batch reads, %d single reads", batches, reads)
	}
	// A failing bookie: batches fail over too.
	c.bookie(h.Metadata().Segments[0].Bookies[0]).SetFault(func(r ledgertest.Request) ledgertest.Fault {
		return ledgertest.Fault{Close: r.Op == "BATCH_READ"}
	})
	readAll(t, h.Read, 99, func(e int) []byte { return payload(h.ID(), e) })
}

func TestBookieRestartReconnects(t *testing.T) {
	c := newCluster(t, 1)
	cl := c.client(func(o *ledger.Options) { o.ReconnectBackoff = -1 })
	h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 1, WriteQuorum: 1, AckQuorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Append(ctx(t), []byte("a")); err != nil {
		t.Fatal(err)
	}
	b := c.bookies[0]
	b.Kill()
	if _, err := h.Read(ctx(t), 0, 0); !errors.Is(err, ledger.ErrConnection) {
		t.Fatalf("read from a dead bookie: %v", err)
	}
	if err := b.Restart(); err != nil {
		t.Skipf("cannot listen again on the port: %v", err)
	}
	readAll(t, h.Read, 0, func(int) []byte { return []byte("a") })
}

// TestBackPressure: one request in flight per connection, a slow bookie:
// adds wait for room and still complete in order.
func TestBackPressure(t *testing.T) {
	c := newCluster(t, 1)
	c.bookies[0].SetFault(func(r ledgertest.Request) ledgertest.Fault { return ledgertest.Fault{Delay: time.Millisecond} })
	cl := c.client(func(o *ledger.Options) { o.MaxInflight = 2 })
	h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 1, WriteQuorum: 1, AckQuorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	a := newAdder(t, h, n)
	for i := 0; i < n; i++ {
		a.add(payload(h.ID(), i))
	}
	for i, r := range a.wait() {
		if r.err != nil || r.entry != base.EntryID(i) {
			t.Fatalf("completion %d: %d, %v", i, r.entry, r.err)
		}
	}
}

func TestNoBufferLeaks(t *testing.T) {
	before := bufs.Default.LiveBuffers()
	func() {
		c := newCluster(t, 3)
		cl := c.client()
		h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
		if err != nil {
			t.Fatal(err)
		}
		a := newAdder(t, h, 200)
		for i := 0; i < 200; i++ {
			a.add(payload(h.ID(), i))
		}
		a.wait()
		es, err := h.Read(ctx(t), 0, 199)
		if err != nil {
			t.Fatal(err)
		}
		ledger.ReleaseEntries(es)
		if err := h.Close(ctx(t)); err != nil {
			t.Fatal(err)
		}
		cl.Close()
	}()
	// The connections' write loops release payloads asynchronously after
	// the write; wait for the count to settle.
	waitFor(t, "buffers released", func() bool { return bufs.Default.LiveBuffers() == before })
}

// TestReadTimeoutAndSpeculation: a bookie that never answers reads is
// passed over after ReadTimeout, or at once by a speculative read.
func TestReadTimeoutAndSpeculation(t *testing.T) {
	c := newCluster(t, 3)
	h, err := c.client().CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	id := h.ID()
	for i := 0; i < 12; i++ {
		if _, err := h.Append(ctx(t), payload(id, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c.bookie(h.Metadata().Segments[0].Bookies[0]).SetFault(func(r ledgertest.Request) ledgertest.Fault {
		return ledgertest.Fault{Drop: r.Op == "READ"}
	})
	tunes := map[string]func(*ledger.Options){
		"timeout": func(o *ledger.Options) { o.ReadTimeout = 100 * time.Millisecond },
		// Without speculation this read would wait a minute.
		"speculative": func(o *ledger.Options) { o.ReadTimeout = time.Minute; o.SpeculativeReadTimeout = 10 * time.Millisecond },
	}
	for name, tune := range tunes {
		r, err := c.client(tune).OpenLedger(ctx(t), id, nil, ledger.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			readAll(t, r.Read, 11, func(e int) []byte { return payload(id, e) })
		})
	}
}

// TestClientCloseFailsPendingAdds: adds a bookie never answers fail with
// ErrClientClosed when the client closes; the ledger stays OPEN.
func TestClientCloseFailsPendingAdds(t *testing.T) {
	c := newCluster(t, 1)
	c.bookies[0].SetFault(func(r ledgertest.Request) ledgertest.Fault { return ledgertest.Fault{Drop: r.Op == "ADD"} })
	cl := c.client(func(o *ledger.Options) { o.AddEntryTimeout = time.Minute })
	h, err := cl.CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 1, WriteQuorum: 1, AckQuorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	a := newAdder(t, h, 3)
	for i := 0; i < 3; i++ {
		a.add([]byte("x"))
	}
	cl.Close()
	for i, r := range a.wait() {
		if !errors.Is(r.err, ledger.ErrClientClosed) || r.entry != base.InvalidEntry {
			t.Fatalf("add %d: %d, %v", i, r.entry, r.err)
		}
	}
	// Adds after the close fail at once.
	b := newAdder(t, h, 1)
	b.add([]byte("y"))
	if r := b.wait(); !errors.Is(r[0].err, ledger.ErrClientClosed) {
		t.Fatalf("add after close: %v", r[0].err)
	}
	md, err := c.client().LedgerMetadata(ctx(t), h.ID())
	if err != nil || md.State != ledger.StateOpen {
		t.Fatalf("metadata %+v, %v", md, err)
	}
}

// TestReaderFollowsEnsembleChanges: a reader opened before two ensemble
// changes reads entries of the new segments, whose write sets share no
// bookie with the ensemble it first saw.
func TestReaderFollowsEnsembleChanges(t *testing.T) {
	c := newCluster(t, 5)
	h, err := c.client().CreateLedger(ctx(t), ledger.CreateOptions{Ensemble: 3, WriteQuorum: 2, AckQuorum: 2})
	if err != nil {
		t.Fatal(err)
	}
	id := h.ID()
	r, err := c.client().OpenLedger(ctx(t), id, nil, ledger.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := h.Metadata().Segments[0].Bookies
	n := 0
	appendN := func(k int) {
		for i := 0; i < k; i++ {
			if _, err := h.Append(ctx(t), payload(id, n)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	appendN(10)
	c.bookie(first[1]).Kill()
	appendN(10)
	c.bookie(first[2]).Kill()
	appendN(11) // the last one carries LAC n-2
	if segs := h.Metadata().Segments; len(segs) != 3 {
		t.Fatalf("segments %+v", segs)
	}
	lac, err := r.ReadLastAddConfirmed(ctx(t))
	if err != nil || lac != base.EntryID(n-2) {
		t.Fatalf("LAC %d, %v", lac, err)
	}
	// Entries before 20 lost two of their replicas; read the last segment.
	es, err := r.Read(ctx(t), 20, lac)
	if err != nil {
		t.Fatal(err)
	}
	defer ledger.ReleaseEntries(es)
	for i, e := range es {
		if want := payload(id, 20+i); e.ID != base.EntryID(20+i) || !bytes.Equal(e.Data.Bytes(), want) {
			t.Fatalf("entry %d: %q", e.ID, e.Data.Bytes())
		}
	}
}
