package managedledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/ledger"
	"github.com/magnetar/magnetar/ledger/ledgertest"
	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/memory"
)

// TestOverReplicatedLedgers runs the managed ledger over the real ledger
// client and three test bookies (E=3, W=2, A=2): adds across rollovers,
// reads from the bookies, cursor persistence in real cursor ledgers, and a
// second owner taking over (fencing the first through the bookies).
func TestOverReplicatedLedgers(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	srv := memory.New(metastore.Options{Logger: quiet})
	t.Cleanup(func() { srv.Close() })
	session := func() metastore.Store {
		s, err := srv.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	reg := session()
	for range 3 {
		b, err := ledgertest.Start(ledgertest.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		if err := b.Register(context.Background(), reg); err != nil {
			t.Fatal(err)
		}
	}
	newFactory := func(cache int64) *MLFactory {
		cl, err := ledger.NewClient(ledger.Options{Store: session(), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		f, err := NewFactory(Options{
			Store: session(), BookKeeper: NewBookKeeper(cl, nil), Logger: quiet,
			CacheSizeBytes: cache, MaintenanceInterval: -1, MarkDeleteRateLimit: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	cfg := Config{EnsembleSize: 3, WriteQuorum: 2, AckQuorum: 2, MaxEntriesPerLedger: 20, MinRolloverTime: -1}
	name := "t/ns/persistent/replicated"
	f1 := newFactory(-1) // no cache: every read goes to the bookies
	ml, err := f1.Open(context.Background(), name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := mustCursor(t, ml, "sub", Earliest)
	e := &env{t: t, pool: bufs.Default}
	ps := e.addN(ml, "m", 50)
	if ps[49].Ledger == ps[0].Ledger {
		t.Fatalf("no rollover: %v", ps[49])
	}
	got, gotPos := readAll(t, c)
	if len(got) != 50 || got[49] != "m-49" || !slices.Equal(gotPos, ps) {
		t.Fatalf("read %d entries: %v", len(got), got)
	}
	var acks []base.Position
	var unacked []string
	for i, p := range ps {
		if i%3 != 0 {
			acks = append(acks, p)
		} else {
			unacked = append(unacked, fmt.Sprintf("m-%d", i))
		}
	}
	if err := c.Delete(acks...); err != nil {
		t.Fatal(err)
	}
	flush(t, c)

	// Another broker takes over without f1 closing anything.
	f2 := newFactory(0)
	ml2, err := f2.Open(context.Background(), name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := ml2.NumberOfEntries(); n != 50 {
		t.Fatalf("new owner sees %d entries", n)
	}
	c2 := mustCursor(t, ml2, "sub", Earliest)
	if got, _ := readAll(t, c2); !slices.Equal(got, unacked) {
		t.Fatalf("new owner redelivers %v, want %v", got, unacked)
	}
	r := newAddRecorder()
	ml.AddEntry(e.buf("late"), r.cb(0))
	if res := r.wait(t, 1)[0]; !errors.Is(res.err, ErrFenced) {
		t.Fatalf("old owner's add after the takeover: %+v", res)
	}
	if p := e.add(ml2, "new"); p.Ledger <= ps[49].Ledger {
		t.Fatalf("new owner added at %v", p)
	}
	if err := ml2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
