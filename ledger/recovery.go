package ledger

import (
	"fmt"
	"math"

	"github.com/magnetar/magnetar/internal/base"
)

// recoveryMachine makes the decisions of ledger recovery (BookKeeper's
// LedgerRecoveryOp with ReadLastConfirmedOp and recovery reads) without
// doing any I/O: its owner feeds it the bookies' answers and carries out
// the actions it returns, so tests can script every interleaving.
//
//  1. Fence: a fencing read of the last entry goes to every member of
//     the last ensemble. Once one answer is valid (an entry, or
//     NoSuchEntry/NoSuchLedger) and the answers cover every write quorum
//     (see coverage), the old writer can no longer reach its ack quorum.
//     The LAC is the largest LAC piggybacked in the entries returned, and
//     at least the first entry of the last segment minus one. If every
//     member answered without coverage, recovery fails.
//  2. Read forward from LAC+1 (up to window entries ahead), each entry
//     from its write set one replica after another. An entry exists when
//     any replica returns it; it is missing once W-A+1 replicas said
//     NoSuchEntry (then no A of them can ever have acknowledged it). If
//     neither can be decided, recovery fails.
//  3. Re-add the entries found, in order, up to the first missing one
//     (recovery adds, which fencing does not stop).
//  4. Close at the entry before the first missing one, with the ledger
//     length that entry's header carries (or, when nothing was found past
//     the LAC, the length of entry LAC: taken from a fencing answer that
//     returned it, else read).
type recoveryMachine[T any] struct {
	e, w, a          int
	lastSegmentFirst base.EntryID
	window           int

	phase      recoveryPhase
	cov        coverage
	heardValid bool
	fenced     []fenceReply

	lac         base.EntryID
	lengthAtLAC int64
	haveLength  bool

	reads        map[base.EntryID]*entryRead[T]
	anchor       *entryRead[T] // the read of entry LAC for its length
	nextRead     base.EntryID  // next entry to ask for
	nextAdd      base.EntryID  // next entry to re-add
	firstMissing base.EntryID  // math.MaxInt64 until one is known
	addsPending  int
	lastLength   int64 // ledger length after the last re-added entry

	out []recoveryAction[T]
}

type recoveryPhase uint8

const (
	phaseFencing recoveryPhase = iota
	phaseReading
	phaseDone
)

// fenceReply is a bookie's answer to the fencing read of the last entry.
type fenceReply struct {
	Kind replyKind
	// For replyEntry: the entry returned (the bookie's last), the LAC it
	// carries and the ledger length after it.
	Entry  base.EntryID
	LAC    base.EntryID
	Length int64
	// Denied: the bookie refused the master key; recovery fails.
	Denied bool
}

// readReply is a replica's answer to a recovery read.
type readReply[T any] struct {
	Kind   replyKind
	Data   T     // replyEntry: the payload, handed back in an action
	Length int64 // replyEntry: the ledger length after the entry
	Denied bool
}

type entryRead[T any] struct {
	replica int // write-set position asked last
	missing int
	found   bool
	data    T
	length  int64
}

type recoveryActionKind uint8

const (
	actFence   recoveryActionKind = iota + 1 // fencing read to ensemble index Index
	actRead                                  // read Entry from write-set position Replica
	actAdd                                   // re-add Entry: payload Data, ledger length Length after it
	actDiscard                               // release Data: read but not needed
	actClose                                 // close the ledger at LastEntry with Length
	actFail                                  // recovery failed with Err
)

