//go:build !invariants

package bufs

const invariantsEnabled = false
