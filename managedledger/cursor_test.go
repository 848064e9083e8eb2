package managedledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/metastore"
)

// trimNow runs a trim pass and waits until the shorter list is persisted
// and the ledgers it dropped are deleted.
func trimNow(t testing.TB, ml *managedLedger) {
	t.Helper()
	ml.trimOnce()
	if err := ml.syncMeta(context.Background()); err != nil {
		t.Fatalf("trim: %v", err)
	}
}

func ledgerIDs(ml *managedLedger) []base.LedgerID {
	var out []base.LedgerID
	for _, l := range ledgerCounts(ml) {
		out = append(out, base.LedgerID(l[0]))
	}
	return out
}

// TestTrimOnlyBelowEveryCursor: a ledger is deleted only once every durable
// cursor's persisted mark-delete position is past it; acknowledgements that
// are not persisted yet do not count.
func TestTrimOnlyBelowEveryCursor(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MarkDeleteRateLimit = 0.001 }) // no persist unless flushed
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/trim", Config{MaxEntriesPerLedger: 5, MinRolloverTime: -1})
	a := mustCursor(t, ml, "a", Earliest)
	b := mustCursor(t, ml, "b", Earliest)
	ps := e.addN(ml, "m", 20)
	settle(t, ml)
	ids := ledgerIDs(ml)
	l1, l2, l3, l4 := ids[0], ids[1], ids[2], ids[3]
	if ps[19].Ledger != l4 {
		t.Fatalf("positions %v, ledgers %v", ps, ids)
	}
	exists := func(id base.LedgerID) bool { _, ok := e.bk.Ledger(id); return ok }

	if err := a.MarkDelete(ps[19]); err != nil {
		t.Fatal(err)
	}
	if err := b.MarkDelete(ps[7]); err != nil {
		t.Fatal(err)
	}
	trimNow(t, ml)
	if !exists(l1) || ledgerIDs(ml)[0] != l1 {
		t.Fatal("trimmed on acknowledgements that were not persisted")
	}
	flush(t, a)
	trimNow(t, ml)
	if !exists(l1) {
		t.Fatal("trimmed below one cursor only")
	}
	flush(t, b)
	trimNow(t, ml)
	if exists(l1) || !exists(l2) || ledgerIDs(ml)[0] != l2 {
		t.Fatalf("after b persisted 7: ledgers %v (l1 exists %v)", ledgerIDs(ml), exists(l1))
	}
	// Persisted list agrees.
	if info := e.readMeta(ml.name); info.ledgers[0].id != l2 {
		t.Fatalf("persisted list %+v", info.ledgers)
	}
	if err := b.MarkDelete(ps[14]); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	trimNow(t, ml)
	if exists(l2) || exists(l3) || !exists(l4) {
		t.Fatalf("after b persisted 14: ledgers %v", ledgerIDs(ml))
	}
	// The current ledger is never trimmed, even wholly consumed.
	if err := b.MarkDelete(ps[19]); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	trimNow(t, ml)
	if !exists(l4) {
		t.Fatal("current ledger trimmed")
	}
	if got := ml.NumberOfEntries(); got != 5 {
		t.Fatalf("%d entries left, want 5", got)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

func TestTrimRetention(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/retention", Config{
		MaxEntriesPerLedger: 5, MinRolloverTime: -1,
		RetentionTime: time.Hour, RetentionSizeBytes: -1,
	})
	c := mustCursor(t, ml, "sub", Earliest)
	ps := e.addN(ml, "m", 12)
	settle(t, ml)
	first := ledgerIDs(ml)[0]
	if err := c.MarkDelete(ps[11]); err != nil {
		t.Fatal(err)
	}
	flush(t, c)
	trimNow(t, ml)
	if ledgerIDs(ml)[0] != first {
		t.Fatal("trimmed within the retention time")
	}
	e.clock.Advance(time.Hour)
	trimNow(t, ml)
	if ids := ledgerIDs(ml); ids[0] == first || len(ids) > 2 {
		t.Fatalf("after the retention time the ledgers are %v", ids)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// ackState encodes a cursor's acknowledgement state (equal states encode
// to equal bytes) and counts its ranges.
func ackState(c *cursor) ([]byte, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	c.mu.acks.forEachRange(func(base.LedgerID, base.EntryID, base.EntryID) bool { n++; return true })
	return appendAckState(nil, &c.mu.acks, c.mu.batches), n
}

// ackRanges lists a cursor's acknowledged ranges.
func ackRanges(c *cursor) [][3]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][3]int64
	c.mu.acks.forEachRange(func(id base.LedgerID, a, b base.EntryID) bool {
		out = append(out, [3]int64{int64(id), int64(a), int64(b)})
		return true
	})
	return out
}

