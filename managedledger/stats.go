package managedledger

import (
	"fmt"
	"strings"
	"time"

	"github.com/magnetar/magnetar/internal/base"
)

// maxRangesInStats bounds the ranges InternalStats prints per cursor (the
// state itself is never truncated).
const maxRangesInStats = 1000

// InternalStats describes the managed ledger as Pulsar's topic internal
// stats do.
func (ml *managedLedger) InternalStats() InternalStats {
	ml.mu.Lock()
	st := InternalStats{
		EntriesAddedCounter:        ml.mu.entriesAdded,
		LastLedgerCreatedTimestamp: ml.mu.lastLedgerCreated,
		LastConfirmedEntry:         ml.mu.lastConfirmed,
		State:                      ml.mu.state.String(),
		Ledgers:                    make([]LedgerInfo, 0, len(ml.mu.ledgers)),
		Cursors:                    make(map[string]CursorStats, len(ml.mu.cursors)),
	}
	for _, l := range ml.mu.ledgers {
		st.NumberOfEntries += l.entries
		st.TotalSize += l.size
		li := LedgerInfo{LedgerID: l.id, Entries: l.entries, Size: l.size}
		if l.timestamp > 0 {
			li.Timestamp = time.UnixMilli(l.timestamp)
		}
		st.Ledgers = append(st.Ledgers, li)
	}
	if w := ml.mu.current; w != nil {
		if i := ml.ledgerIndexLocked(w.id); i >= 0 {
			st.CurrentLedgerEntries = ml.mu.ledgers[i].entries
			st.CurrentLedgerSize = ml.mu.ledgers[i].size
		}
	}
	cursors := append([]*cursor(nil), ml.mu.cursors...)
	ml.mu.Unlock()
	for _, c := range cursors {
		st.Cursors[c.name] = c.stats()
	}
	return st
}

func (c *cursor) stats() CursorStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := CursorStats{
		MarkDeletePosition:      c.mu.md,
		ReadPosition:            c.mu.readPos,
		MessagesConsumedCounter: c.mu.consumed,
		CursorLedger:            -1,
		State:                   "Open",
	}
	if c.mu.closed {
		cs.State = "Closed"
	}
	if c.mu.waiting || c.mu.running && c.mu.hasReq {
		cs.PendingReadOps = 1
	}
	if c.persistMu.TryLock() {
		if c.p.ledger != nil {
			cs.CursorLedger = c.p.ledger.ID()
		} else {
			cs.CursorLedger = c.p.nodeLedger
		}
		c.persistMu.Unlock()
	}
	cs.IndividuallyDeletedMessages = formatRanges(&c.mu.acks)
	return cs
}

// formatRanges prints acknowledged ranges as Pulsar does: "[(L:a..L:b], ...]"
// with open-closed ranges, at most maxRangesInStats of them.
func formatRanges(s *ackSet) string {
	var b strings.Builder
	b.WriteByte('[')
	n := 0
	s.forEachRange(func(id base.LedgerID, first, last base.EntryID) bool {
		if n == maxRangesInStats {
			b.WriteString(",...")
			return false
		}
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "(%d:%d..%d:%d]", id, first-1, id, last)
		n++
		return true
	})
	b.WriteByte(']')
	return b.String()
}
