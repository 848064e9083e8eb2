package ledgerstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// Defaults. The names in brackets are BookKeeper's configuration keys for the
// same knob; where our default differs from BookKeeper's, the comment says why.
const (
	// DefaultWriteCacheMaxBytes [dbStorage_writeCacheMaxSizeMb]. BookKeeper
	// takes 25% of direct memory; we take a fixed size the caller raises.
	DefaultWriteCacheMaxBytes = 256 << 20
	// DefaultWriteCacheSegments: BookKeeper has two halves, so a flush that
	// runs long stalls every add; four segments let adds flow while one
	// segment flushes and another waits.
	DefaultWriteCacheSegments = 4
	// DefaultReadCacheMaxBytes [dbStorage_readAheadCacheMaxSizeMb].
	DefaultReadCacheMaxBytes = 256 << 20
	// DefaultReadAheadBatchSize [dbStorage_readAheadCacheBatchSize] (Pulsar's value).
	DefaultReadAheadBatchSize = 1000
	// DefaultReadAheadBatchBytes [dbStorage_readAheadCacheBatchBytesSize]: a
	// byte bound keeps large entries from trashing the cache (BookKeeper #2647).
	DefaultReadAheadBatchBytes = 4 << 20
	// DefaultReadAheadConcurrency bounds read-aheads in flight; one more is
	// skipped rather than queued.
	DefaultReadAheadConcurrency = 4
	// DefaultEntryLogSizeLimit [logSizeLimit].
	DefaultEntryLogSizeLimit = 1 << 30
	// MaxEntryLogSizeLimit: offsets are stored in 32 bits.
	MaxEntryLogSizeLimit = 2 << 30
	// DefaultPreallocateBytes is how far ahead of the write offset an entry
	// log's space is reserved (fallocate).
	DefaultPreallocateBytes = 16 << 20
	// DefaultGCInterval [gcWaitTime] (Pulsar's 15 minutes).
	DefaultGCInterval = 15 * time.Minute
	// DefaultMinorCompactionThreshold [minorCompactionThreshold].
	DefaultMinorCompactionThreshold = 0.2
	// DefaultMinorCompactionInterval [minorCompactionInterval].
	DefaultMinorCompactionInterval = time.Hour
	// DefaultMajorCompactionThreshold [majorCompactionThreshold] (Pulsar's 0.5).
	DefaultMajorCompactionThreshold = 0.5
	// DefaultMajorCompactionInterval [majorCompactionInterval].
	DefaultMajorCompactionInterval = 24 * time.Hour
	// DefaultCompactionRateBytes [compactionRateByBytes]. BookKeeper's 1 MB/s
	// makes reclamation lag far behind deletes (BookKeeper #3524); 32 MiB/s
	// is a small share of an SSD's bandwidth.
	DefaultCompactionRateBytes = 32 << 20
	// DefaultDiskUsageThreshold [diskUsageThreshold].
	DefaultDiskUsageThreshold = 0.95
	// DefaultDiskUsageLwmThreshold [diskUsageLwmThreshold].
	DefaultDiskUsageLwmThreshold = 0.90
	// DefaultDiskCheckInterval [diskCheckInterval].
	DefaultDiskCheckInterval = 10 * time.Second
	// DefaultFlushRetryInterval is how long a failed flush waits before it
	// tries again on its own (a Flush call or space coming back retries at once).
	DefaultFlushRetryInterval = time.Second
	// minSegmentBytes keeps a misconfiguration from making every entry its
	// own flush.
	minSegmentBytes = 64 << 10
)

