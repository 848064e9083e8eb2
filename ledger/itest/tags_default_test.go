//go:build !invariants

package itest

// buildTags are the tags the bookie binary is built with (see
// tags_invariants_test.go).
const buildTags = ""
