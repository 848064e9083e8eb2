package managedledger

import (
	"context"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
)

// This file is the contract between the managed ledger and its neighbours:
// the ledger layer below (BookKeeper, WriteLedger, ReadLedger: implemented by
// package ledger through an adapter, and by an in-memory BookKeeper for
// tests), and the broker and dispatcher above (ManagedLedger, Cursor).

// BookKeeper is the ledger layer the managed ledger stores its data in.
type BookKeeper interface {
	// Create makes a new ledger open for writing.
	Create(ctx context.Context, cfg LedgerConfig) (WriteLedger, error)
	// Open opens a ledger for reading. With recover, the ledger is fenced on
	// its bookies and closed at the last entry that may have been confirmed
	// (BookKeeper's recovery); without it the reader sees entries up to the
	// last-add-confirmed it learns.
	Open(ctx context.Context, id base.LedgerID, recover bool) (ReadLedger, error)
	// Delete removes a ledger (metadata and data).
	Delete(ctx context.Context, id base.LedgerID) error
}

// LedgerConfig says how a new ledger is replicated.
type LedgerConfig struct {
	EnsembleSize, WriteQuorum, AckQuorum int
	Password                             []byte
	// Custom metadata stored with the ledger (Pulsar stores the managed
	// ledger's name under "pulsar/managed-ledger").
	Custom map[string][]byte
}

// AddCallback is told the outcome of an add. Implementations are usually
// long-lived pooled request structs, so that an add allocates nothing.
type AddCallback interface {
	AddComplete(entry base.EntryID, err error)
}

// AddEntryCallback is told the outcome of a managed ledger add: the position
// (ledger and entry) the entry was stored at. Implementations are usually
// long-lived pooled request structs, so that an add allocates nothing.
type AddEntryCallback interface {
	AddEntryComplete(pos base.Position, err error)
}

// WriteLedger is a ledger open for writing by this process.
type WriteLedger interface {
	ID() base.LedgerID
	// AddEntry appends payload asynchronously; the ledger takes over the
	// caller's reference. Completions arrive in entry order, exactly one per
	// call, possibly on the caller's goroutine before AddEntry returns. Once
	// an add failed, every later pending add fails too and the ledger's
	// last-add-confirmed stays below the failed entry (closing the ledger
	// seals it there).
	AddEntry(payload *bufs.Buf, cb AddCallback)
	LastAddConfirmed() base.EntryID
	// Length is the number of payload bytes confirmed.
	Length() int64
	// Read reads confirmed entries [first, last] of this ledger.
	Read(ctx context.Context, first, last base.EntryID) ([]LedgerEntry, error)
	Close(ctx context.Context) error
}

// ReadLedger is a ledger open for reading.
type ReadLedger interface {
	ID() base.LedgerID
	LastAddConfirmed() base.EntryID
	// Length is the number of payload bytes up to the last-add-confirmed
	// (after recovery: the ledger's final length).
	Length() int64
	// Read reads entries [first, last]; each entry's Data holds one reference
	// the caller releases.
	Read(ctx context.Context, first, last base.EntryID) ([]LedgerEntry, error)
	Close() error
}

// LedgerEntry is an entry read from a ledger.
type LedgerEntry struct {
	ID   base.EntryID
	Data *bufs.Buf
}

// Entry is an entry of a managed ledger handed to a reader. Data holds one
// reference that the receiver releases exactly once.
type Entry struct {
	Pos  base.Position
	Data *bufs.Buf
}

// InitialPosition is where a new durable cursor starts.
type InitialPosition int

const (
	// Latest: the cursor starts after the last confirmed entry.
	Latest InitialPosition = iota
	// Earliest: the cursor starts at the oldest retained entry.
	Earliest
)

