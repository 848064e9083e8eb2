// Package metastoretest is the conformance suite every metadata store
// backend passes: the memory, embedded and ZooKeeper stores run the same
// tests through Run, so code written against one behaves the same on the
// others.
package metastoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/metastore"
)

// Cluster is one empty store under test.
type Cluster interface {
	// NewClient opens a client with its own session on the cluster. The
	// test's cleanup closes it.
	NewClient(t *testing.T) metastore.Store
	// ExpireSession makes the session of s expire as the backend would
	// (for ZooKeeper: the server expires it). It returns once the session is
	// dead in the store; s learns of it asynchronously.
	ExpireSession(t *testing.T, s metastore.Store)
}

// Timeout bounds every wait for an event. Generous: ZooKeeper under the race
// detector on a loaded machine is slow, and a correct store never comes
// near it.
const Timeout = 30 * time.Second

// Run runs the conformance suite. newCluster returns a fresh, empty cluster
// for each subtest.
func Run(t *testing.T, newCluster func(t *testing.T) Cluster) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c Cluster)
	}{
		{"CRUD", testCRUD},
		{"Versions", testVersions},
		{"Paths", testPaths},
		{"CreateParents", testCreateParents},
		{"ChildrenSorted", testChildrenSorted},
		{"CASRace", testCASRace},
		{"CASCounter", testCASCounter},
		{"SequentialContention", testSequentialContention},
		{"WatchData", testWatchData},
		{"WatchCoalesces", testWatchCoalesces},
		{"WatchChildren", testWatchChildren},
		{"WatchEnds", testWatchEnds},
		{"EphemeralOnClose", testEphemeralOnClose},
		{"EphemeralOnExpiry", testEphemeralOnExpiry},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newCluster(t))
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// okT unwraps results, failing the test on an error.
type okT struct{ t *testing.T }

func (o okT) check(err error) {
	o.t.Helper()
	if err != nil {
		o.t.Fatal(err)
	}
}

func (o okT) Path(p string, err error) string { o.t.Helper(); o.check(err); return p }

func (o okT) Stat(st metastore.Stat, err error) metastore.Stat {
	o.t.Helper()
	o.check(err)
	return st
}

func (o okT) Names(n []string, err error) []string { o.t.Helper(); o.check(err); return n }

func (o okT) Watch(w *metastore.Watch, err error) *metastore.Watch {
	o.t.Helper()
	o.check(err)
	return w
}

func (o okT) Get(d []byte, st metastore.Stat, err error) ([]byte, metastore.Stat) {
	o.t.Helper()
	o.check(err)
	return d, st
}

