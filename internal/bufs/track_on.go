//go:build invariants

package bufs

import "sync"

// Under the invariants tag every pooled buffer handed out is recorded, so a
// release of a buffer that is not out (a double release through a stale
// pointer, after the pool reused it) is caught.
var tracked sync.Map // *Buf -> struct{}

func trackGet(b *Buf) { tracked.Store(b, struct{}{}) }

func trackRelease(b *Buf) {
	if _, ok := tracked.LoadAndDelete(b); !ok {
		panic("bufs: release of a buffer that is not outstanding")
	}
}