// keepAll retains consumed ledgers: a managed ledger opened before its
// first cursor exists would otherwise trim everything at once.
var keepAll = Config{RetentionTime: -1, RetentionSizeBytes: -1}

// bigLedgerML creates a managed ledger whose metadata lists a closed ledger
// of n entries (the entries themselves are never read), so tests can
// acknowledge millions of positions without writing them.
func (e *env) bigLedgerML(name string, n int64) base.LedgerID {
	e.t.Helper()
	wl, err := e.bk.Create(context.Background(), LedgerConfig{EnsembleSize: 1, WriteQuorum: 1, AckQuorum: 1})
	if err != nil {
		e.t.Fatal(err)
	}
	_ = wl.Close(context.Background())
	s, err := e.srv.NewSession()
	if err != nil {
		e.t.Fatal(err)
	}
	defer s.Close()
	info := mlInfo{ledgers: []ledgerMeta{{id: wl.ID(), entries: n, size: n, timestamp: 1}}}
	if _, err := s.Create(context.Background(), metastore.ManagedLedgerPath(name), info.marshal(nil), metastore.CreateParents); err != nil {
		e.t.Fatal(err)
	}
	return wl.ID()
}

func manyHoles() int64 {
	if testing.Short() {
		return 100_000
	}
	return 1_000_000
}

// ackAlternate acknowledges the odd entries of ledger id below 2*holes.
func ackAlternate(t testing.TB, c Cursor, id base.LedgerID, holes int64) {
	t.Helper()
	batch := make([]base.Position, 0, 10000)
	for e := int64(1); e < 2*holes; e += 2 {
		batch = append(batch, base.Position{Ledger: id, Entry: base.EntryID(e)})
		if len(batch) == cap(batch) {
			if err := c.Delete(batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := c.Delete(batch...); err != nil {
		t.Fatal(err)
	}
}

// TestManyHolesSurviveRestart: a million individually acknowledged
// positions (alternate acks: a million separate ranges) survive a clean
// close and a crash exactly, through the inline node, a single snapshot
// entry, and a snapshot split over many entries.
func TestManyHolesSurviveRestart(t *testing.T) {
	holes := manyHoles()
	for _, tc := range []struct {
		name       string
		crash      bool
		maxEntry   int
		inlineMax  int
		wantInline bool
	}{
		{name: "close/inline", inlineMax: 1 << 20 / 2, wantInline: true},
		{name: "close/ledger", inlineMax: 1 << 10},
		{name: "crash/one-entry", crash: true},
		{name: "crash/split", crash: true, maxEntry: 4 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *Options) {
				o.MarkDeleteRateLimit = 0.001 // persist on flush and close only
				if tc.maxEntry > 0 {
					o.CursorSnapshotMaxEntryBytes = tc.maxEntry
				}
				if tc.inlineMax > 0 {
					o.CursorInlineMaxBytes = tc.inlineMax
				}
			})
			name := "t/ns/persistent/holes"
			id := e.bigLedgerML(name, 2*holes+10)
			f1 := e.factory()
			ml := open(t, f1, name, keepAll)
			c := mustCursor(t, ml, "sub", Earliest)
			ackAlternate(t, c, id, holes)
			if err := c.DeleteBatchIndexes(pos(int64(id), 0), 10, []int{1, 3, 5}); err != nil {
				t.Fatal(err)
			}
			want, ranges := ackState(c)
			if int64(ranges) != holes {
				t.Fatalf("%d ranges before the restart, want %d", ranges, holes)
			}
			wantBacklog := c.Backlog()
			if tc.crash {
				flush(t, c)
				// The process dies: nothing is closed.
			} else if err := f1.Close(); err != nil {
				t.Fatal(err)
			}
			if !tc.crash {
				s, _ := e.srv.NewSession()
				data, _, err := s.Get(context.Background(), c.path)
				s.Close()
				if err != nil {
					t.Fatal(err)
				}
				info, _ := unmarshalCursorInfo(data)
				if inline := info.cursorLedger < 0; inline != tc.wantInline {
					t.Fatalf("node %+v: inline %v, want %v", info.cursorLedger, inline, tc.wantInline)
				}
			}
			f2 := e.factory()
			ml2 := open(t, f2, name, keepAll)
			c2 := mustCursor(t, ml2, "sub", Earliest)
			got, gotRanges := ackState(c2)
			if !bytes.Equal(got, want) {
				t.Fatalf("after the restart %d ranges (%d bytes), want %d (%d bytes)", gotRanges, len(got), ranges, len(want))
			}
			if md := c2.MarkDeletePosition(); md != pos(int64(id), -1) {
				t.Fatalf("mark-delete %v", md)
			}
			if b := c2.Backlog(); b != wantBacklog {
				t.Fatalf("backlog %d, want %d", b, wantBacklog)
			}
			if idx := c2.AckedBatchIndexes(pos(int64(id), 0)); !slices.Equal(idx, []int{1, 3, 5}) {
				t.Fatalf("batch indexes %v", idx)
			}
			if err := f2.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.crash {
				_ = f1.Close()
			}
			e.checkLeaks()
		})
	}
}

