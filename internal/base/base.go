// Package base holds the value types and error classes shared by every layer
// of Magnetar. It does no I/O.
//
// Error classes are sentinel values; packages wrap them with their own prefix
// and context (file, offset, ledger) using %w, and callers test them with
// errors.Is.
package base

import (
	"errors"
	"fmt"
)

// LedgerID names a ledger. Ledger ids are allocated by the metadata store and
// never reused.
type LedgerID int64

// EntryID is the position of an entry inside its ledger, starting at 0.
// InvalidEntry (-1) means "no entry" (for example the LAC of an empty ledger).
type EntryID int64

// InvalidEntry is the entry id that precedes the first entry of a ledger.
const InvalidEntry EntryID = -1

// Position is a point in a managed ledger: a ledger and an entry inside it.
type Position struct {
	Ledger LedgerID
	Entry  EntryID
}

// Less reports whether p comes strictly before q.
func (p Position) Less(q Position) bool {
	if p.Ledger != q.Ledger {
		return p.Ledger < q.Ledger
	}
	return p.Entry < q.Entry
}

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	switch {
	case p.Less(q):
		return -1
	case q.Less(p):
		return 1
	}
	return 0
}

func (p Position) String() string { return fmt.Sprintf("%d:%d", p.Ledger, p.Entry) }

// Error classes. Every package wraps these with its own prefix, so that
// errors.Is(err, base.ErrCorruption) holds whatever layer reported it.
var (
	// ErrCorruption: bytes on disk or on the wire failed a checksum or a
	// structural check somewhere other than a permitted torn tail.
	ErrCorruption = errors.New("corruption")
	// ErrFenced: the ledger was fenced by a recovering reader; normal adds fail.
	ErrFenced = errors.New("ledger fenced")
	// ErrClosed: the object was closed; no further operations are accepted.
	ErrClosed = errors.New("closed")
	// ErrNoLedger: the ledger does not exist (or was deleted).
	ErrNoLedger = errors.New("no such ledger")
	// ErrNoEntry: the entry does not exist.
	ErrNoEntry = errors.New("no such entry")
	// ErrReadOnly: the store refuses writes (for example every disk is full).
	ErrReadOnly = errors.New("read-only")
	// ErrNoSpace: a device reported that it is out of space.
	ErrNoSpace = errors.New("no space left on device")
	// ErrTooLarge: a request, frame or entry exceeds a configured maximum.
	ErrTooLarge = errors.New("too large")
	// ErrBusy: a bounded queue is full and the caller asked not to wait.
	ErrBusy = errors.New("busy")
	// ErrUnauthorized: the master key (or credentials) did not match.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotImplemented: the capability is not built yet.
	ErrNotImplemented = errors.New("not implemented")
)
