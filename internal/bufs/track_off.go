//go:build !invariants

package bufs

func trackGet(*Buf)     {}
func trackRelease(*Buf) {}

// recycle returns the header to put back in the pool: b itself.
func recycle(b *Buf) *Buf { return b }

const poisonViews = false
