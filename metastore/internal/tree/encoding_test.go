package tree

import (
	"bytes"
	"errors"
	"testing"

	"github.com/magnetar/magnetar/metastore/internal/core"
)

func TestMutationRoundTrip(t *testing.T) {
	for _, m := range []Mutation{
		{Op: OpCreate, Zxid: 1, Time: 1700000000000, Owner: 42, Path: "/a/b", Data: []byte("data")},
		{Op: OpSet, Zxid: 1 << 40, Time: -1, Path: "/", Data: nil},
		{Op: OpDelete, Zxid: 7, Path: "/x"},
		{Op: OpSession, Zxid: 9, Time: 5},
	} {
		b := AppendMutation([]byte("prefix"), &m)
		got, err := DecodeMutation(b[len("prefix"):])
		if err != nil {
			t.Fatal(err)
		}
		if got.Op != m.Op || got.Zxid != m.Zxid || got.Time != m.Time || got.Owner != m.Owner || got.Path != m.Path || !bytes.Equal(got.Data, m.Data) {
			t.Fatalf("round trip %+v -> %+v", m, got)
		}
	}
	if _, err := DecodeMutation([]byte{9}); !errors.Is(err, core.ErrCorruption) {
		t.Fatalf("garbage decoded: %v", err)
	}
}

func FuzzDecodeMutation(f *testing.F) {
	f.Add(AppendMutation(nil, &Mutation{Op: OpCreate, Zxid: 3, Time: 4, Owner: 5, Path: "/p", Data: []byte("d")}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMutation(b)
		if err != nil {
			if !errors.Is(err, core.ErrCorruption) {
				t.Fatalf("error %v is not ErrCorruption", err)
			}
			return
		}
		// What decodes re-encodes to the same bytes (varints aside, the
		// encoding is canonical for what AppendMutation produces).
		again, err := DecodeMutation(AppendMutation(nil, &m))
		if err != nil || again.Path != m.Path || !bytes.Equal(again.Data, m.Data) || again.Zxid != m.Zxid {
			t.Fatalf("re-decode: %+v %v", again, err)
		}
	})
}

func FuzzDecodeNodeImage(f *testing.F) {
	f.Add(AppendNodeImage(nil, &NodeImage{Path: "/a", Data: []byte("x"), Czxid: 1, Mzxid: 2, Pzxid: 3, Ctime: 4, Mtime: 5, Version: 6, Cversion: 7, Owner: 8}))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeNodeImage(b)
		if err != nil {
			if !errors.Is(err, core.ErrCorruption) {
				t.Fatalf("error %v is not ErrCorruption", err)
			}
			return
		}
		again, err := DecodeNodeImage(AppendNodeImage(nil, &n))
		if err != nil || again.Path != n.Path || again.Owner != n.Owner || !bytes.Equal(again.Data, n.Data) {
			t.Fatalf("re-decode: %+v %v", again, err)
		}
	})
}

// TestReplayRejectsGaps: a log whose zxids skip, or whose changes do not
// fit the tree, is corruption.
func TestReplayRejectsGaps(t *testing.T) {
	tr := New(Config{})
	if err := tr.Replay(&Mutation{Op: OpCreate, Zxid: 1, Path: "/a"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []Mutation{
		{Op: OpCreate, Zxid: 3, Path: "/b"},
		{Op: OpCreate, Zxid: 2, Path: "/a"},
		{Op: OpCreate, Zxid: 2, Path: "/x/y"},
		{Op: OpSet, Zxid: 2, Path: "/nope"},
		{Op: OpDelete, Zxid: 2, Path: "/nope"},
	} {
		if err := tr.Replay(&m); !errors.Is(err, core.ErrCorruption) {
			t.Errorf("Replay(%+v): %v, want ErrCorruption", m, err)
		}
	}
	// Already applied: skipped.
	if err := tr.Replay(&Mutation{Op: OpCreate, Zxid: 1, Path: "/a"}); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotRestore: a snapshot restores the same tree.
func TestSnapshotRestore(t *testing.T) {
	tr := New(Config{})
	for i, m := range []Mutation{
		{Op: OpSession},
		{Op: OpCreate, Path: "/a", Data: []byte("1")},
		{Op: OpCreate, Path: "/a/b", Owner: 1},
		{Op: OpSet, Path: "/a", Data: []byte("2")},
		{Op: OpCreate, Path: "/c"},
		{Op: OpDelete, Path: "/c"},
	} {
		m.Zxid = int64(i + 1)
		if err := tr.Replay(&m); err != nil {
			t.Fatal(err)
		}
	}
	snap := tr.Snapshot()
	tr2 := New(Config{})
	if err := tr2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if got, want := tr2.Snapshot(), snap; got.Zxid != want.Zxid || len(got.Nodes) != len(want.Nodes) {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	if err := tr2.DropEphemerals(); err != nil {
		t.Fatal(err)
	}
	if nodes := tr2.Nodes(); len(nodes) != 2 || nodes[1] != "/a" {
		t.Fatalf("nodes after dropping ephemerals: %q", nodes)
	}
	bad := &Snapshot{Nodes: []NodeImage{{Path: "/"}, {Path: "/x/y"}}}
	if err := New(Config{}).Restore(bad); !errors.Is(err, core.ErrCorruption) {
		t.Fatalf("Restore of an orphan: %v", err)
	}
}