// Config configures one managed ledger (a topic's log). Zero values take the
// defaults of Pulsar's broker.conf keys named beside each field.
type Config struct {
	EnsembleSize int // managedLedgerDefaultEnsembleSize
	WriteQuorum  int // managedLedgerDefaultWriteQuorum
	AckQuorum    int // managedLedgerDefaultAckQuorum
	Password     []byte

	MaxEntriesPerLedger   int64         // managedLedgerMaxEntriesPerLedger (50000)
	MaxSizePerLedgerBytes int64         // managedLedgerMaxSizePerLedgerMbytes (2048 MiB)
	MinRolloverTime       time.Duration // managedLedgerMinLedgerRolloverTimeMinutes (10 min)
	MaxRolloverTime       time.Duration // managedLedgerMaxLedgerRolloverTimeMinutes (240 min)

	// Retention of consumed data: a ledger wholly consumed by every cursor is
	// deleted once it is older than RetentionTime and the retained size
	// exceeds RetentionSizeBytes (0 and 0: deleted as soon as consumed;
	// negative: retained forever), as Pulsar's namespace retention policy.
	RetentionTime      time.Duration
	RetentionSizeBytes int64

	CursorMaxEntriesPerLedger int64 // managedLedgerCursorMaxEntriesPerLedger (50000)

	// CreateAheadFraction: the next ledger is created, and registered in the
	// metadata, once the current one has reached this fraction of
	// MaxEntriesPerLedger, MaxSizePerLedgerBytes or MaxRolloverTime, so that
	// a rollover never waits for a ledger to be created. Default 0.5.
	CreateAheadFraction float64
}

// ReadCallback receives the outcome of an asynchronous read. Entries hold
// one reference each, owned by the callee.
//
// The slice itself belongs to the cursor and is reused once ReadComplete
// returns (so that a tailing read allocates nothing): keep the Entry values,
// never the slice or a sub-slice of it. ReadComplete may run on the goroutine
// that called ReadEntriesOrWait, before that call returns (entries were in the
// cache), or on another goroutine (an add woke the waiting read, or a read
// from the ledger layer finished): never hold a lock that ReadComplete takes
// while calling ReadEntriesOrWait.
type ReadCallback interface {
	ReadComplete(entries []Entry, err error)
}

// ManagedLedger is a topic's log: one writer appending at the end, many
// cursors reading it.
type ManagedLedger interface {
	Name() string
	// AddEntry appends data (the managed ledger takes over the caller's
	// reference) and tells cb its position once the ack quorum confirmed it.
	// Completions arrive in the order of the calls, on a goroutine of the
	// ledger layer or, for an immediate failure (closed, fenced), on the
	// caller's before AddEntry returns: never hold a lock that cb takes while
	// calling AddEntry.
	AddEntry(data *bufs.Buf, cb AddEntryCallback)
	// OpenCursor opens (creating if needed) a durable cursor: its position is
	// persisted and survives restarts.
	OpenCursor(ctx context.Context, name string, initial InitialPosition) (Cursor, error)
	// NewNonDurableCursor makes a cursor that is not persisted, reading from
	// the entry after start (base.Position{Ledger: -1} for the earliest).
	NewNonDurableCursor(start base.Position) (Cursor, error)
	DeleteCursor(ctx context.Context, name string) error
	Cursors() []Cursor
	// LastConfirmed is the position of the last confirmed entry.
	LastConfirmed() base.Position
	// FirstPosition is the position of the oldest retained entry.
	FirstPosition() base.Position
	NumberOfEntries() int64
	TotalSize() int64
	// FindNewest returns the newest position whose entry satisfies pred,
	// assuming pred is true up to some position and false after (Pulsar's
	// asyncFindPosition; the broker uses it to seek by publish time).
	FindNewest(ctx context.Context, pred func(Entry) bool) (base.Position, error)
	// ReadEntry reads one entry (peek, get-message-by-id).
	ReadEntry(ctx context.Context, pos base.Position) (Entry, error)
	InternalStats() InternalStats
	// Properties returns a copy of the properties stored with the managed
	// ledger's metadata (ManagedLedgerInfo.properties in Pulsar).
	Properties() map[string]string
	// SetProperties sets each property whose value is not empty and deletes
	// each whose value is empty, and returns once that is persisted.
	SetProperties(ctx context.Context, props map[string]string) error
	Close(ctx context.Context) error
}

