package zktest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

var shared Shared

func TestMain(m *testing.M) {
	code := m.Run()
	shared.Close()
	os.Exit(code)
}

func TestServerSessionsAndRestart(t *testing.T) {
	srv := shared.Get(t)
	var part Partition
	// The session must outlive a JVM restart on a loaded machine (a 2 s
	// timeout expired it under CI load), yet expire quickly once cut off.
	conn, events, err := zk.Connect([]string{srv.Addr}, 8*time.Second, zk.WithDialer(part.Dial), zk.WithLogger(quiet{}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitState(t, events, zk.StateHasSession)
	id := conn.SessionID()
	if alive, err := srv.SessionAlive(id); err != nil || !alive {
		t.Fatalf("SessionAlive(%#x) = %v, %v", id, alive, err)
	}
	node := fmt.Sprintf("/x-%d", id)
	if _, err := conn.Create(node, []byte("v"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}

	// Restart: same port, same data, same session.
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitState(t, events, zk.StateHasSession)
	if conn.SessionID() != id {
		t.Fatalf("session %#x after restart, was %#x", conn.SessionID(), id)
	}
	if d, _, err := conn.Get(node); err != nil || string(d) != "v" {
		t.Fatalf("after restart: %q %v", d, err)
	}

	// A partition longer than the timeout expires the session.
	part.Cut()
	if err := srv.WaitSessionGone(id, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	part.Heal()
	waitState(t, events, zk.StateExpired)
}

func waitState(t *testing.T, events <-chan zk.Event, want zk.State) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.State == want {
				return
			}
		case <-deadline:
			t.Fatalf("no %v within 60s", want)
		}
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}
