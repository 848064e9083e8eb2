//go:build race

package bufs

const raceEnabled = true
