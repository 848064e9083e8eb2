package managedledger

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/metastore"
)

// Errors of the managed ledger, tested with errors.Is. ErrFenced and
// ErrClosed also match the classes of internal/base.
var (
	// ErrFenced: another owner opened the managed ledger (its ledger was
	// fenced, or its metadata changed under us). Nothing more can be
	// written through this instance; close it.
	ErrFenced = fmt.Errorf("managedledger: %w", base.ErrFenced)
	// ErrClosed: the managed ledger, cursor or factory was closed.
	ErrClosed = fmt.Errorf("managedledger: %w", base.ErrClosed)
	// ErrBadConfig wraps Validate's errors.
	ErrBadConfig = errors.New("managedledger: bad configuration")
	// ErrConcurrentRead: a cursor already has a pending ReadEntriesOrWait.
	ErrConcurrentRead = errors.New("managedledger: a read is already pending on this cursor")
	// ErrInvalidPosition: a position beyond the last confirmed entry (or
	// otherwise not in the managed ledger) was given.
	ErrInvalidPosition = errors.New("managedledger: invalid position")
	// ErrNotFound: no managed ledger or cursor of that name.
	ErrNotFound = errors.New("managedledger: not found")
	// ErrCursorClosed: the cursor was closed or deleted.
	ErrCursorClosed = fmt.Errorf("managedledger: cursor %w", base.ErrClosed)
	// ErrCorruptMetadata: metadata (a node or a cursor snapshot) could not
	// be decoded.
	ErrCorruptMetadata = fmt.Errorf("managedledger: metadata %w", base.ErrCorruption)
	// ErrNoLedger: creating a ledger for writing failed; the adds that
	// waited for it fail with this error wrapped around the cause.
	ErrNoLedger = errors.New("managedledger: no ledger to write to")
)

