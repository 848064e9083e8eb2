package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// Defaults. The BookKeeper configuration key each one mirrors is named beside
// it.
const (
	DefaultAlignment               = vfs.DefaultAlignment // journalAlignmentSize
	DefaultMaxSegmentBytes         = 2048 << 20           // journalMaxSizeMB = 2048
	DefaultPreallocBytes           = 16 << 20             // journalPreAllocSizeMB = 16
	DefaultMaxGroupWait            = 2 * time.Millisecond // journalMaxGroupWaitMSec = 2
	DefaultBufferedWritesThreshold = 512 << 10            // journalBufferedWritesThreshold
	DefaultQueueMaxBytes           = 32 << 20             // journalQueueMaxBytes, per directory
	DefaultMaxBackups              = 5                    // journalMaxBackups
)

// Options configure a Journal. The zero value of every field means its
// default; call EnsureDefaults and then Validate (Open does both).
type Options struct {
	// Dirs are the journal directories (journalDirectories), ideally one per
	// device. Ledger l is journaled in Dirs[DirFor(l)]; the order of Dirs
	// must not change between runs while the journal holds records that are
	// not checkpointed.
	Dirs []string
	// FS is the filesystem; nil means vfs.Default.
	FS vfs.FS
	// DisableDirectIO forces buffered writes plus fdatasync
	// (journalDirectIO=false). By default segments are written with
	// O_DIRECT, falling back to buffered writes (logged once) where the
	// filesystem refuses it.
	DisableDirectIO bool
	// Alignment is the block size writes are padded to and aligned on
	// (journalAlignmentSize): a power of two, at least 512, and a multiple of
	// FS.Alignment() when direct I/O is on. Default 4096.
	Alignment int
	// MaxSegmentBytes rotates a segment once it would grow past this size
	// (journalMaxSizeMB). Default 2 GiB.
	MaxSegmentBytes int64
	// PreallocBytes is the chunk in which segments are preallocated with
	// fallocate (journalPreAllocSizeMB). Default 16 MiB.
	PreallocBytes int64
	// NoZeroFill only reserves the preallocated space; by default it is
	// also written with zeros, ahead of the writer, so that fdatasync in a
	// fresh segment needs no metadata commit (journalPreAllocZeroFill).
	NoZeroFill bool
	// MaxGroupWait bounds how long a group may accumulate while an fdatasync
	// is running before it is written out anyway (journalMaxGroupWaitMSec).
	// It never delays an add: when no fdatasync is running, what is queued
	// is written and synced at once. Default 2ms; negative: no bound.
	MaxGroupWait time.Duration
	// BufferedWritesThreshold: while an fdatasync is running, queued bytes
	// are written (without padding) whenever this many whole blocks are
	// ready, so the next fdatasync has less to do
	// (journalBufferedWritesThreshold). Default 512 KiB; negative: off.
	BufferedWritesThreshold int
	// QueueMaxBytes bounds, per directory, the bytes of records appended but
	// not yet durable (journalQueueMaxBytes). Append blocks and TryAppend
	// fails with ErrBusy beyond it. It is also the write buffer: each
	// directory allocates QueueMaxBytes plus two blocks of aligned memory.
	// It bounds the largest record. Default 32 MiB.
	QueueMaxBytes int64
	// MaxBackups is how many segments wholly below the checkpoint are kept
	// (journalMaxBackups). Default 5; negative: none. Of the segments freed
	// beyond them, up to two per directory are kept, renamed, for reuse.
	MaxBackups int
	// Logger receives the journal's few log lines; nil means slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults replaces zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Alignment == 0 {
		o.Alignment = DefaultAlignment
	}
	if o.MaxSegmentBytes == 0 {
		o.MaxSegmentBytes = DefaultMaxSegmentBytes
	}
	if o.PreallocBytes == 0 {
		o.PreallocBytes = DefaultPreallocBytes
	}
	if o.MaxGroupWait == 0 {
		o.MaxGroupWait = DefaultMaxGroupWait
	}
	if o.BufferedWritesThreshold == 0 {
		o.BufferedWritesThreshold = DefaultBufferedWritesThreshold
	}
	if o.QueueMaxBytes == 0 {
		o.QueueMaxBytes = DefaultQueueMaxBytes
	}
	if o.MaxBackups == 0 {
		o.MaxBackups = DefaultMaxBackups
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports the first setting that cannot work.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Dirs) == 0 {
		errs = append(errs, errors.New("no directories"))
	}
	seen := map[string]bool{}
	for _, d := range o.Dirs {
		if d == "" || seen[d] {
			errs = append(errs, fmt.Errorf("directory %q empty or repeated", d))
		}
		seen[d] = true
	}
	a := o.Alignment
	if a < 512 || a&(a-1) != 0 || a > 1<<20 {
		errs = append(errs, fmt.Errorf("alignment %d is not a power of two in [512, 1 MiB]", a))
	} else if !o.DisableDirectIO && o.FS != nil && o.FS.Alignment() > 0 && a%o.FS.Alignment() != 0 {
		errs = append(errs, fmt.Errorf("alignment %d is not a multiple of the filesystem's direct I/O alignment %d", a, o.FS.Alignment()))
	}
	if o.MaxSegmentBytes < 16*int64(a) {
		errs = append(errs, fmt.Errorf("max segment bytes %d below 16 blocks", o.MaxSegmentBytes))
	}
	if o.PreallocBytes < 0 {
		errs = append(errs, fmt.Errorf("negative prealloc bytes %d", o.PreallocBytes))
	}
	if o.QueueMaxBytes < 8*int64(a) {
		errs = append(errs, fmt.Errorf("queue max bytes %d below 8 blocks", o.QueueMaxBytes))
	}
	if o.QueueMaxBytes > 1<<40 {
		errs = append(errs, fmt.Errorf("queue max bytes %d above 1 TiB", o.QueueMaxBytes))
	}
	if len(errs) > 0 {
		return fmt.Errorf("journal: invalid options: %w", errors.Join(errs...))
	}
	return nil
}

// maxRecordBytes is the largest record (header and payload) a directory
// accepts: one that, with the padding a rotation may put in front of it,
// fits in an empty queue.
func (o *Options) maxRecordBytes() int64 {
	n := o.QueueMaxBytes - int64(o.Alignment) - 2*record.HeaderSize
	return min(n, record.HeaderSize+record.MaxPayload)
}

func (o *Options) keepBackups() int { return max(o.MaxBackups, 0) }
