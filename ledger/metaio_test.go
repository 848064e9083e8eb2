package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/bk"
	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/memory"
)

func testMetaIO(t *testing.T) (*metaIO, metastore.Store, context.Context) {
	t.Helper()
	srv := memory.New(metastore.Options{})
	t.Cleanup(func() { srv.Close() })
	s, err := srv.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &metaIO{store: s, root: metastore.LedgersRoot, attempts: 1000}, s, ctx
}

func openMetadata() *Metadata {
	return &Metadata{EnsembleSize: 2, WriteQuorum: 2, AckQuorum: 1, State: StateOpen, LastEntry: base.InvalidEntry,
		Segments: []Segment{{FirstEntry: 0, Bookies: []string{"a:1", "b:1"}}}, DigestType: bk.DigestCRC32C, Password: []byte{}}
}

func TestLedgerIDsAndPaths(t *testing.T) {
	m, s, ctx := testMetaIO(t)
	var last base.LedgerID = -1
	for i := 0; i < 5; i++ {
		id, version, err := m.create(ctx, openMetadata())
		if err != nil || version != 0 {
			t.Fatal(err)
		}
		if id <= last {
			t.Fatalf("id %d after %d", id, last)
		}
		last = id
		if _, _, err := s.Get(ctx, metastore.LedgerPath(metastore.LedgersRoot, int64(id))); err != nil {
			t.Fatalf("metadata of %d not at its hierarchical path: %v", id, err)
		}
	}
	// The generator's sequential nodes are deleted after use.
	if kids, err := s.Children(ctx, metastore.LedgerIDGenPath); err != nil || len(kids) != 0 {
		t.Fatalf("idgen children %v, %v", kids, err)
	}
}

// TestMetadataCASConflicts: concurrent updaters of one ledger's metadata
// all succeed, each re-reading and re-applying its change after a lost
// compare-and-set.
func TestMetadataCASConflicts(t *testing.T) {
	m, _, ctx := testMetaIO(t)
	id, version, err := m.create(ctx, openMetadata())
	if err != nil {
		t.Fatal(err)
	}
	start, _, err := m.read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 5
	var wg sync.WaitGroup
	var conflicts sync.Map
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cur, ver := start, version // every worker starts from the same, soon stale, version
			for i := range each {
				calls := 0
				var err error
				cur, ver, err = m.update(ctx, id, cur, ver, func(md *Metadata) (*Metadata, error) {
					calls++
					if md.Custom == nil {
						md.Custom = map[string][]byte{}
					}
					md.Custom[fmt.Sprintf("w%d-%d", w, i)] = []byte{byte(w)}
					return md, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if calls > 1 {
					conflicts.Store(w, true)
				}
			}
		}()
	}
	wg.Wait()
	final, ver, err := m.read(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(final.Custom) != workers*each || ver != workers*each {
		t.Fatalf("%d keys at version %d, want %d", len(final.Custom), ver, workers*each)
	}
	n := 0
	conflicts.Range(func(any, any) bool { n++; return true })
	if n == 0 {
		t.Fatal("no updater ever lost a compare-and-set: the test proves nothing")
	}

	// A change that refuses stops the loop with its error; nil stores
	// nothing.
	stop := errors.New("stop")
	if _, _, err := m.update(ctx, id, nil, 0, func(*Metadata) (*Metadata, error) { return nil, stop }); !errors.Is(err, stop) {
		t.Fatalf("refusing change: %v", err)
	}
	if _, v, err := m.update(ctx, id, nil, 0, func(*Metadata) (*Metadata, error) { return nil, nil }); err != nil || v != ver {
		t.Fatalf("no-op change: version %d, %v", v, err)
	}
	// An invalid result is refused before it is stored.
	if _, _, err := m.update(ctx, id, nil, 0, func(md *Metadata) (*Metadata, error) {
		md.AckQuorum = 5
		return md, nil
	}); !errors.Is(err, ErrMetadata) {
		t.Fatalf("invalid change: %v", err)
	}
	if err := m.remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.update(ctx, id, final, ver, func(md *Metadata) (*Metadata, error) { return md, nil }); !errors.Is(err, ErrNoLedger) {
		t.Fatalf("update of a deleted ledger: %v", err)
	}
}

func TestWithEnsemble(t *testing.T) {
	md := openMetadata()
	md.EnsembleSize, md.Segments[0].Bookies = 3, []string{"a", "b", "c"}
	got, err := withEnsemble(md.Clone(), []string{"a", "b", "c"}, 10, []string{"a", "d", "c"})
	if err != nil || len(got.Segments) != 2 || got.Segments[1].FirstEntry != 10 || got.Segments[1].Bookies[1] != "d" {
		t.Fatalf("append: %+v, %v", got, err)
	}
	// A change at the start of the last segment replaces it.
	got2, err := withEnsemble(got.Clone(), []string{"a", "d", "c"}, 10, []string{"a", "d", "e"})
	if err != nil || len(got2.Segments) != 2 || got2.Segments[1].Bookies[2] != "e" {
		t.Fatalf("replace: %+v, %v", got2, err)
	}
	if _, err := withEnsemble(got.Clone(), []string{"a", "b", "c"}, 20, []string{"x", "b", "c"}); !errors.Is(err, ErrMetadataConflict) {
		t.Fatalf("stale ensemble: %v", err)
	}
	if _, err := withEnsemble(got.Clone(), []string{"a", "d", "c"}, 5, []string{"x", "d", "c"}); !errors.Is(err, ErrMetadataConflict) {
		t.Fatalf("segment before the last: %v", err)
	}
}