func (o okT) Exists(st metastore.Stat, ok bool, err error) (metastore.Stat, bool) {
	o.t.Helper()
	o.check(err)
	return st, ok
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func testCRUD(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	s := c.NewClient(t)

	_, _, err := s.Get(ctx, "/a")
	wantErr(t, err, metastore.ErrNotFound)
	if _, ok := must.Exists(s.Exists(ctx, "/a")); ok {
		t.Fatal("Exists(/a) before create")
	}
	if _, ok := must.Exists(s.Exists(ctx, "/")); !ok {
		t.Fatal("the root does not exist")
	}

	before := time.Now().Add(-time.Minute)
	if p := must.Path(s.Create(ctx, "/a", []byte("x"), 0)); p != "/a" {
		t.Fatalf("Create returned %q", p)
	}
	_, err = s.Create(ctx, "/a", []byte("again"), 0)
	wantErr(t, err, metastore.ErrNodeExists)

	data, st, err := s.Get(ctx, "/a")
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "x" || st.Version != 0 || st.DataLength != 1 || st.NumChildren != 0 || st.EphemeralOwner != 0 {
		t.Fatalf("Get(/a) = %q %+v", data, st)
	}
	if st.Created.Before(before) || !st.Created.Equal(st.Modified) || st.CreatedRevision == 0 || st.CreatedRevision != st.ModifiedRevision {
		t.Fatalf("fresh node stat %+v", st)
	}
	if st2, ok := must.Exists(s.Exists(ctx, "/a")); !ok || st2.Version != 0 {
		t.Fatalf("Exists(/a) = %+v %v", st2, ok)
	}

	// Data is copied both ways.
	buf := []byte("abc")
	must.Path(s.Create(ctx, "/copy", buf, 0))
	buf[0] = 'X'
	got, _, _ := s.Get(ctx, "/copy")
	if string(got) != "abc" {
		t.Fatalf("store kept the caller's buffer: %q", got)
	}
	got[1] = 'Y'
	if again, _, _ := s.Get(ctx, "/copy"); string(again) != "abc" {
		t.Fatalf("store returned its own buffer: %q", again)
	}

	// Empty and large values.
	must.Path(s.Create(ctx, "/empty", nil, 0))
	if d, st := must.Get(s.Get(ctx, "/empty")); len(d) != 0 || st.DataLength != 0 {
		t.Fatalf("empty node: %q %+v", d, st)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 512<<10/16)
	must.Path(s.Create(ctx, "/big", big, 0))
	if d, _ := must.Get(s.Get(ctx, "/big")); !bytes.Equal(d, big) {
		t.Fatalf("512 KiB value came back as %d bytes", len(d))
	}
	_, err = s.Create(ctx, "/huge", make([]byte, metastore.MaxDataSize+1), 0)
	wantErr(t, err, metastore.ErrTooLarge)
	_, err = s.Put(ctx, "/big", make([]byte, metastore.MaxDataSize+1), metastore.AnyVersion)
	wantErr(t, err, metastore.ErrTooLarge)

	// Children and parents.
	must.Path(s.Create(ctx, "/a/b", []byte("child"), 0))
	_, st, _ = s.Get(ctx, "/a")
	if st.NumChildren != 1 || st.CVersion != 1 {
		t.Fatalf("parent after child create: %+v", st)
	}
	_, err = s.Create(ctx, "/missing/child", nil, 0)
	wantErr(t, err, metastore.ErrNotFound)

	// Deletes.
	wantErr(t, s.Delete(ctx, "/a", metastore.AnyVersion), metastore.ErrNotEmpty)
	wantErr(t, s.Delete(ctx, "/a/b", 7), metastore.ErrBadVersion)
	if err := s.Delete(ctx, "/a/b", 0); err != nil {
		t.Fatal(err)
	}
	wantErr(t, s.Delete(ctx, "/a/b", metastore.AnyVersion), metastore.ErrNotFound)
	_, st, _ = s.Get(ctx, "/a")
	if st.NumChildren != 0 || st.CVersion != 2 {
		t.Fatalf("parent after child delete: %+v", st)
	}
	if err := s.Delete(ctx, "/a", metastore.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if _, ok := must.Exists(s.Exists(ctx, "/a")); ok {
		t.Fatal("deleted node exists")
	}

	// A node created again is a new node.
	must.Path(s.Create(ctx, "/a", nil, 0))
	_, st2, _ := s.Get(ctx, "/a")
	if st2.Version != 0 || st2.CreatedRevision <= st.CreatedRevision {
		t.Fatalf("recreated node: %+v, first %+v", st2, st)
	}

	// Another client sees the same tree.
	s2 := c.NewClient(t)
	if d, _ := must.Get(s2.Get(ctx, "/copy")); string(d) != "abc" {
		t.Fatalf("second client reads %q", d)
	}
	if s.SessionID() == 0 || s.SessionID() == s2.SessionID() {
		t.Fatalf("session ids %#x and %#x", s.SessionID(), s2.SessionID())
	}
}

func testVersions(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	s := c.NewClient(t)

	_, err := s.Put(ctx, "/v", []byte("0"), 0)
	wantErr(t, err, metastore.ErrNotFound)
	st := must.Stat(s.Put(ctx, "/v", []byte("0"), metastore.AnyVersion))
	if st.Version != 0 {
		t.Fatalf("Put(AnyVersion) of a new node: version %d", st.Version)
	}
	for i := int64(0); i < 5; i++ {
		st := must.Stat(s.Put(ctx, "/v", fmt.Appendf(nil, "%d", i+1), i))
		if st.Version != i+1 || st.DataLength != len(fmt.Sprint(i+1)) {
			t.Fatalf("Put with version %d: %+v", i, st)
		}
		_, err := s.Put(ctx, "/v", []byte("stale"), i)
		wantErr(t, err, metastore.ErrBadVersion)
	}
	st = must.Stat(s.Put(ctx, "/v", []byte("any"), metastore.AnyVersion))
	if st.Version != 6 {
		t.Fatalf("Put(AnyVersion): version %d, want 6", st.Version)
	}
	d, st2, _ := s.Get(ctx, "/v")
	if string(d) != "any" || st2.Version != 6 || st2.Modified.Before(st2.Created) || st2.ModifiedRevision <= st2.CreatedRevision {
		t.Fatalf("after puts: %q %+v", d, st2)
	}
	wantErr(t, s.Delete(ctx, "/v", 5), metastore.ErrBadVersion)
	if err := s.Delete(ctx, "/v", 6); err != nil {
		t.Fatal(err)
	}
}

func testPaths(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	s := c.NewClient(t)
	for _, p := range []string{"", "a", "/a/", "/a//b", "/a/./b", "/a/../b", "/a\x00b", "/a\x01"} {
		_, _, err := s.Get(ctx, p)
		wantErr(t, err, metastore.ErrInvalidPath)
		_, err = s.Create(ctx, p, nil, 0)
		wantErr(t, err, metastore.ErrInvalidPath)
		_, err = s.Put(ctx, p, nil, metastore.AnyVersion)
		wantErr(t, err, metastore.ErrInvalidPath)
		wantErr(t, s.Delete(ctx, p, metastore.AnyVersion), metastore.ErrInvalidPath)
		_, err = s.Children(ctx, p)
		wantErr(t, err, metastore.ErrInvalidPath)
		_, err = s.Watch(ctx, p, metastore.WatchData)
		wantErr(t, err, metastore.ErrInvalidPath)
	}
	wantErr(t, s.Delete(ctx, "/", metastore.AnyVersion), metastore.ErrInvalidPath)
	_, err := s.Create(ctx, "/", nil, 0)
	wantErr(t, err, metastore.ErrNodeExists)
	// Names may hold what Pulsar's encoding produces.
	name := "/" + metastore.EncodeName("persistent://t/n/a topic:with+odd%chars")
	must.Path(s.Create(ctx, name, nil, 0))
	if kids := must.Names(s.Children(ctx, "/")); !slices.Contains(kids, name[1:]) {
		t.Fatalf("children of / are %q, want %q among them", kids, name[1:])
	}
}

func testCreateParents(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	s := c.NewClient(t)
	p := must.Path(s.Create(ctx, "/x/y/z", []byte("leaf"), metastore.CreateParents))
	if p != "/x/y/z" {
		t.Fatalf("Create returned %q", p)
	}
	for _, a := range []string{"/x", "/x/y"} {
		d, st := must.Get(s.Get(ctx, a))
		if len(d) != 0 || st.EphemeralOwner != 0 || st.NumChildren != 1 {
			t.Fatalf("created parent %s: %q %+v", a, d, st)
		}
	}
	// Existing parents are left alone.
	must.Stat(s.Put(ctx, "/x", []byte("keep"), metastore.AnyVersion))
	must.Path(s.Create(ctx, "/x/y/w", nil, metastore.CreateParents))
	if d, _ := must.Get(s.Get(ctx, "/x")); string(d) != "keep" {
		t.Fatalf("CreateParents rewrote an existing parent: %q", d)
	}
	_, err := s.Create(ctx, "/x/y/z", nil, metastore.CreateParents)
	wantErr(t, err, metastore.ErrNodeExists)
	// Sequential and ephemeral with parents.
	seq := must.Path(s.Create(ctx, "/q/r/n-", nil, metastore.CreateParents|metastore.Sequential|metastore.Ephemeral))
	if !strings.HasPrefix(seq, "/q/r/n-") || len(seq) != len("/q/r/n-")+10 {
		t.Fatalf("sequential create with parents: %q", seq)
	}
	// No children under an ephemeral node, with or without the flag.
	must.Path(s.Create(ctx, "/eph", nil, metastore.Ephemeral))
	_, err = s.Create(ctx, "/eph/child", nil, 0)
	wantErr(t, err, metastore.ErrNoChildrenForEphemerals)
	_, err = s.Create(ctx, "/eph/a/b", nil, metastore.CreateParents)
	wantErr(t, err, metastore.ErrNoChildrenForEphemerals)
}

func testChildrenSorted(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	s := c.NewClient(t)
	must.Path(s.Create(ctx, "/p", nil, 0))
	if kids := must.Names(s.Children(ctx, "/p")); len(kids) != 0 {
		t.Fatalf("children of a leaf: %q", kids)
	}
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("c%c-%d", 'a'+rune(i%26), i))
	}
	shuffled := slices.Clone(names)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, n := range shuffled {
		must.Path(s.Create(ctx, "/p/"+n, nil, 0))
	}
	slices.Sort(names)
	if kids := must.Names(s.Children(ctx, "/p")); !slices.Equal(kids, names) {
		t.Fatalf("Children = %q\nwant       %q", kids, names)
	}
	_, err := s.Children(ctx, "/nope")
	wantErr(t, err, metastore.ErrNotFound)
}