// Options configure a Factory. The zero value of every field means its
// default; NewFactory calls EnsureDefaults and then Validate.
type Options struct {
	// Store is the metadata store holding /managed-ledgers. Required.
	Store metastore.Store
	// BookKeeper is the ledger layer. Required.
	BookKeeper BookKeeper

	// CacheSizeBytes bounds the entry cache shared by the factory's managed
	// ledgers (managedLedgerCacheSizeMB). Default 256 MiB; negative turns
	// the cache off.
	CacheSizeBytes int64
	// CacheEvictionTimeThreshold: cached entries older than this are evicted
	// by the maintenance pass (managedLedgerCacheEvictionTimeThresholdMillis).
	// Default 1s.
	CacheEvictionTimeThreshold time.Duration
	// ReadBatchSize is the fewest entries a cache miss reads from the ledger
	// layer at once (read-ahead; dispatcherMaxReadBatchSize). Default 100.
	ReadBatchSize int

	// MarkDeleteRateLimit is the most cursor persists per second per cursor
	// (managedLedgerDefaultMarkDeleteRateLimit); changes in between are
	// coalesced into the next one. Default 1.0; negative means no limit.
	MarkDeleteRateLimit float64
	// CursorSnapshotMaxEntryBytes is the largest cursor-ledger entry; bigger
	// snapshots are split over several entries. Default 5 MiB.
	CursorSnapshotMaxEntryBytes int
	// CursorInlineMaxBytes: on a clean close a cursor's whole state is
	// stored in its metadata node when it encodes to at most this many
	// bytes, else in its cursor ledger. Default 256 KiB (at most
	// metastore.MaxDataSize - 4 KiB).
	CursorInlineMaxBytes int

	// MaintenanceInterval is how often the factory checks time-based
	// rollover, trimming, cache age eviction and retries of metadata
	// writes. Default 1s; negative turns the background pass off (tests call
	// RunMaintenance).
	MaintenanceInterval time.Duration

	// Now is the clock (rollover times, ledger timestamps, retention).
	// Default time.Now.
	Now func() time.Time
	// Pool supplies the buffers of cursor snapshots. Default bufs.Default.
	Pool *bufs.Pool
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// EnsureDefaults fills in zero fields.
func (o *Options) EnsureDefaults() {
	if o.CacheSizeBytes == 0 {
		o.CacheSizeBytes = 256 << 20
	}
	if o.CacheEvictionTimeThreshold == 0 {
		o.CacheEvictionTimeThreshold = time.Second
	}
	if o.ReadBatchSize == 0 {
		o.ReadBatchSize = 100
	}
	if o.MarkDeleteRateLimit == 0 {
		o.MarkDeleteRateLimit = 1
	}
	if o.CursorSnapshotMaxEntryBytes == 0 {
		o.CursorSnapshotMaxEntryBytes = 5 << 20
	}
	if o.CursorInlineMaxBytes == 0 {
		o.CursorInlineMaxBytes = 256 << 10
	}
	if o.MaintenanceInterval == 0 {
		o.MaintenanceInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Pool == nil {
		o.Pool = bufs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate checks the options after EnsureDefaults.
func (o *Options) Validate() error {
	switch {
	case o.Store == nil:
		return fmt.Errorf("%w: Store is required", ErrBadConfig)
	case o.BookKeeper == nil:
		return fmt.Errorf("%w: BookKeeper is required", ErrBadConfig)
	case o.ReadBatchSize < 1:
		return fmt.Errorf("%w: ReadBatchSize %d", ErrBadConfig, o.ReadBatchSize)
	case o.CursorSnapshotMaxEntryBytes < 1<<10:
		return fmt.Errorf("%w: CursorSnapshotMaxEntryBytes %d below 1 KiB", ErrBadConfig, o.CursorSnapshotMaxEntryBytes)
	case o.CursorInlineMaxBytes < 0 || o.CursorInlineMaxBytes > metastore.MaxDataSize-4<<10:
		return fmt.Errorf("%w: CursorInlineMaxBytes %d outside [0, %d]", ErrBadConfig, o.CursorInlineMaxBytes, metastore.MaxDataSize-4<<10)
	case o.CacheEvictionTimeThreshold < 0:
		return fmt.Errorf("%w: CacheEvictionTimeThreshold %v", ErrBadConfig, o.CacheEvictionTimeThreshold)
	}
	return nil
}

// EnsureDefaults fills in zero fields with the defaults of Pulsar's
// broker.conf.
func (c *Config) EnsureDefaults() {
	if c.EnsembleSize == 0 {
		c.EnsembleSize = 2
	}
	if c.WriteQuorum == 0 {
		c.WriteQuorum = min(2, c.EnsembleSize)
	}
	if c.AckQuorum == 0 {
		c.AckQuorum = min(2, c.WriteQuorum)
	}
	if c.MaxEntriesPerLedger == 0 {
		c.MaxEntriesPerLedger = 50000
	}
	if c.MaxSizePerLedgerBytes == 0 {
		c.MaxSizePerLedgerBytes = 2048 << 20
	}
	if c.MinRolloverTime == 0 {
		c.MinRolloverTime = 10 * time.Minute
	}
	if c.MaxRolloverTime == 0 {
		c.MaxRolloverTime = 240 * time.Minute
	}
	if c.CursorMaxEntriesPerLedger == 0 {
		c.CursorMaxEntriesPerLedger = 50000
	}
	if c.CreateAheadFraction == 0 {
		c.CreateAheadFraction = 0.5
	}
}

// Validate checks the configuration after EnsureDefaults. A negative
// MinRolloverTime means no minimum.
func (c *Config) Validate() error {
	switch {
	case c.EnsembleSize < 1 || c.WriteQuorum < 1 || c.AckQuorum < 1:
		return fmt.Errorf("%w: quorums E=%d Qw=%d Qa=%d", ErrBadConfig, c.EnsembleSize, c.WriteQuorum, c.AckQuorum)
	case c.WriteQuorum > c.EnsembleSize || c.AckQuorum > c.WriteQuorum:
		return fmt.Errorf("%w: need E >= Qw >= Qa, have E=%d Qw=%d Qa=%d", ErrBadConfig, c.EnsembleSize, c.WriteQuorum, c.AckQuorum)
	case c.MaxEntriesPerLedger < 1:
		return fmt.Errorf("%w: MaxEntriesPerLedger %d", ErrBadConfig, c.MaxEntriesPerLedger)
	case c.MaxSizePerLedgerBytes < 1:
		return fmt.Errorf("%w: MaxSizePerLedgerBytes %d", ErrBadConfig, c.MaxSizePerLedgerBytes)
	case c.MaxRolloverTime <= 0:
		return fmt.Errorf("%w: MaxRolloverTime %v", ErrBadConfig, c.MaxRolloverTime)
	case c.MinRolloverTime > c.MaxRolloverTime:
		return fmt.Errorf("%w: MinRolloverTime %v exceeds MaxRolloverTime %v", ErrBadConfig, c.MinRolloverTime, c.MaxRolloverTime)
	case c.CursorMaxEntriesPerLedger < 1:
		return fmt.Errorf("%w: CursorMaxEntriesPerLedger %d", ErrBadConfig, c.CursorMaxEntriesPerLedger)
	case c.CreateAheadFraction <= 0 || c.CreateAheadFraction > 1:
		return fmt.Errorf("%w: CreateAheadFraction %v outside (0, 1]", ErrBadConfig, c.CreateAheadFraction)
	}
	return nil
}