// TestRestartRedeliversOnlyUnacked: after a crash, a cursor reads exactly
// the entries it had not acknowledged.
func TestRestartRedeliversOnlyUnacked(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			e := newEnv(t)
			name := "t/ns/persistent/redeliver"
			cfg := Config{MaxEntriesPerLedger: 100, MinRolloverTime: -1}
			f1 := e.factory()
			ml := open(t, f1, name, cfg)
			c := mustCursor(t, ml, "sub", Earliest)
			ps := e.addN(ml, "m", 1000)
			rng := rand.New(rand.NewPCG(1, 2))
			var unacked []string
			var acks []base.Position
			for i, p := range ps {
				if i < 150 || rng.IntN(3) > 0 {
					acks = append(acks, p)
				} else {
					unacked = append(unacked, fmt.Sprintf("m-%d", i))
				}
			}
			rng.Shuffle(len(acks), func(i, j int) { acks[i], acks[j] = acks[j], acks[i] })
			for _, p := range acks {
				if err := c.Delete(p); err != nil {
					t.Fatal(err)
				}
			}
			if crash {
				flush(t, c)
			} else if err := f1.Close(); err != nil {
				t.Fatal(err)
			}
			f2 := e.factory()
			ml2 := open(t, f2, name, cfg)
			c2 := mustCursor(t, ml2, "sub", Earliest)
			got, _ := readAll(t, c2)
			if !slices.Equal(got, unacked) {
				t.Fatalf("redelivered %d entries %v..., want %d %v...", len(got), got[:min(5, len(got))], len(unacked), unacked[:5])
			}
			if b := c2.Backlog(); b != int64(len(unacked)) {
				t.Fatalf("backlog %d, want %d", b, len(unacked))
			}
			_ = f2.Close()
			_ = f1.Close()
			e.checkLeaks()
		})
	}
}

// TestIncompleteSnapshotSkipped: the broker dies while a snapshot split
// over several entries is half written; recovery uses the previous
// complete snapshot.
func TestIncompleteSnapshotSkipped(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.CursorSnapshotMaxEntryBytes = 1 << 10
		o.MarkDeleteRateLimit = 0.001 // persist on flush only
	})
	name := "t/ns/persistent/half-snapshot"
	id := e.bigLedgerML(name, 100_000)
	f1 := e.factory()
	ml := open(t, f1, name, keepAll)
	c := mustCursor(t, ml, "sub", Earliest)
	ackAlternate(t, c, id, 5000) // a few KiB: several parts
	flush(t, c)
	want := ackRanges(c)
	ackAlternate(t, c, id, 20000)
	e.bk.HoldAdds(true)
	done := make(chan error, 1)
	go func() { done <- c.Flush(context.Background()) }()
	eventually(t, "snapshot parts in flight", func() bool { return e.bk.HeldAdds() > 3 })
	e.bk.ReleaseAdds(2) // two parts land, then the broker dies
	f2 := e.factory()
	ml2 := open(t, f2, name, keepAll)
	c2 := mustCursor(t, ml2, "sub", Earliest)
	if got := ackRanges(c2); !slices.Equal(got, want) {
		t.Fatalf("recovered %d ranges, want the %d of the last complete snapshot", len(got), len(want))
	}
	e.bk.HoldAdds(false)
	if err := <-done; err == nil {
		t.Fatal("the interrupted flush succeeded")
	}
	_ = f2.Close()
	_ = f1.Close()
	e.checkLeaks()
}