func (k recoveryActionKind) String() string {
	switch k {
	case actFence:
		return "fence"
	case actRead:
		return "read"
	case actAdd:
		return "add"
	case actDiscard:
		return "discard"
	case actClose:
		return "close"
	case actFail:
		return "fail"
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

type recoveryAction[T any] struct {
	Kind    recoveryActionKind
	Index   int
	Entry   base.EntryID
	Replica int
	Data    T
	Length  int64
	Err     error
}

func newRecoveryMachine[T any](e, w, a int, lastSegmentFirst base.EntryID, window int) *recoveryMachine[T] {
	return &recoveryMachine[T]{
		e: e, w: w, a: a, lastSegmentFirst: lastSegmentFirst, window: max(window, 1),
		cov:          newCoverage(e, w, a),
		fenced:       make([]fenceReply, e),
		reads:        map[base.EntryID]*entryRead[T]{},
		firstMissing: math.MaxInt64,
	}
}

func (m *recoveryMachine[T]) emit(a recoveryAction[T]) { m.out = append(m.out, a) }

func (m *recoveryMachine[T]) take() []recoveryAction[T] {
	out := m.out
	m.out = nil
	return out
}

// done reports whether the machine closed or failed.
func (m *recoveryMachine[T]) done() bool { return m.phase == phaseDone }

// start returns the fencing reads.
func (m *recoveryMachine[T]) start() []recoveryAction[T] {
	for i := 0; i < m.e; i++ {
		m.emit(recoveryAction[T]{Kind: actFence, Index: i})
	}
	return m.take()
}

func (m *recoveryMachine[T]) fail(format string, args ...any) {
	if m.phase == phaseDone {
		return
	}
	m.phase = phaseDone
	for e, r := range m.reads {
		if r.found {
			m.emit(recoveryAction[T]{Kind: actDiscard, Entry: e, Data: r.data})
		}
		delete(m.reads, e)
	}
	m.emit(recoveryAction[T]{Kind: actFail, Err: fmt.Errorf("%w: %s", ErrRecovery, fmt.Sprintf(format, args...))})
}

// onFence takes ensemble member idx's answer to the fencing read.
func (m *recoveryMachine[T]) onFence(idx int, r fenceReply) []recoveryAction[T] {
	if m.phase != phaseFencing || m.cov.replies[idx] != replyNone {
		return m.take()
	}
	if r.Denied {
		m.cov.set(idx, replyError)
		m.phase = phaseDone
		m.emit(recoveryAction[T]{Kind: actFail, Err: fmt.Errorf("%w: bookie %d refused the master key", ErrUnauthorized, idx)})
		return m.take()
	}
	m.cov.set(idx, r.Kind)
	m.fenced[idx] = r
	if r.Kind == replyEntry || r.Kind == replyMissing {
		m.heardValid = true
	}
	switch {
	case m.heardValid && m.cov.covered():
		m.startReading()
	case m.cov.answered() == m.e:
		m.fail("fencing did not reach enough bookies of every write quorum (E=%d W=%d A=%d, answers %v)",
			m.e, m.w, m.a, m.cov.replies)
	}
	return m.take()
}

func (m *recoveryMachine[T]) startReading() {
	m.phase = phaseReading
	m.lac = max(m.lastSegmentFirst-1, base.InvalidEntry)
	for _, r := range m.fenced {
		if r.Kind == replyEntry && r.LAC > m.lac {
			m.lac = r.LAC
		}
	}
	if m.lac == base.InvalidEntry {
		m.lengthAtLAC, m.haveLength = 0, true
	}
	for _, r := range m.fenced {
		if r.Kind == replyEntry && r.Entry == m.lac {
			m.lengthAtLAC, m.haveLength = r.Length, true
		}
	}
	m.lastLength = m.lengthAtLAC
	m.nextRead, m.nextAdd = m.lac+1, m.lac+1
	m.fill()
}

// LAC is the last add confirmed found by fencing (valid once reading).
func (m *recoveryMachine[T]) LAC() base.EntryID { return m.lac }

func (m *recoveryMachine[T]) fill() {
	for m.nextRead < m.nextAdd+base.EntryID(m.window) && m.nextRead < m.firstMissing {
		m.reads[m.nextRead] = &entryRead[T]{}
		m.emit(recoveryAction[T]{Kind: actRead, Entry: m.nextRead, Replica: 0})
		m.nextRead++
	}
}

// onRead takes the answer of write-set position replica for entry e.
func (m *recoveryMachine[T]) onRead(e base.EntryID, replica int, r readReply[T]) []recoveryAction[T] {
	er := m.reads[e]
	isAnchor := false
	if er == nil && m.anchor != nil && e == m.lac {
		er, isAnchor = m.anchor, true
	}
	if m.phase != phaseReading || er == nil || er.found || replica != er.replica {
		if r.Kind == replyEntry {
			m.emit(recoveryAction[T]{Kind: actDiscard, Entry: e, Data: r.Data})
		}
		return m.take()
	}
	switch {
	case r.Denied:
		if r.Kind == replyEntry {
			m.emit(recoveryAction[T]{Kind: actDiscard, Entry: e, Data: r.Data})
		}
		m.phase = phaseDone
		m.emit(recoveryAction[T]{Kind: actFail, Err: fmt.Errorf("%w: a bookie refused the master key reading entry %d", ErrUnauthorized, e)})
		return m.take()
	case r.Kind == replyEntry:
		er.found, er.data, er.length = true, r.Data, r.Length
		if isAnchor {
			m.lengthAtLAC, m.haveLength = r.Length, true
			m.lastLength = r.Length
			m.emit(recoveryAction[T]{Kind: actDiscard, Entry: e, Data: r.Data})
			m.anchor = nil
		}
	case r.Kind == replyMissing && !isAnchor && er.missing+1 >= m.w-m.a+1:
		er.missing++
		m.markMissing(e)
	default:
		if r.Kind == replyMissing {
			er.missing++
		}
		er.replica++
		if er.replica >= m.w {
			if isAnchor {
				m.fail("entry %d (the LAC) could not be read from any replica", e)
			} else {
				m.fail("cannot tell whether entry %d exists: %d of %d replicas said it is missing, %d needed",
					e, er.missing, m.w, m.w-m.a+1)
			}
			return m.take()
		}
		m.emit(recoveryAction[T]{Kind: actRead, Entry: e, Replica: er.replica})
	}
	m.advance()
	return m.take()
}

// markMissing records that entry e is missing: the ledger ends before it,
// so reads past it are dropped.
func (m *recoveryMachine[T]) markMissing(e base.EntryID) {
	if e >= m.firstMissing {
		return
	}
	m.firstMissing = e
	for x, r := range m.reads {
		if x >= e {
			if r.found {
				m.emit(recoveryAction[T]{Kind: actDiscard, Entry: x, Data: r.data})
			}
			delete(m.reads, x)
		}
	}
}

// advance re-adds the found prefix, keeps the read window full and
// closes when everything up to the first missing entry is re-added.
func (m *recoveryMachine[T]) advance() {
	for {
		r := m.reads[m.nextAdd]
		if r == nil || !r.found {
			break
		}
		delete(m.reads, m.nextAdd)
		m.emit(recoveryAction[T]{Kind: actAdd, Entry: m.nextAdd, Data: r.data, Length: r.length})
		m.lastLength = r.length
		m.addsPending++
		m.nextAdd++
	}
	m.fill()
	m.maybeClose()
}

func (m *recoveryMachine[T]) maybeClose() {
	if m.phase != phaseReading || m.nextAdd != m.firstMissing || m.addsPending > 0 {
		return
	}
	last := m.firstMissing - 1
	if last == m.lac && !m.haveLength {
		if m.anchor == nil {
			m.anchor = &entryRead[T]{}
			m.emit(recoveryAction[T]{Kind: actRead, Entry: m.lac, Replica: 0})
		}
		return
	}
	m.phase = phaseDone
	m.emit(recoveryAction[T]{Kind: actClose, Entry: last, Length: m.lastLength})
}

// onAdded takes the outcome of the re-add of entry e.
func (m *recoveryMachine[T]) onAdded(e base.EntryID, err error) []recoveryAction[T] {
	if m.phase != phaseReading {
		return m.take()
	}
	m.addsPending--
	if err != nil {
		m.fail("re-adding entry %d: %v", e, err)
		return m.take()
	}
	m.maybeClose()
	return m.take()
}
