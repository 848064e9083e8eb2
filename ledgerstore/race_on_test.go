//go:build race

package ledgerstore

const raceEnabled = true
