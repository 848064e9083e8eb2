package ledger

import "github.com/magnetar/magnetar/internal/base"

// Striping (BookKeeper's RoundRobinDistributionSchedule): entry e is
// stored by the W ensemble members (e+i) mod E, i = 0..W-1. The bookie at
// write-set position 0 is the first one asked by reads.

// writeSetIndex is the ensemble index of replica i of entry e.
func writeSetIndex(e base.EntryID, i, ensembleSize int) int {
	return int((uint64(e) + uint64(i)) % uint64(ensembleSize))
}

// writeSetMask is the set of ensemble indexes that store entry e.
func writeSetMask(e base.EntryID, writeQuorum, ensembleSize int) uint64 {
	var m uint64
	for i := 0; i < writeQuorum; i++ {
		m |= 1 << writeSetIndex(e, i, ensembleSize)
	}
	return m
}

// replyKind classifies a bookie's answer to a read of the last entry
// (LAC read or fencing) for quorum coverage.
type replyKind int8

const (
	replyNone    replyKind = iota // no answer yet
	replyEntry                    // answered with an entry
	replyMissing                  // NoSuchEntry / NoSuchLedger: knows it has nothing
	replyError                    // any other error: unknown
)

// coverage tells when the answers of an ensemble cover every write quorum
// (BookKeeper's RRQuorumCoverageSet): no write quorum may have A or more
// members whose state is unknown (no answer, or an error other than
// NoSuchEntry/NoSuchLedger). Once covered, no entry the ensemble did not
// report can have reached the ack quorum; after fencing, none ever will.
type coverage struct {
	e, w, a int
	replies []replyKind
}

func newCoverage(e, w, a int) coverage {
	return coverage{e: e, w: w, a: a, replies: make([]replyKind, e)}
}

func (c *coverage) set(index int, k replyKind) { c.replies[index] = k }

func (c *coverage) covered() bool {
	for i := 0; i < c.e; i++ {
		unknown := 0
		for j := 0; j < c.w; j++ {
			switch c.replies[(i+j)%c.e] {
			case replyEntry, replyMissing:
			default:
				unknown++
			}
		}
		if unknown >= c.a {
			return false
		}
	}
	return true
}

// answered counts the members that answered (whatever the answer).
func (c *coverage) answered() int {
	n := 0
	for _, r := range c.replies {
		if r != replyNone {
			n++
		}
	}
	return n
}
