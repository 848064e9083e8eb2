package managedledger

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

// modelSet is the obviously correct reference for ackSet.
type modelSet map[base.Position]bool

func (m modelSet) ranges() [][3]int64 {
	ps := make([]base.Position, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, base.Position.Compare)
	var out [][3]int64
	for _, p := range ps {
		if n := len(out); n > 0 && out[n-1][0] == int64(p.Ledger) && out[n-1][2]+1 == int64(p.Entry) {
			out[n-1][2]++
			continue
		}
		out = append(out, [3]int64{int64(p.Ledger), int64(p.Entry), int64(p.Entry)})
	}
	return out
}

func setRanges(s *ackSet) [][3]int64 {
	var out [][3]int64
	s.forEachRange(func(id base.LedgerID, a, b base.EntryID) bool {
		out = append(out, [3]int64{int64(id), int64(a), int64(b)})
		return true
	})
	return out
}

// TestAckSetAgainstModel drives ackSet and a map with the same random
// operations, in dense and sparse regimes (array, bitmap and full chunks),
// and compares them, the encoding round trip included.
func TestAckSetAgainstModel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		span   int64 // entries per ledger drawn from
		ops    int
		ranges bool
	}{
		{"sparse", 1 << 20, 3000, false},
		{"dense", 3 * chunkSize, 60000, false},
		{"runs", 4 * chunkSize, 200, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, uint64(tc.span)))
			var s ackSet
			m := modelSet{}
			check := func(step int) {
				t.Helper()
				if s.Len() != int64(len(m)) {
					t.Fatalf("step %d: Len %d, model %d", step, s.Len(), len(m))
				}
				if got, want := setRanges(&s), m.ranges(); !slices.Equal(got, want) {
					t.Fatalf("step %d: %d ranges, model %d", step, len(got), len(want))
				}
			}
			for i := 0; i < tc.ops; i++ {
				l := base.LedgerID(rng.IntN(3) + 1)
				e := base.EntryID(rng.Int64N(tc.span))
				switch r := rng.IntN(100); {
				case tc.ranges && r < 60:
					n := base.EntryID(rng.Int64N(5000))
					added := s.addRange(l, e, e+n)
					want := int64(0)
					for x := e; x <= e+n; x++ {
						p := base.Position{Ledger: l, Entry: x}
						if !m[p] {
							m[p] = true
							want++
						}
					}
					if added != want {
						t.Fatalf("addRange added %d, want %d", added, want)
					}
				case r < 97:
					p := base.Position{Ledger: l, Entry: e}
					if s.add(p) == m[p] {
						t.Fatalf("add(%v) newness disagrees with the model", p)
					}
					m[p] = true
				default:
					p := base.Position{Ledger: l, Entry: e}
					removed := s.removeThrough(p)
					want := int64(0)
					for q := range m {
						if !p.Less(q) {
							delete(m, q)
							want++
						}
					}
					if removed != want {
						t.Fatalf("removeThrough(%v) removed %d, want %d", p, removed, want)
					}
				}
				if i%(tc.ops/10) == 0 {
					check(i)
				}
				// Point queries.
				q := base.Position{Ledger: base.LedgerID(rng.IntN(3) + 1), Entry: base.EntryID(rng.Int64N(tc.span))}
				if s.contains(q) != m[q] {
					t.Fatalf("contains(%v) = %v", q, !m[q])
				}
				if end, ok := s.runEnd(q); ok != m[q] {
					t.Fatalf("runEnd(%v) found %v", q, ok)
				} else if ok {
					for x := q.Entry; x <= end; x++ {
						if !m[base.Position{Ledger: q.Ledger, Entry: x}] {
							t.Fatalf("runEnd(%v) = %d covers unacked %d", q, end, x)
						}
					}
					if m[base.Position{Ledger: q.Ledger, Entry: end + 1}] {
						t.Fatalf("runEnd(%v) = %d stops early", q, end)
					}
				}
				if nm, ok := s.nextMember(q); ok {
					if !m[base.Position{Ledger: q.Ledger, Entry: nm}] || nm < q.Entry {
						t.Fatalf("nextMember(%v) = %d not a member", q, nm)
					}
				}
			}
			check(tc.ops)
			enc := appendAckState(nil, &s, nil)
			dec, batches, err := decodeAckState(enc)
			if err != nil {
				t.Fatal(err)
			}
			if len(batches) != 0 || !slices.Equal(setRanges(&dec), m.ranges()) || dec.Len() != s.Len() {
				t.Fatal("decoded set differs")
			}
			if !bytes.Equal(appendAckState(nil, &dec, nil), enc) {
				t.Fatal("re-encoding differs")
			}
			c := s.clone()
			if !slices.Equal(setRanges(&c), m.ranges()) {
				t.Fatal("clone differs")
			}
		})
	}
}

// TestAckStateCompact: the encoding stays small where Pulsar gives up.
func TestAckStateCompact(t *testing.T) {
	f := func(name string, fill func(*ackSet), maxBytes int) {
		t.Helper()
		var s ackSet
		fill(&s)
		if n := len(appendAckState(nil, &s, nil)); n > maxBytes {
			t.Errorf("%s: %d bytes, want at most %d", name, n, maxBytes)
		}
	}
	f("1M alternate", func(s *ackSet) {
		for e := base.EntryID(1); e < 2_000_000; e += 2 {
			s.add(base.Position{Ledger: 1, Entry: e})
		}
	}, 260<<10)
	f("long run", func(s *ackSet) { s.addRange(1, 1, 50_000_000) }, 64)
	f("sparse", func(s *ackSet) {
		for e := base.EntryID(0); e < 10_000_000; e += 1000 {
			s.add(base.Position{Ledger: 1, Entry: e})
		}
	}, 40<<10)
}

