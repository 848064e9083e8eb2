// Package testutil holds helpers shared by the project's tests.
package testutil

import (
	"testing"
	"time"
)

// WaitFor checks cond every millisecond until it holds, and fails t naming
// what once timeout has passed. It is for states the code under test gives
// no signal for (a counter reaching a value, a goroutine having exited);
// where there is a channel or a callback to wait on, wait on that.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
			return
		}
		time.Sleep(time.Millisecond)
	}
}
