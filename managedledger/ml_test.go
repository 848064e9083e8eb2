package managedledger

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

func TestAddReadBasic(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "public/default/persistent/basic", Config{})
	c := mustCursor(t, ml, "sub", Earliest)
	ps := e.addN(ml, "m", 10)
	if got := ml.LastConfirmed(); got != ps[9] {
		t.Fatalf("LastConfirmed %v, want %v", got, ps[9])
	}
	got, gotPos := readAll(t, c)
	want := make([]string, 10)
	for i := range want {
		want[i] = fmt.Sprintf("m-%d", i)
	}
	if !slices.Equal(got, want) || !slices.Equal(gotPos, ps) {
		t.Fatalf("read %v at %v, want %v at %v", got, gotPos, want, ps)
	}
	if n := c.Backlog(); n != 10 {
		t.Fatalf("backlog %d, want 10", n)
	}
	if err := c.MarkDelete(ps[4]); err != nil {
		t.Fatal(err)
	}
	if n := c.Backlog(); n != 5 {
		t.Fatalf("backlog %d, want 5", n)
	}
	if err := c.Delete(ps[6], ps[8]); err != nil {
		t.Fatal(err)
	}
	if n := c.Backlog(); n != 3 {
		t.Fatalf("backlog %d, want 3", n)
	}
	if err := c.Delete(ps[5]); err != nil {
		t.Fatal(err)
	}
	if md := c.MarkDeletePosition(); md != ps[6] {
		t.Fatalf("mark-delete %v, want %v", md, ps[6])
	}
	c.Rewind()
	got, _ = readAll(t, c)
	if !slices.Equal(got, []string{"m-7", "m-9"}) {
		t.Fatalf("after rewind read %v", got)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

func TestReadEntriesOrWaitWokenByAdd(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/wait", Config{})
	c := mustCursor(t, ml, "sub", Latest)
	w := newReadWaiter()
	c.ReadEntriesOrWait(10, 0, w)
	w.none(t)
	p := e.add(ml, "hello")
	r := w.wait(t)
	if r.err != nil || !slices.Equal(r.payloads, []string{"hello"}) || r.pos[0] != p {
		t.Fatalf("woken read %+v, want hello at %v", r, p)
	}
	// A pending read can be cancelled; its callback never fires.
	c.ReadEntriesOrWait(10, 0, w)
	if !c.CancelPendingRead() {
		t.Fatal("CancelPendingRead found nothing to cancel")
	}
	e.add(ml, "later")
	w.none(t)
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}

// rearmReader, inside its callback, asks for the next read and then cancels
// it, as a dispatcher does when its consumers go away while a read
// completes: the next read is registered while the cursor's driver is still
// running the callback, and must be cancellable there.
type rearmReader struct {
	c         Cursor
	inner     *readWaiter
	cancelled chan bool
	next      *readWaiter
}

func (r *rearmReader) ReadComplete(entries []Entry, err error) {
	r.inner.ReadComplete(entries, err)
	r.c.ReadEntriesOrWait(10, 0, r.next)
	r.cancelled <- r.c.CancelPendingRead()
}

func TestCancelReadRegisteredDuringCallback(t *testing.T) {
	e := newEnv(t)
	f := e.factory()
	ml := open(t, f, "t/ns/persistent/cancel-in-callback", Config{})
	c := mustCursor(t, ml, "sub", Latest)
	r := &rearmReader{c: c, inner: newReadWaiter(), cancelled: make(chan bool, 1), next: newReadWaiter()}
	c.ReadEntriesOrWait(10, 0, r)
	e.add(ml, "first")
	if got := r.inner.wait(t); !slices.Equal(got.payloads, []string{"first"}) {
		t.Fatalf("first read %+v", got)
	}
	if !<-r.cancelled {
		t.Fatal("a read registered during the previous read's callback could not be cancelled")
	}
	// Cancelled means never served: a later add wakes nothing, and a new
	// read is accepted (no concurrent-read error) and gets the entry.
	e.add(ml, "second")
	r.next.none(t)
	w := newReadWaiter()
	c.ReadEntriesOrWait(10, 0, w)
	if got := w.wait(t); got.err != nil || !slices.Equal(got.payloads, []string{"second"}) {
		t.Fatalf("read after the cancel %+v", got)
	}
	if err := ml.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.checkLeaks()
}