func TestBatchAckRoundTrip(t *testing.T) {
	var s ackSet
	s.add(base.Position{Ledger: 3, Entry: 9})
	batches := map[base.Position]*batchAck{}
	for i, size := range []int{1, 63, 64, 65, 1000} {
		ba := newBatchAck(size)
		for j := 0; j < size; j += 2 + i {
			ba.set(j)
		}
		batches[base.Position{Ledger: 4, Entry: base.EntryID(i)}] = ba
	}
	enc := appendAckState(nil, &s, batches)
	dec, got, err := decodeAckState(enc)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Len() != 1 || len(got) != len(batches) {
		t.Fatalf("decoded %d acks, %d batches", dec.Len(), len(got))
	}
	for p, ba := range batches {
		g := got[p]
		if g == nil || g.size != ba.size || !slices.Equal(g.indexes(), ba.indexes()) {
			t.Fatalf("batch %v: %+v, want %+v", p, g, ba)
		}
	}
}

// FuzzDecodeAckState: arbitrary bytes never panic the decoder, and what it
// accepts re-encodes to a state that decodes the same.
func FuzzDecodeAckState(f *testing.F) {
	var s ackSet
	s.addRange(5, 0, 10)
	s.addRange(5, 70000, 70100)
	for e := base.EntryID(1); e < 20000; e += 2 {
		s.add(base.Position{Ledger: 6, Entry: e})
	}
	s.addRange(7, 0, chunkSize-1)
	ba := newBatchAck(10)
	ba.set(3)
	f.Add(appendAckState(nil, &s, map[base.Position]*batchAck{{Ledger: 1, Entry: 2}: ba}))
	f.Add([]byte{1, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		acks, batches, err := decodeAckState(b)
		if err != nil {
			return
		}
		enc := appendAckState(nil, &acks, batches)
		acks2, batches2, err := decodeAckState(enc)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if !slices.Equal(setRanges(&acks), setRanges(&acks2)) || len(batches) != len(batches2) {
			t.Fatal("round trip differs")
		}
	})
}

// FuzzMetadata: the node and snapshot decoders never panic.
func FuzzMetadata(f *testing.F) {
	info := mlInfo{ledgers: []ledgerMeta{{id: 1, entries: 5, size: 50, timestamp: 7}, {id: 2, open: true}},
		properties: map[string]string{"k": "v"}}
	f.Add(info.marshal(nil))
	ci := cursorInfo{cursorLedger: -1, markDelete: base.Position{Ledger: 3, Entry: 4}, ackState: []byte{1, 0, 0}}
	f.Add(ci.marshal(nil))
	sp := snapshotPart{markDelete: base.Position{Ledger: 1, Entry: 2}, data: []byte{1, 0, 0}, index: 1, of: 3, seq: 9}
	f.Add(sp.marshal(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := unmarshalMLInfo(b); err == nil {
			if _, err := unmarshalMLInfo(m.marshal(nil)); err != nil {
				t.Fatalf("re-encoded ManagedLedgerInfo does not decode: %v", err)
			}
		}
		if c, err := unmarshalCursorInfo(b); err == nil {
			if _, err := unmarshalCursorInfo(c.marshal(nil)); err != nil {
				t.Fatalf("re-encoded ManagedCursorInfo does not decode: %v", err)
			}
		}
		_, _ = unmarshalSnapshotPart(b)
	})
}

func TestMetadataRoundTrip(t *testing.T) {
	info := mlInfo{ledgers: []ledgerMeta{{id: 1, entries: 5, size: 50, timestamp: 7}, {id: 9, open: true}},
		properties: map[string]string{"k": "v", "a": "b"}}
	got, err := unmarshalMLInfo(info.marshal(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.ledgers) != 2 || got.ledgers[0] != info.ledgers[0] || got.ledgers[1].id != 9 || got.ledgers[1].entries != 0 ||
		got.properties["k"] != "v" || got.properties["a"] != "b" {
		t.Fatalf("round trip %+v", got)
	}
	ci := cursorInfo{cursorLedger: -1, markDelete: base.Position{Ledger: 3, Entry: -1}, lastActive: 5, ackState: []byte{1, 2}}
	gc, err := unmarshalCursorInfo(ci.marshal(nil))
	if err != nil || gc.cursorLedger != -1 || gc.markDelete != ci.markDelete || gc.lastActive != 5 || !bytes.Equal(gc.ackState, ci.ackState) {
		t.Fatalf("cursor info %+v, %v", gc, err)
	}
	// Pulsar's encoding of a LedgerInfo {ledgerId: 1, entries: 5, size: 50,
	// timestamp: 7} as ManagedLedgerInfo field 1.
	pulsar := []byte{0x0a, 0x08, 0x08, 0x01, 0x10, 0x05, 0x18, 0x32, 0x20, 0x07}
	if enc := (&mlInfo{ledgers: info.ledgers[:1]}).marshal(nil); !bytes.Equal(enc, pulsar) {
		t.Fatalf("encoding % x, want Pulsar's % x", enc, pulsar)
	}
}
