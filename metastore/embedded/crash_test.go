package embedded_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/embedded"
)

// model is what the acknowledged writes say the store holds: path -> data,
// absent for deleted paths. pending is the write in flight when the power
// went, which may or may not have happened.
type model struct {
	nodes   map[string][]byte
	pending func(m map[string][]byte)
}

// crashWorkload opens the store on fs and applies a fixed sequence of
// writes, recording each acknowledged one in m, until the first error.
// SnapshotAfterBytes is tiny so that log rotation and snapshots happen at
// many of the cut points.
func crashWorkload(fs vfs.FS, m *model) {
	ctx := context.Background()
	srv, err := embedded.Open("/meta", metastore.Options{FS: fs, SnapshotAfterBytes: 1 << 10, Logger: discard})
	if err != nil {
		return
	}
	defer srv.Close()
	s, err := srv.NewSession()
	if err != nil {
		return
	}
	apply := func(change func(map[string][]byte), op func() error) bool {
		m.pending = change
		if err := op(); err != nil {
			return false
		}
		change(m.nodes)
		m.pending = nil
		return true
	}
	for i := range 12 {
		p := fmt.Sprintf("/dir/k%02d", i)
		data := bytes.Repeat([]byte{byte('a' + i)}, 40*i)
		ok := apply(func(n map[string][]byte) { n["/dir"] = []byte{}; n[p] = data }, func() error {
			_, err := s.Create(ctx, p, data, metastore.CreateParents)
			return err
		})
		if !ok {
			return
		}
		v := fmt.Appendf(nil, "v%d", i)
		if !apply(func(n map[string][]byte) { n["/counter"] = v }, func() error {
			_, err := s.Put(ctx, "/counter", v, metastore.AnyVersion)
			return err
		}) {
			return
		}
		if i%3 == 2 {
			old := fmt.Sprintf("/dir/k%02d", i-2)
			if !apply(func(n map[string][]byte) { delete(n, old) }, func() error {
				return s.Delete(ctx, old, metastore.AnyVersion)
			}) {
				return
			}
		}
		// Ephemeral nodes never survive a restart; they are not in the model.
		if _, err := s.Create(ctx, fmt.Sprintf("/dir/eph%02d", i), nil, metastore.Ephemeral); err != nil {
			return
		}
	}
}

// verifyCrash reopens the store after a crash and checks it against m.
func verifyCrash(t *testing.T, fs vfs.FS, m *model, cut int64) {
	t.Helper()
	ctx := context.Background()
	srv, err := embedded.Open("/meta", metastore.Options{FS: fs, SnapshotAfterBytes: 1 << 10, Logger: discard})
	if err != nil {
		t.Fatalf("cut after op %d: reopen: %v", cut, err)
	}
	defer srv.Close()
	s, err := srv.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	var walk func(p string)
	walk = func(p string) {
		kids, err := s.Children(ctx, p)
		if err != nil {
			t.Fatalf("cut after op %d: children of %s: %v", cut, p, err)
		}
		for _, k := range kids {
			c := metastore.Join(p, k)
			d, st, err := s.Get(ctx, c)
			if err != nil {
				t.Fatalf("cut after op %d: get %s: %v", cut, c, err)
			}
			if st.EphemeralOwner != 0 {
				t.Fatalf("cut after op %d: ephemeral %s survived a restart", cut, c)
			}
			got[c] = d
			walk(c)
		}
	}
	walk("/")
	same := func(want map[string][]byte) bool {
		if len(want) != len(got) {
			return false
		}
		for p, d := range want {
			if g, ok := got[p]; !ok || !bytes.Equal(g, d) {
				return false
			}
		}
		return true
	}
	if same(m.nodes) {
		return
	}
	if m.pending != nil {
		after := map[string][]byte{}
		for p, d := range m.nodes {
			after[p] = d
		}
		m.pending(after)
		if same(after) {
			return
		}
	}
	t.Fatalf("cut after op %d: store holds %d nodes %v\nacknowledged state %v", cut, len(got), keys(got), keys(m.nodes))
}

func keys(m map[string][]byte) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s(%d)", k, len(v)))
	}
	return out
}

// TestCrashAtEveryOperation cuts the power after every mutating filesystem
// operation of a workload (opening the store, writes, log rotations,
// snapshots), then recovers: every acknowledged write is there, nothing
// else but the write in flight, and the recovered store opens cleanly again.
func TestCrashAtEveryOperation(t *testing.T) {
	for _, keepPrefix := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepUnsyncedPrefix=%v", keepPrefix), func(t *testing.T) {
			cuts := 0
			for n := int64(1); ; n++ {
				fs := vfs.NewMem()
				fs.CrashAfter(n)
				m := &model{nodes: map[string][]byte{}}
				crashWorkload(fs, m)
				if !fs.PowerCut() {
					break
				}
				cuts++
				opts := vfs.CrashOptions{}
				if keepPrefix {
					opts.KeepUnsyncedPrefix = rand.New(rand.NewPCG(uint64(n), 7))
				}
				fs.CrashWith(opts)
				verifyCrash(t, fs, m, n)
				// Recovery itself leaves a store that recovers again.
				fs.Crash()
				verifyCrash(t, fs, m, n)
			}
			if cuts < 50 {
				t.Fatalf("only %d cut points: the workload did not run", cuts)
			}
			t.Logf("%d cut points", cuts)
		})
	}
}

// TestCrashDuringRecovery cuts the power during the open that recovers
// from a first crash.
func TestCrashDuringRecovery(t *testing.T) {
	for n := int64(1); ; n++ {
		// The same history each time: a crash 60 operations into the
		// workload, then a second cut n operations into the recovery.
		fs := vfs.NewMem()
		fs.CrashAfter(60)
		m := &model{nodes: map[string][]byte{}}
		crashWorkload(fs, m)
		if !fs.PowerCut() {
			t.Fatal("workload shorter than 60 operations")
		}
		fs.Crash()
		fs.CrashAfter(fs.Ops() + n)
		srv, err := embedded.Open("/meta", metastore.Options{FS: fs, SnapshotAfterBytes: 1 << 10, Logger: discard})
		if err == nil {
			srv.Close()
		} else if !errors.Is(err, vfs.ErrCrashed) {
			t.Fatalf("recovery cut after %d ops: %v", n, err)
		}
		if !fs.PowerCut() {
			if n < 5 {
				t.Fatalf("recovery took only %d operations", n)
			}
			break
		}
		fs.Crash()
		verifyCrash(t, fs, m, n)
	}
}