// Cursor is a subscription's position in a managed ledger: a mark-delete
// position (everything up to it is acknowledged) plus individually
// acknowledged positions beyond it, and a read position.
type Cursor interface {
	Name() string
	Durable() bool
	// ReadEntriesOrWait reads up to max entries (and about maxBytes) from the
	// read position and advances it. If nothing is available it waits, and
	// cb fires as soon as an entry is added (no polling delay). One pending
	// read per cursor.
	ReadEntriesOrWait(max int, maxBytes int64, cb ReadCallback)
	// CancelPendingRead cancels a waiting ReadEntriesOrWait; it reports
	// whether one was cancelled (cb is then never called).
	CancelPendingRead() bool
	// ReadEntries reads what is available now, without waiting.
	ReadEntries(ctx context.Context, max int, maxBytes int64) ([]Entry, error)
	// ReplayEntries reads the given positions (redelivery), skipping
	// acknowledged ones.
	ReplayEntries(ctx context.Context, positions []base.Position) ([]Entry, error)
	ReadPosition() base.Position
	MarkDeletePosition() base.Position
	// MarkDelete acknowledges everything up to and including pos.
	MarkDelete(pos base.Position) error
	// Delete acknowledges individual positions; the mark-delete position
	// advances over a contiguous acknowledged prefix.
	Delete(positions ...base.Position) error
	// DeleteBatchIndexes records that the given batch indexes of the entry at
	// pos (a batch of size batchSize) are acknowledged; when all are, the
	// entry is deleted.
	DeleteBatchIndexes(pos base.Position, batchSize int, indexes []int) error
	// AckedBatchIndexes returns the acknowledged indexes of a partially
	// acknowledged batch entry (nil if none).
	AckedBatchIndexes(pos base.Position) []int
	IsAcknowledged(pos base.Position) bool
	// Seek moves the read position (redelivery of unacked entries reads from
	// the mark-delete position again with Rewind).
	Seek(pos base.Position)
	Rewind()
	// ResetCursor moves both mark-delete and read positions so that the next
	// entry read is pos (subscription reset, seek by message id or time).
	ResetCursor(ctx context.Context, pos base.Position) error
	// SkipEntries acknowledges the next n unacknowledged entries.
	SkipEntries(ctx context.Context, n int64) error
	// Backlog is the number of unacknowledged entries.
	Backlog() int64
	// Close persists a durable cursor's state (whole) and stops it; a read
	// waiting for entries fails with ErrCursorClosed. The subscription
	// remains: it still holds back trimming, and OpenCursor reopens it
	// where it was. (DeleteCursor removes it.)
	Close(ctx context.Context) error
}

// CursorControl is what this package's cursors offer beyond Cursor (type
// assert a Cursor to it; fakes in other packages need not implement it).
type CursorControl interface {
	// SetActive says whether the cursor has consumers. Entries are cached
	// only while some cursor is active, and the cache keeps what active
	// cursors have yet to read. Cursors are active when opened.
	SetActive(active bool)
	// Flush persists the cursor's state now (acknowledgements are otherwise
	// persisted at most Options.MarkDeleteRateLimit times a second) and
	// returns once it is durable.
	Flush(ctx context.Context) error
}

// InternalStats mirrors the fields of Pulsar's topic internal stats that
// describe the managed ledger.
type InternalStats struct {
	EntriesAddedCounter        int64
	NumberOfEntries            int64
	TotalSize                  int64
	CurrentLedgerEntries       int64
	CurrentLedgerSize          int64
	LastLedgerCreatedTimestamp time.Time
	LastConfirmedEntry         base.Position
	State                      string
	Ledgers                    []LedgerInfo
	Cursors                    map[string]CursorStats
}

// LedgerInfo describes one ledger of a managed ledger.
type LedgerInfo struct {
	LedgerID  base.LedgerID
	Entries   int64
	Size      int64
	Timestamp time.Time
	Offloaded bool
}

// CursorStats describes a cursor in InternalStats.
type CursorStats struct {
	MarkDeletePosition          base.Position
	ReadPosition                base.Position
	PendingReadOps              int
	MessagesConsumedCounter     int64
	CursorLedger                base.LedgerID
	IndividuallyDeletedMessages string
	State                       string
}

// Factory opens managed ledgers by name. Names are Pulsar's:
// "<tenant>/<namespace>/persistent/<encoded topic>", stored under
// /managed-ledgers/<name> in the metadata store. The factory owns what the
// managed ledgers share: the entry cache and the ledger layer.
type Factory interface {
	// Open opens (creating if needed) a managed ledger. Opening one whose
	// last writer died recovers its last ledger first.
	Open(ctx context.Context, name string, cfg Config) (ManagedLedger, error)
	// Delete deletes a managed ledger, its ledgers and cursors.
	Delete(ctx context.Context, name string) error
	// Exists reports whether a managed ledger of that name was created.
	Exists(ctx context.Context, name string) (bool, error)
	Close() error
}