// testCASRace: two clients read the same version and race to write it;
// exactly one wins, every round.
func testCASRace(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	a, b := c.NewClient(t), c.NewClient(t)
	must.Path(a.Create(ctx, "/cas", []byte("start"), 0))
	for round := range 20 {
		_, st := must.Get(a.Get(ctx, "/cas"))
		_, stB := must.Get(b.Get(ctx, "/cas"))
		if st.Version != stB.Version {
			t.Fatalf("round %d: clients read versions %d and %d", round, st.Version, stB.Version)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, s := range []metastore.Store{a, b} {
			wg.Go(func() {
				<-start
				_, errs[i] = s.Put(ctx, "/cas", fmt.Appendf(nil, "round %d client %d", round, i), st.Version)
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
				winner = i
			case errors.Is(err, metastore.ErrBadVersion):
			default:
				t.Fatalf("round %d client %d: %v", round, i, err)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d winners (%v)", round, winners, errs)
		}
		d, st2 := must.Get(b.Get(ctx, "/cas"))
		if want := fmt.Sprintf("round %d client %d", round, winner); string(d) != want || st2.Version != st.Version+1 {
			t.Fatalf("round %d: value %q version %d, want %q version %d", round, d, st2.Version, want, st.Version+1)
		}
	}
}

// testCASCounter: concurrent read-modify-write loops lose no increment.
func testCASCounter(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	clients := []metastore.Store{c.NewClient(t), c.NewClient(t)}
	must.Path(clients[0].Create(ctx, "/counter", []byte("0"), 0))
	const workers, increments = 4, 15
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		s := clients[w%len(clients)]
		wg.Go(func() {
			for range increments {
				for {
					d, st, err := s.Get(ctx, "/counter")
					if err != nil {
						errc <- err
						return
					}
					var n int
					fmt.Sscan(string(d), &n)
					_, err = s.Put(ctx, "/counter", fmt.Append(nil, n+1), st.Version)
					if err == nil {
						break
					}
					if !errors.Is(err, metastore.ErrBadVersion) {
						errc <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	d, st := must.Get(clients[1].Get(ctx, "/counter"))
	if string(d) != fmt.Sprint(workers*increments) || st.Version != workers*increments {
		t.Fatalf("counter = %q at version %d, want %d", d, st.Version, workers*increments)
	}
}

// testSequentialContention: concurrent sequential creates by several
// clients get distinct names, increasing for each creator, all listed.
func testSequentialContention(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	clients := []metastore.Store{c.NewClient(t), c.NewClient(t)}
	must.Path(clients[0].Create(ctx, "/seq", nil, 0))
	const workers, each = 6, 10
	names := make([][]string, workers)
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := range workers {
		s := clients[w%len(clients)]
		flags := metastore.Sequential
		if w%2 == 1 {
			flags |= metastore.Ephemeral
		}
		wg.Go(func() {
			for range each {
				p, err := s.Create(ctx, "/seq/n-", fmt.Appendf(nil, "w%d", w), flags)
				if err != nil {
					errc <- err
					return
				}
				names[w] = append(names[w], p)
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var all []string
	for w, ns := range names {
		for i, p := range ns {
			if !strings.HasPrefix(p, "/seq/n-") || len(p) != len("/seq/n-")+10 {
				t.Fatalf("worker %d got name %q", w, p)
			}
			if _, err := metastore.ParseSequence(p); err != nil {
				t.Fatal(err)
			}
			if seen[p] {
				t.Fatalf("name %q handed out twice", p)
			}
			seen[p] = true
			if i > 0 && p <= ns[i-1] {
				t.Fatalf("worker %d: %q after %q", w, p, ns[i-1])
			}
			all = append(all, p[len("/seq/"):])
		}
	}
	slices.Sort(all)
	if kids := must.Names(clients[1].Children(ctx, "/seq")); !slices.Equal(kids, all) {
		t.Fatalf("Children(/seq) = %d names, want the %d created", len(kids), len(all))
	}
	// Counters continue after deletes: names are never reused.
	last := all[len(all)-1]
	for _, n := range all {
		if err := clients[0].Delete(ctx, "/seq/"+n, metastore.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	p := must.Path(clients[0].Create(ctx, "/seq/n-", nil, metastore.Sequential))
	if p[len("/seq/"):] <= last {
		t.Fatalf("after deleting all, sequential create gave %q, last was %q", p, last)
	}
}

// next waits for the next event of w.
func next(t *testing.T, w *metastore.Watch) metastore.Event {
	t.Helper()
	select {
	case ev, ok := <-w.C:
		if !ok {
			t.Fatalf("watch on %s ended", w.Path())
		}
		return ev
	case <-time.After(Timeout):
		t.Fatalf("no event on %s within %v", w.Path(), Timeout)
	}
	return metastore.Event{}
}

func expectEvent(t *testing.T, w *metastore.Watch, want metastore.EventType) {
	t.Helper()
	if ev := next(t, w); ev.Type != want || ev.Path != w.Path() {
		t.Fatalf("event %v on %s, want %v on %s", ev.Type, ev.Path, want, w.Path())
	}
}

func testWatchData(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	watcher, writer := c.NewClient(t), c.NewClient(t)
	for _, s := range []metastore.Store{watcher, writer} {
		// The writer's own watch must fire too.
		w, err := s.Watch(ctx, "/w", metastore.WatchData)
		if err != nil {
			t.Fatal(err)
		}
		must.Path(writer.Create(ctx, "/w", []byte("0"), 0))
		expectEvent(t, w, metastore.EventCreated)
		for i := range 5 {
			must.Stat(writer.Put(ctx, "/w", fmt.Appendf(nil, "%d", i+1), int64(i)))
			expectEvent(t, w, metastore.EventDataChanged)
		}
		// A child does not touch the data watch; its data change does.
		must.Path(writer.Create(ctx, "/w/child", nil, 0))
		must.Stat(writer.Put(ctx, "/w", []byte("after child"), metastore.AnyVersion))
		expectEvent(t, w, metastore.EventDataChanged)
		if err := writer.Delete(ctx, "/w/child", metastore.AnyVersion); err != nil {
			t.Fatal(err)
		}
		if err := writer.Delete(ctx, "/w", metastore.AnyVersion); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, w, metastore.EventDeleted)
		must.Path(writer.Create(ctx, "/w", nil, 0))
		expectEvent(t, w, metastore.EventCreated)
		if err := writer.Delete(ctx, "/w", metastore.AnyVersion); err != nil {
			t.Fatal(err)
		}
		expectEvent(t, w, metastore.EventDeleted)
		w.Close()
	}
}

// testWatchCoalesces: many quick changes; a reader that re-reads on every
// event ends up with the last state.
func testWatchCoalesces(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	s := c.NewClient(t)
	must.Path(s.Create(ctx, "/burst", []byte("0"), 0))
	w := must.Watch(s.Watch(ctx, "/burst", metastore.WatchData))
	const n = 50
	for i := range n {
		must.Stat(s.Put(ctx, "/burst", fmt.Appendf(nil, "%d", i+1), metastore.AnyVersion))
	}
	events := 0
	for {
		next(t, w)
		events++
		d, st := must.Get(s.Get(ctx, "/burst"))
		if st.Version == n {
			if string(d) != fmt.Sprint(n) {
				t.Fatalf("last value %q", d)
			}
			break
		}
	}
	if events > n {
		t.Fatalf("%d events for %d changes", events, n)
	}
}

func testWatchChildren(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	watcher, writer := c.NewClient(t), c.NewClient(t)
	w := must.Watch(watcher.Watch(ctx, "/dir", metastore.WatchChildren))
	must.Path(writer.Create(ctx, "/dir", nil, 0))
	expectEvent(t, w, metastore.EventCreated)
	for i := range 3 {
		must.Path(writer.Create(ctx, fmt.Sprintf("/dir/c%d", i), nil, 0))
		expectEvent(t, w, metastore.EventChildrenChanged)
		if kids := must.Names(watcher.Children(ctx, "/dir")); len(kids) != i+1 {
			t.Fatalf("after event %d: children %q", i, kids)
		}
	}
	// Data changes of the node or a child are not children changes: the
	// next event is the delete that follows them.
	must.Stat(writer.Put(ctx, "/dir", []byte("data"), metastore.AnyVersion))
	must.Stat(writer.Put(ctx, "/dir/c0", []byte("data"), metastore.AnyVersion))
	if err := writer.Delete(ctx, "/dir/c0", metastore.AnyVersion); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, w, metastore.EventChildrenChanged)
	// Ephemeral children vanishing with their session are children changes.
	eph := c.NewClient(t)
	must.Path(eph.Create(ctx, "/dir/e", nil, metastore.Ephemeral))
	expectEvent(t, w, metastore.EventChildrenChanged)
	if err := eph.Close(); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, w, metastore.EventChildrenChanged)
	if kids := must.Names(watcher.Children(ctx, "/dir")); !slices.Equal(kids, []string{"c1", "c2"}) {
		t.Fatalf("children %q", kids)
	}
	for _, k := range []string{"c1", "c2"} {
		if err := writer.Delete(ctx, "/dir/"+k, metastore.AnyVersion); err != nil {
			t.Fatal(err)
		}
	}
	if err := writer.Delete(ctx, "/dir", metastore.AnyVersion); err != nil {
		t.Fatal(err)
	}
	// Coalescing may merge the last child deletes with the node's delete;
	// the newest event is the delete.
	for {
		ev := next(t, w)
		if ev.Type == metastore.EventDeleted {
			break
		}
		if ev.Type != metastore.EventChildrenChanged {
			t.Fatalf("event %v while emptying and deleting /dir", ev.Type)
		}
	}
}

func testWatchEnds(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	s := c.NewClient(t)
	closed := func(w *metastore.Watch) {
		t.Helper()
		select {
		case _, ok := <-w.C:
			for ok {
				_, ok = <-w.C
			}
		case <-time.After(Timeout):
			t.Fatalf("watch on %s did not end", w.Path())
		}
	}
	w := must.Watch(s.Watch(ctx, "/end", metastore.WatchData))
	w.Close()
	closed(w)
	w.Close() // idempotent

	wctx, cancel := context.WithCancel(ctx)
	w = must.Watch(s.Watch(wctx, "/end", metastore.WatchChildren))
	cancel()
	closed(w)

	// A watch that ended gets nothing more, and a live one still works.
	live := must.Watch(s.Watch(ctx, "/end", metastore.WatchData))
	must.Path(s.Create(ctx, "/end", nil, 0))
	expectEvent(t, live, metastore.EventCreated)

	other := c.NewClient(t)
	w = must.Watch(other.Watch(ctx, "/end", metastore.WatchData))
	sw := other.WatchSession()
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	closed(w)
	select {
	case _, ok := <-sw.C:
		for ok {
			_, ok = <-sw.C
		}
	case <-time.After(Timeout):
		t.Fatal("session watch did not end when the store closed")
	}
}

func testEphemeralOnClose(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	owner, observer := c.NewClient(t), c.NewClient(t)
	must.Path(owner.Create(ctx, "/reg", nil, 0))
	must.Path(owner.Create(ctx, "/reg/me", []byte("owner"), metastore.Ephemeral))
	_, st := must.Get(observer.Get(ctx, "/reg/me"))
	if st.EphemeralOwner != owner.SessionID() || st.EphemeralOwner == 0 {
		t.Fatalf("ephemeral owner %#x, session %#x", st.EphemeralOwner, owner.SessionID())
	}
	seq := must.Path(owner.Create(ctx, "/reg/s-", nil, metastore.Ephemeral|metastore.Sequential))
	persistent := must.Path(owner.Create(ctx, "/reg/keep", nil, 0))
	w := must.Watch(observer.Watch(ctx, "/reg/me", metastore.WatchData))
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, w, metastore.EventDeleted)
	for _, p := range []string{"/reg/me", seq} {
		if _, ok := must.Exists(observer.Exists(ctx, p)); ok {
			t.Fatalf("%s outlived its session", p)
		}
	}
	if _, ok := must.Exists(observer.Exists(ctx, persistent)); !ok {
		t.Fatal("a persistent node vanished with its creator's session")
	}
}

func testEphemeralOnExpiry(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	owner, observer := c.NewClient(t), c.NewClient(t)
	sw := owner.WatchSession()
	defer sw.Close()
	old := owner.SessionID()
	must.Path(owner.Create(ctx, "/lease", []byte("mine"), metastore.Ephemeral))
	must.Path(owner.Create(ctx, "/data", []byte("0"), 0))
	gone := must.Watch(observer.Watch(ctx, "/lease", metastore.WatchData))
	ownerWatch := must.Watch(owner.Watch(ctx, "/data", metastore.WatchData))

	c.ExpireSession(t, owner)

	expectEvent(t, gone, metastore.EventDeleted)
	if _, ok := must.Exists(observer.Exists(ctx, "/lease")); ok {
		t.Fatal("ephemeral node outlived its expired session")
	}
	// The owner is told: maybe suspended first, then expired, then a new
	// session.
	var got []metastore.SessionEvent
	deadline := time.After(Timeout)
	for len(got) == 0 || got[len(got)-1].Type != metastore.SessionConnected {
		select {
		case ev := <-sw.C:
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("session events %v: no SessionConnected after expiry", got)
		}
	}
	expired := slices.IndexFunc(got, func(ev metastore.SessionEvent) bool { return ev.Type == metastore.SessionExpired })
	if expired < 0 || got[expired].SessionID != old {
		t.Fatalf("session events %v: want SessionExpired of %#x", got, old)
	}
	for _, ev := range got[:expired] {
		if ev.Type != metastore.SessionSuspended {
			t.Fatalf("session events %v: %v before the expiry", got, ev.Type)
		}
	}
	fresh := got[len(got)-1].SessionID
	if fresh == old || fresh == 0 || owner.SessionID() != fresh {
		t.Fatalf("new session %#x (SessionID %#x), old %#x", fresh, owner.SessionID(), old)
	}
	// The owner re-registers in the new session.
	must.Path(owner.Create(ctx, "/lease", []byte("again"), metastore.Ephemeral))
	expectEvent(t, gone, metastore.EventCreated)
	_, st := must.Get(observer.Get(ctx, "/lease"))
	if st.EphemeralOwner != fresh {
		t.Fatalf("re-registered node owned by %#x, want %#x", st.EphemeralOwner, fresh)
	}
	// Watches outlive the session.
	must.Stat(observer.Put(ctx, "/data", []byte("1"), metastore.AnyVersion))
	expectEvent(t, ownerWatch, metastore.EventDataChanged)
}

func testClosed(t *testing.T, c Cluster) {
	ctx := ctxT(t)
	must := okT{t}
	s := c.NewClient(t)
	must.Path(s.Create(ctx, "/c", nil, 0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, _, err := s.Get(ctx, "/c")
	wantErr(t, err, metastore.ErrClosed)
	_, _, err = s.Exists(ctx, "/c")
	wantErr(t, err, metastore.ErrClosed)
	_, err = s.Children(ctx, "/")
	wantErr(t, err, metastore.ErrClosed)
	_, err = s.Create(ctx, "/d", nil, 0)
	wantErr(t, err, metastore.ErrClosed)
	_, err = s.Put(ctx, "/c", nil, metastore.AnyVersion)
	wantErr(t, err, metastore.ErrClosed)
	wantErr(t, s.Delete(ctx, "/c", metastore.AnyVersion), metastore.ErrClosed)
	_, err = s.Watch(ctx, "/c", metastore.WatchData)
	wantErr(t, err, metastore.ErrClosed)
	// The data stays for others.
	if _, ok := must.Exists(c.NewClient(t).Exists(ctx, "/c")); !ok {
		t.Fatal("a persistent node vanished when its creator closed")
	}
}
