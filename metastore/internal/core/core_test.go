package core

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestValidatePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		seq  bool
		ok   bool
	}{
		{"/", false, true},
		{"/a", false, true},
		{"/a/b-c_d.e:f", false, true},
		{"/a/..b", false, true},
		{"/a/", false, false},
		{"/a/", true, true},
		{"/", true, true},
		{"a", false, false},
		{"", false, false},
		{"//a", false, false},
		{"/a//b", false, false},
		{"/a//", true, false},
		{"/a/.", false, false},
		{"/a/../b", false, false},
		{"/a\x00", false, false},
		{"/a\x1f", false, false},
		{"/a\u0085", false, false},
		{"/a\ufff5", false, false},
		{"/ü", false, true},
		{"/\xff", false, false},
	} {
		err := ValidatePath(tc.path, tc.seq)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePath(%q, %v) = %v", tc.path, tc.seq, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ValidatePath(%q): %v is not ErrInvalidPath", tc.path, err)
		}
	}
}

func TestPathHelpers(t *testing.T) {
	if Parent("/a") != "/" || Parent("/a/b") != "/a" || Base("/a/b") != "b" || Join("/", "a") != "/a" || Join("/a", "b") != "/a/b" {
		t.Fatal("Parent/Base/Join")
	}
	if got := Ancestors("/a/b/c"); len(got) != 2 || got[0] != "/a" || got[1] != "/a/b" {
		t.Fatalf("Ancestors = %q", got)
	}
	if CreateParent("/a/b-", true) != "/a" || CreateParent("/a/b/", true) != "/a/b" || CreateParent("/", true) != "/" {
		t.Fatal("CreateParent")
	}
	if SequentialName("/a/n-", 7) != "/a/n-0000000007" {
		t.Fatal("SequentialName")
	}
}

func TestWatchCoalescesAndNeverBlocks(t *testing.T) {
	closed := 0
	w := NewWatch("/p", WatchData, func() { closed++ })
	// Nobody reads: delivery must not block, and the newest type wins.
	for range 1000 {
		w.Deliver(EventDataChanged)
	}
	w.Deliver(EventDeleted)
	if ev := <-w.C; ev.Type != EventDeleted || ev.Path != "/p" {
		t.Fatalf("got %v", ev)
	}
	select {
	case ev := <-w.C:
		t.Fatalf("a second event %v for merged changes", ev)
	default:
	}
	w.Deliver(EventCreated)
	w.Close()
	w.Close()
	w.Deliver(EventDataChanged) // after Close: ignored, no panic
	if closed != 1 {
		t.Fatalf("onClose ran %d times", closed)
	}
	// C holds the undelivered event, then is closed.
	if ev, ok := <-w.C; !ok || ev.Type != EventCreated {
		t.Fatalf("pending event %v %v", ev, ok)
	}
	if _, ok := <-w.C; ok {
		t.Fatal("C not closed")
	}
	select {
	case <-w.Done():
	default:
		t.Fatal("Done not closed")
	}
}

func TestWatchEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	w := NewWatch("/p", WatchChildren, func() { close(ended) })
	w.CloseWhenDone(ctx)
	cancel()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch outlived its context")
	}
	// A context already done ends a watch at once.
	w = NewWatch("/p", WatchData, nil)
	w.CloseWhenDone(ctx)
	<-w.Done()
}

func TestSessionWatchKeepsExpiries(t *testing.T) {
	var hub SessionHub
	w := hub.Watch()
	// A reader that fell far behind: 100 suspend/reconnect pairs around
	// two expiries.
	var want []SessionEvent
	id := int64(1)
	for i := range 100 {
		hub.Publish(SessionEvent{SessionSuspended, id})
		hub.Publish(SessionEvent{SessionReconnected, id})
		if i == 30 || i == 70 {
			hub.Publish(SessionEvent{SessionExpired, id})
			want = append(want, SessionEvent{SessionExpired, id})
			id++
			hub.Publish(SessionEvent{SessionConnected, id})
			want = append(want, SessionEvent{SessionConnected, id})
		}
	}
	last := SessionEvent{SessionSuspended, 99}
	hub.Publish(last)
	var got []SessionEvent
	for len(got) == 0 || got[len(got)-1] != last {
		select {
		case ev := <-w.C:
			got = append(got, ev)
		case <-time.After(10 * time.Second):
			t.Fatalf("events stopped after %v", got)
		}
	}
	// Every expiry and new session arrives, in order.
	i := 0
	for _, ev := range got {
		if ev.Type == SessionExpired || ev.Type == SessionConnected {
			if i >= len(want) || ev != want[i] {
				t.Fatalf("got %v, want expiries %v", got, want)
			}
			i++
		}
	}
	if i != len(want) {
		t.Fatalf("got %v, want expiries %v", got, want)
	}
	hub.Close()
	if _, ok := <-w.C; ok {
		t.Fatal("C open after the hub closed")
	}
	// Subscribing to a closed hub gives a closed channel.
	if _, ok := <-hub.Watch().C; ok {
		t.Fatal("watch of a closed hub delivered")
	}
}

func TestOptions(t *testing.T) {
	var o Options
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	o.SessionTimeout = time.Millisecond
	if err := o.Validate(); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("Validate: %v", err)
	}
}

func TestRegistry(t *testing.T) {
	var r Registry
	closes := 0
	mk := func() (any, func() error, error) { return new(int), func() error { closes++; return nil }, nil }
	a, relA, _ := r.Acquire("k", false, mk)
	b, relB, _ := r.Acquire("k", false, mk)
	if a != b {
		t.Fatal("two values for one key")
	}
	relA()
	relA()
	if closes != 0 {
		t.Fatal("closed with a reference left")
	}
	relB()
	if closes != 1 {
		t.Fatalf("closes = %d after the last release", closes)
	}
	_, rel, _ := r.Acquire("kept", true, mk)
	rel()
	if closes != 1 {
		t.Fatal("a kept value closed with its last reference")
	}
	r.Close()
	if closes != 2 {
		t.Fatalf("closes = %d after Registry.Close", closes)
	}
}
