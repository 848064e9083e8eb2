package journal

import (
	"fmt"
	"math/bits"
	"time"

	"github.com/magnetar/magnetar/internal/base"
)

// Errors. Returned errors wrap these (and the base classes they wrap), with
// the directory, file and offset where there is one.
var (
	// ErrClosed: the journal was closed.
	ErrClosed = fmt.Errorf("journal: %w", base.ErrClosed)
	// ErrBusy: TryAppend found the directory's queue full.
	ErrBusy = fmt.Errorf("journal: queue full: %w", base.ErrBusy)
	// ErrTooLarge: the record does not fit in the queue (QueueMaxBytes).
	ErrTooLarge = fmt.Errorf("journal: record too large: %w", base.ErrTooLarge)
	// ErrKind: the record kind is reserved for the journal itself.
	ErrKind = fmt.Errorf("journal: invalid record kind")
)

// Pos is the position of a record: a directory (index into Options.Dirs), a
// segment file number and the record's byte offset in the segment.
type Pos struct {
	Dir    int
	File   uint32
	Offset int64
}

// Less orders positions of the same directory.
func (p Pos) Less(q Pos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	return p.Offset < q.Offset
}

func (p Pos) String() string { return fmt.Sprintf("%d/%d@%d", p.Dir, p.File, p.Offset) }

// Checkpoint is one position per directory, indexed by directory: replay
// starts there, and segments wholly below it may be deleted. The empty
// Checkpoint means "from the beginning".
type Checkpoint []Pos

// Callback is told the outcome of an Append: the record's position once it
// is durable (an fdatasync covering it returned), or the error that stopped
// it. Done is called exactly once, on the directory's sync goroutine, in
// record order; it must not block and must not call Append on the same
// journal with a full queue. A pointer to a long-lived (for example pooled)
// request struct makes a Callback without allocating.
type Callback interface {
	Done(pos Pos, err error)
}

// CallbackFunc adapts a function to Callback. Converting a func value to an
// interface does not allocate; a closure created per add does.
type CallbackFunc func(Pos, error)

// Done calls f.
func (f CallbackFunc) Done(pos Pos, err error) { f(pos, err) }

// Stats are counters of a directory or, summed, of the journal. Counters
// only grow.
type Stats struct {
	Records      uint64        // records appended (accepted)
	PayloadBytes uint64        // their payload bytes
	PaddingBytes uint64        // bytes of padding records written to align groups
	WrittenBytes uint64        // bytes written to segments
	Writes       uint64        // write calls
	Syncs        uint64        // fdatasyncs, i.e. commit groups
	SyncTime     time.Duration // total time in fdatasync
	SyncLatency  Histogram     // fdatasync latencies
	Segments     uint64        // segments created
	Recycled     uint64        // of which made from a recycled segment file
	Dirs         []Stats       // per directory (only in Journal.Stats)
}

func (s *Stats) add(o *Stats) {
	s.Records += o.Records
	s.PayloadBytes += o.PayloadBytes
	s.PaddingBytes += o.PaddingBytes
	s.WrittenBytes += o.WrittenBytes
	s.Writes += o.Writes
	s.Syncs += o.Syncs
	s.SyncTime += o.SyncTime
	s.Segments += o.Segments
	s.Recycled += o.Recycled
	for i := range s.SyncLatency {
		s.SyncLatency[i] += o.SyncLatency[i]
	}
}

// Histogram counts latencies in power-of-two buckets: bucket i holds
// durations in [2^i, 2^(i+1)) microseconds, bucket 0 everything below 2µs.
type Histogram [32]uint64

func histBucket(d time.Duration) int {
	us := uint64(max(d.Microseconds(), 1))
	return min(bits.Len64(us)-1, len(Histogram{})-1)
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h {
		n += c
	}
	return n
}

// Quantile returns the upper bound of the bucket holding the q-quantile
// (0 < q <= 1), or 0 without samples.
func (h *Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h {
		seen += c
		if seen >= rank {
			return time.Duration(uint64(2)<<i) * time.Microsecond
		}
	}
	return time.Duration(uint64(2)<<(len(h)-1)) * time.Microsecond
}