// TestCursorLedgerRollover: after CursorMaxEntriesPerLedger snapshots the
// cursor moves to a new ledger and deletes the old one.
func TestCursorLedgerRollover(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	name := "t/ns/persistent/cursor-roll"
	ml := open(t, f, name, Config{CursorMaxEntriesPerLedger: 3})
	c := mustCursor(t, ml, "sub", Earliest)
	ps := e.addN(ml, "m", 10)
	var ledgers []base.LedgerID
	for i := range 7 {
		if err := c.MarkDelete(ps[i]); err != nil {
			t.Fatal(err)
		}
		flush(t, c)
		c.persistMu.Lock()
		id := c.p.ledger.ID()
		c.persistMu.Unlock()
		if !slices.Contains(ledgers, id) {
			ledgers = append(ledgers, id)
		}
	}
	if len(ledgers) != 3 {
		t.Fatalf("cursor ledgers %v, want 3 (3 snapshots each)", ledgers)
	}
	for _, id := range ledgers[:2] {
		if _, ok := e.bk.Ledger(id); ok {
			t.Fatalf("old cursor ledger %d not deleted", id)
		}
	}
	// Crash and recover from the newest cursor ledger.
	f2 := e.factory()
	ml2 := open(t, f2, name, Config{})
	if md := mustCursor(t, ml2, "sub", Earliest).MarkDeletePosition(); md != ps[6] {
		t.Fatalf("recovered mark-delete %v, want %v", md, ps[6])
	}
	_ = f2.Close()
	_ = f.Close()
	e.checkLeaks()
}