// Options configure a Store. The zero value of every field means its
// default; call EnsureDefaults then Validate (Open does both).
type Options struct {
	// Dirs are the ledger directories [ledgerDirectories], ideally one per
	// disk. Entry logs are spread over those that are not full.
	Dirs []string
	// MetaDir holds the catalog (ledger metadata, deletions). Default: Dirs[0].
	MetaDir string
	// FS is the filesystem; nil means vfs.Default.
	FS vfs.FS
	// Pool provides the buffers reads return; nil means bufs.Default.
	Pool *bufs.Pool

	// WriteCacheMaxBytes bounds the memory the write cache holds (payload
	// capacity plus a per-entry overhead), over all segments.
	WriteCacheMaxBytes int64
	// WriteCacheSegments is how many segments the write cache is split into
	// (at least 2).
	WriteCacheSegments int

	// ReadCacheMaxBytes bounds the read cache; negative disables it (and
	// read-ahead).
	ReadCacheMaxBytes int64
	// ReadAheadBatchSize is the most entries one read-ahead fetches.
	ReadAheadBatchSize int
	// ReadAheadBatchBytes is the most bytes one read-ahead fetches.
	ReadAheadBatchBytes int64
	// ReadAheadConcurrency is the most read-aheads in flight at once.
	ReadAheadConcurrency int
	// BufferedReads reads entry logs through the page cache. By default
	// (false) the reads that go to the device use O_DIRECT where the
	// filesystem allows it: a cold catch-up read then neither fills the
	// page cache (its allocation, copy and reclaim cost CPU the adds need)
	// nor evicts what is there, and repeated reads are served by the read
	// cache [entryLogDirectReads].
	BufferedReads bool
	// KernelReadAhead keeps the kernel's read-ahead on entry logs (a
	// buffered read also fetches the next megabytes of the file,
	// asynchronously: /sys/block/<dev>/queue/read_ahead_kb). By default it
	// is off (POSIX_FADV_RANDOM) and reads go to the device in pieces of
	// at most 256 KiB: the store reads ahead itself, into its read cache,
	// and the kernel's multi-megabyte read-aheads, queued ahead of the
	// journal's writes when both share a disk, multiplied the journal's
	// p99 add latency under a cold catch-up reader (BenchmarkAddLatency-
	// CatchUp: 10-38 ms against 1.5-2.3 ms with it off). Set it when the
	// journal has a device of its own: a cold sequential reader is then up
	// to 2.5 times faster (BenchmarkCatchUpRead).
	KernelReadAhead bool

	// EntryLogSizeLimit is the size at which an entry log is rolled.
	EntryLogSizeLimit int64
	// PreallocateBytes is how far ahead entry log space is reserved;
	// negative disables preallocation.
	PreallocateBytes int64
	// DisableDirectIO writes entry logs through the page cache. By default
	// they are written with O_DIRECT (as BookKeeper's DirectEntryLogger),
	// falling back to the page cache (logged once) where the filesystem
	// refuses it: flushes then neither fill the page cache with data that
	// readers find in the write and read caches, nor leave dirty pages
	// whose writeback competes with the journal's fdatasync. Reads always
	// go through the page cache.
	DisableDirectIO bool

	// GCInterval is the period of the background garbage collector;
	// negative disables the background loop (RunGC still works).
	GCInterval time.Duration
	// MinorCompactionThreshold: logs whose live share is below it are
	// compacted by a minor compaction. Negative disables minor compaction.
	MinorCompactionThreshold float64
	// MinorCompactionInterval is the least time between minor compactions.
	MinorCompactionInterval time.Duration
	// MajorCompactionThreshold: logs whose live share is below it are
	// compacted by a major compaction. Negative disables major compaction.
	MajorCompactionThreshold float64
	// MajorCompactionInterval is the least time between major compactions.
	MajorCompactionInterval time.Duration
	// CompactionRateBytes throttles compaction's copying, in bytes per
	// second; negative means unthrottled.
	CompactionRateBytes int64

	// DiskUsageThreshold: a directory whose used fraction reaches it is full.
	DiskUsageThreshold float64
	// DiskUsageLwmThreshold: a full directory is writable again below it.
	DiskUsageLwmThreshold float64
	// DiskCheckInterval is the period of the disk usage check; negative
	// disables the background check (CheckDisks still works).
	DiskCheckInterval time.Duration
	// FlushRetryInterval is how long the flusher waits after a failed flush
	// before retrying on its own.
	FlushRetryInterval time.Duration

	// OnModeChange, when set, is called each time the store turns read-only
	// or writable again, in order, from the goroutine that noticed (while
	// mode changes are serialized). It must not block for long and must not
	// call into the store except Mode and Stats.
	OnModeChange func(Mode)
	// Logger receives the store's events; nil means slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills in the zero fields.
func (o *Options) EnsureDefaults() {
	if len(o.Dirs) > 0 && o.MetaDir == "" {
		o.MetaDir = o.Dirs[0]
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Pool == nil {
		o.Pool = bufs.Default
	}
	if o.WriteCacheMaxBytes == 0 {
		o.WriteCacheMaxBytes = DefaultWriteCacheMaxBytes
	}
	if o.WriteCacheSegments == 0 {
		o.WriteCacheSegments = DefaultWriteCacheSegments
	}
	if o.ReadCacheMaxBytes == 0 {
		o.ReadCacheMaxBytes = DefaultReadCacheMaxBytes
	}
	if o.ReadAheadBatchSize == 0 {
		o.ReadAheadBatchSize = DefaultReadAheadBatchSize
	}
	if o.ReadAheadBatchBytes == 0 {
		o.ReadAheadBatchBytes = DefaultReadAheadBatchBytes
	}
	if o.ReadAheadConcurrency == 0 {
		o.ReadAheadConcurrency = DefaultReadAheadConcurrency
	}
	if o.EntryLogSizeLimit == 0 {
		o.EntryLogSizeLimit = DefaultEntryLogSizeLimit
	}
	if o.PreallocateBytes == 0 {
		o.PreallocateBytes = DefaultPreallocateBytes
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.MinorCompactionThreshold == 0 {
		o.MinorCompactionThreshold = DefaultMinorCompactionThreshold
	}
	if o.MinorCompactionInterval == 0 {
		o.MinorCompactionInterval = DefaultMinorCompactionInterval
	}
	if o.MajorCompactionThreshold == 0 {
		o.MajorCompactionThreshold = DefaultMajorCompactionThreshold
	}
	if o.MajorCompactionInterval == 0 {
		o.MajorCompactionInterval = DefaultMajorCompactionInterval
	}
	if o.CompactionRateBytes == 0 {
		o.CompactionRateBytes = DefaultCompactionRateBytes
	}
	if o.DiskUsageThreshold == 0 {
		o.DiskUsageThreshold = DefaultDiskUsageThreshold
	}
	if o.DiskUsageLwmThreshold == 0 {
		o.DiskUsageLwmThreshold = DefaultDiskUsageLwmThreshold
	}
	if o.DiskCheckInterval == 0 {
		o.DiskCheckInterval = DefaultDiskCheckInterval
	}
	if o.FlushRetryInterval == 0 {
		o.FlushRetryInterval = DefaultFlushRetryInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// ErrInvalidOptions is wrapped by every Validate error.
var ErrInvalidOptions = errors.New("ledgerstore: invalid options")

// Validate reports the first inconsistent field.
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	if len(o.Dirs) == 0 {
		return bad("no ledger directories")
	}
	seen := map[string]bool{}
	for _, d := range o.Dirs {
		if d == "" {
			return bad("empty ledger directory name")
		}
		if seen[d] {
			return bad("ledger directory %q listed twice", d)
		}
		seen[d] = true
	}
	if o.FS == nil || o.Pool == nil || o.Logger == nil {
		return bad("EnsureDefaults was not called")
	}
	if o.WriteCacheSegments < 2 {
		return bad("WriteCacheSegments %d: at least 2", o.WriteCacheSegments)
	}
	if o.WriteCacheMaxBytes/int64(o.WriteCacheSegments) < minSegmentBytes {
		return bad("WriteCacheMaxBytes %d over %d segments: segments under %d bytes",
			o.WriteCacheMaxBytes, o.WriteCacheSegments, minSegmentBytes)
	}
	if o.ReadAheadBatchSize < 0 || o.ReadAheadBatchBytes < 0 || o.ReadAheadConcurrency < 0 {
		return bad("negative read-ahead bound")
	}
	minLog := int64(record.FileHeaderSize + record.HeaderSize + 1)
	if o.EntryLogSizeLimit < minLog || o.EntryLogSizeLimit > MaxEntryLogSizeLimit {
		return bad("EntryLogSizeLimit %d outside [%d, %d]", o.EntryLogSizeLimit, minLog, MaxEntryLogSizeLimit)
	}
	if o.MinorCompactionThreshold > 1 || o.MajorCompactionThreshold > 1 {
		return bad("compaction thresholds above 1")
	}
	if o.MinorCompactionThreshold > 0 && o.MajorCompactionThreshold > 0 &&
		o.MinorCompactionThreshold > o.MajorCompactionThreshold {
		return bad("MinorCompactionThreshold %.2f above MajorCompactionThreshold %.2f",
			o.MinorCompactionThreshold, o.MajorCompactionThreshold)
	}
	if o.DiskUsageThreshold <= 0 || o.DiskUsageThreshold > 1 {
		return bad("DiskUsageThreshold %.2f outside (0, 1]", o.DiskUsageThreshold)
	}
	if o.DiskUsageLwmThreshold <= 0 || o.DiskUsageLwmThreshold > o.DiskUsageThreshold {
		return bad("DiskUsageLwmThreshold %.2f outside (0, DiskUsageThreshold]", o.DiskUsageLwmThreshold)
	}
	if o.FlushRetryInterval < 0 {
		return bad("negative FlushRetryInterval")
	}
	return nil
}

// segmentBytes is the capacity of one write cache segment.
func (o *Options) segmentBytes() int64 { return o.WriteCacheMaxBytes / int64(o.WriteCacheSegments) }
