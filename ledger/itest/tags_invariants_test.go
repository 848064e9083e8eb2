//go:build invariants

package itest

// buildTags are the tags the bookie binary is built with: the tests' own, so
// that `go test -tags invariants` also checks the bookies' buffers.
const buildTags = "invariants"