func TestCursorOperations(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/ops", Config{MaxEntriesPerLedger: 4, MinRolloverTime: -1})
	mustCursor(t, ml, "hold", Earliest) // keeps every ledger from trimming
	c := mustCursor(t, ml, "sub", Earliest)
	ps := e.addN(ml, "m", 10)
	settle(t, ml)

	// SkipEntries acknowledges the next n unacknowledged entries.
	if err := c.Delete(ps[1], ps[2]); err != nil {
		t.Fatal(err)
	}
	if err := c.SkipEntries(context.Background(), 3); err != nil { // 0, 3, 4
		t.Fatal(err)
	}
	if md := c.MarkDeletePosition(); md != ps[4] {
		t.Fatalf("after skip mark-delete %v, want %v", md, ps[4])
	}
	if b := c.Backlog(); b != 5 {
		t.Fatalf("backlog %d", b)
	}
	// IsAcknowledged and batch indexes.
	if !c.IsAcknowledged(ps[3]) || c.IsAcknowledged(ps[5]) {
		t.Fatal("IsAcknowledged")
	}
	if err := c.DeleteBatchIndexes(ps[6], 3, []int{0, 2}); err != nil {
		t.Fatal(err)
	}
	if got := c.AckedBatchIndexes(ps[6]); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("acked indexes %v", got)
	}
	if err := c.DeleteBatchIndexes(ps[6], 3, []int{1}); err != nil {
		t.Fatal(err)
	}
	if !c.IsAcknowledged(ps[6]) || c.AckedBatchIndexes(ps[6]) != nil {
		t.Fatal("complete batch not acknowledged")
	}
	// Reads skip acknowledged entries.
	got, _ := readAll(t, c)
	if !slices.Equal(got, []string{"m-5", "m-7", "m-8", "m-9"}) {
		t.Fatalf("read %v", got)
	}
	// ReplayEntries skips acknowledged positions.
	es, err := c.ReplayEntries(context.Background(), []base.Position{ps[7], ps[2], ps[5], ps[6]})
	if err != nil {
		t.Fatal(err)
	}
	var replayed []base.Position
	for _, x := range es {
		replayed = append(replayed, x.Pos)
		x.Data.Release()
	}
	if !slices.Equal(replayed, []base.Position{ps[5], ps[7]}) {
		t.Fatalf("replayed %v", replayed)
	}
	// ResetCursor moves back: everything from the position is unacknowledged.
	if err := c.ResetCursor(context.Background(), ps[2]); err != nil {
		t.Fatal(err)
	}
	if b := c.Backlog(); b != 8 {
		t.Fatalf("backlog after reset %d", b)
	}
	got, _ = readAll(t, c)
	if len(got) != 8 || got[0] != "m-2" {
		t.Fatalf("after reset read %v", got)
	}
	// Seek moves the read position only.
	c.Seek(ps[8])
	got, _ = readAll(t, c)
	if !slices.Equal(got, []string{"m-8", "m-9"}) {
		t.Fatalf("after seek read %v", got)
	}
	// Mark-delete beyond the end is refused.
	if err := c.MarkDelete(pos(int64(ps[9].Ledger), int64(ps[9].Entry)+5)); !errors.Is(err, ErrInvalidPosition) {
		t.Fatalf("mark-delete past the end: %v", err)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

func TestNonDurableCursor(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/reader", Config{MaxEntriesPerLedger: 3, MinRolloverTime: -1})
	mustCursor(t, ml, "keep", Earliest)
	ps := e.addN(ml, "m", 7)
	settle(t, ml)
	r, err := ml.NewNonDurableCursor(ps[3])
	if err != nil {
		t.Fatal(err)
	}
	if r.Durable() {
		t.Fatal("reader is durable")
	}
	got, _ := readAll(t, r)
	if !slices.Equal(got, []string{"m-4", "m-5", "m-6"}) {
		t.Fatalf("reader from %v read %v", ps[3], got)
	}
	earliest, _ := ml.NewNonDurableCursor(base.Position{Ledger: -1})
	if got, _ := readAll(t, earliest); len(got) != 7 {
		t.Fatalf("earliest reader read %v", got)
	}
	// Readers leave no node behind and do not hold trimming.
	s, _ := e.srv.NewSession()
	names, _ := s.Children(context.Background(), ml.path)
	s.Close()
	if !slices.Equal(names, []string{"keep"}) {
		t.Fatalf("cursor nodes %v", names)
	}
	_ = r.Close(context.Background())
	_ = earliest.Close(context.Background())
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

func TestDeleteCursorAndReopen(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	name := "t/ns/persistent/del-cursor"
	ml := open(t, f, name, Config{})
	c := mustCursor(t, ml, "sub", Earliest)
	ps := e.addN(ml, "m", 5)
	if err := c.MarkDelete(ps[1]); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.MarkDelete(ps[2]); !errors.Is(err, ErrCursorClosed) {
		t.Fatalf("mark-delete on a closed cursor: %v", err)
	}
	// Reopening after close restores the persisted state.
	c2 := mustCursor(t, ml, "sub", Latest)
	if md := c2.MarkDeletePosition(); md != ps[1] {
		t.Fatalf("reopened at %v, want %v", md, ps[1])
	}
	if err := ml.DeleteCursor(context.Background(), "sub"); err != nil {
		t.Fatal(err)
	}
	if len(ml.Cursors()) != 0 {
		t.Fatal("deleted cursor still listed")
	}
	c3 := mustCursor(t, ml, "sub", Latest)
	if md := c3.MarkDeletePosition(); md != ps[4] {
		t.Fatalf("new cursor at %v, want %v", md, ps[4])
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// TestOldOwnerCannotOverwriteCursor: after a takeover, the old owner's
// cursor writes fail instead of overwriting the state the new owner
// recovered.
func TestOldOwnerCannotOverwriteCursor(t *testing.T) {
	e := newEnv(t)
	name := "t/ns/persistent/zombie"
	f1 := e.factory()
	ml1 := open(t, f1, name, Config{})
	c1 := mustCursor(t, ml1, "sub", Earliest)
	ps := e.addN(ml1, "m", 10)
	if err := c1.MarkDelete(ps[4]); err != nil {
		t.Fatal(err)
	}
	flush(t, c1)

	f2 := e.factory()
	ml2 := open(t, f2, name, Config{})
	c2 := mustCursor(t, ml2, "sub", Earliest)
	if md := c2.MarkDeletePosition(); md != ps[4] {
		t.Fatalf("new owner recovered %v", md)
	}
	// The old owner acknowledges more and closes its cursor.
	if err := c1.MarkDelete(ps[8]); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(context.Background()); !errors.Is(err, ErrFenced) {
		t.Fatalf("old owner's close: %v, want ErrFenced", err)
	}
	// The new owner's state is intact and it persists normally.
	if err := c2.MarkDelete(ps[6]); err != nil {
		t.Fatal(err)
	}
	flush(t, c2)
	f3 := e.factory()
	ml3 := open(t, f3, name, Config{})
	if md := mustCursor(t, ml3, "sub", Earliest).MarkDeletePosition(); md != ps[6] {
		t.Fatalf("third owner recovered %v, want %v", md, ps[6])
	}
	_ = f3.Close()
	_ = f2.Close()
	_ = f1.Close()
	e.checkLeaks()
}
