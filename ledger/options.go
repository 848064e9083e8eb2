package ledger

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/bk"
	"github.com/magnetar/magnetar/metastore"
)

// Defaults. The BookKeeper (or Pulsar) configuration key each one mirrors
// is named beside it.
const (
	DefaultAddEntryTimeout        = 5 * time.Second  // addEntryTimeoutSec = 5
	DefaultReadTimeout            = 5 * time.Second  // readEntryTimeoutSec = 5
	DefaultConnectTimeout         = 10 * time.Second // clientConnectTimeoutMillis = 10000
	DefaultDigestType             = bk.DigestCRC32C  // Pulsar's managedLedgerDigestType
	DefaultMaxInflight            = 10000            // requests outstanding per connection
	DefaultConnectionsPerBookie   = 1                // numChannelsPerBookie (Pulsar: 16)
	DefaultBatchReadMaxCount      = 100              // entries per BATCH_READ (BP-62)
	DefaultBatchReadMaxSize       = 4 << 20          // bytes per BATCH_READ response
	DefaultReadWindow             = 256              // entries (or batches) in flight per Read
	DefaultRecoveryReadWindow     = 16               // entries read ahead by recovery
	DefaultLongPollTimeout        = 10 * time.Second // how long one long-poll waits at a bookie
	DefaultReconnectBackoff       = 100 * time.Millisecond
	DefaultMetadataUpdateAttempts = 100 // CAS retries before giving up
)

// BookieResolver maps a bookie id (as registered under /ledgers/available
// and stored in ensembles) to a dialable "host:port" address.
type BookieResolver func(bookieID string) (string, error)

// Hooks are optional callbacks for metrics. They run on the client's
// goroutines and must return quickly. Any may be nil.
type Hooks struct {
	// AddCompleted: an add was confirmed (err nil) or failed, latency
	// measured from AddEntry to the callback.
	AddCompleted func(ledger base.LedgerID, latency time.Duration, err error)
	// ReadCompleted: a Read returned n entries (or failed).
	ReadCompleted func(ledger base.LedgerID, n int, latency time.Duration, err error)
	// EnsembleChanged: bookie replaced replacement at an ensemble index,
	// from entry first on.
	EnsembleChanged func(ledger base.LedgerID, first base.EntryID, index int, replaced, replacement string)
	// Recovered: a ledger was recovered and closed at lastEntry.
	Recovered func(ledger base.LedgerID, lastEntry base.EntryID, err error)
	// BookieError: a request to a bookie failed (timeouts and connection
	// losses included).
	BookieError func(bookie string, err error)
}

// Options configure a Client. The zero value of every field means its
// default; NewClient calls EnsureDefaults and then Validate.
type Options struct {
	// Store is the metadata store holding ledger metadata, ledger ids and
	// the bookie registry. Required. The client does not close it.
	Store metastore.Store
	// LedgersRoot is BookKeeper's root path (zkLedgersRootPath). Default
	// "/ledgers".
	LedgersRoot string
	// BookieResolver maps bookie ids to addresses; default: the id is the
	// address.
	BookieResolver BookieResolver
	// Dial opens connections to bookies; default a net.Dialer with
	// ConnectTimeout.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	// AddEntryTimeout: a bookie that has not answered an add by then is
	// treated as failed and replaced (addEntryTimeoutSec). Default 5s.
	AddEntryTimeout time.Duration
	// ReadTimeout bounds a read request to one bookie before the next
	// replica is tried (readEntryTimeoutSec). Default 5s.
	ReadTimeout time.Duration
	// SpeculativeReadTimeout: when positive, a read that has no answer
	// after this long is also sent to the next replica
	// (speculativeReadTimeout; Pulsar's default 0 = off).
	SpeculativeReadTimeout time.Duration
	// ConnectTimeout bounds a connection attempt. Default 10s.
	ConnectTimeout time.Duration
	// ReconnectBackoff: after a failed connection attempt to a bookie,
	// requests to it fail at once for this long instead of dialling
	// again. Default 100ms; negative: no backoff.
	ReconnectBackoff time.Duration
	// LongPollTimeout is how long one long-poll request waits at a bookie
	// for the LAC to advance. Default 10s.
	LongPollTimeout time.Duration

	// DigestType of new ledgers (managedLedgerDigestType). Default CRC32C.
	DigestType bk.DigestType
	// MaxInflight bounds the requests outstanding on one bookie
	// connection; senders block (adds and reads wait, up to their timeout)
	// when it is reached. Default 10000.
	MaxInflight int
	// ConnectionsPerBookie: connections per bookie and protocol; a
	// ledger's requests always use the same one. Default 1.
	ConnectionsPerBookie int
	// BatchReadMaxCount: entries asked for by one BATCH_READ_ENTRY request
	// when a segment has E == W. Default 100; negative disables batch
	// reads.
	BatchReadMaxCount int
	// BatchReadMaxSize bounds the bytes of one batch read response.
	// Default 4 MiB.
	BatchReadMaxSize int
	// ReadWindow bounds the requests one Read keeps in flight. Default 256.
	ReadWindow int
	// RecoveryReadWindow: entries past the LAC read ahead by recovery
	// (recoveryReadBatchSize, which BookKeeper sets to 1). Default 16.
	RecoveryReadWindow int
	// MetadataUpdateAttempts bounds the re-read and retry loop of a
	// metadata compare-and-set. Default 100.
	MetadataUpdateAttempts int

	// Logger receives the client's log lines; nil means slog.Default().
	Logger *slog.Logger
	// Hooks receive metrics events.
	Hooks Hooks
}

// EnsureDefaults replaces zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.LedgersRoot == "" {
		o.LedgersRoot = metastore.LedgersRoot
	}
	if o.BookieResolver == nil {
		o.BookieResolver = func(id string) (string, error) { return id, nil }
	}
	if o.AddEntryTimeout == 0 {
		o.AddEntryTimeout = DefaultAddEntryTimeout
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.ReconnectBackoff == 0 {
		o.ReconnectBackoff = DefaultReconnectBackoff
	}
	if o.LongPollTimeout == 0 {
		o.LongPollTimeout = DefaultLongPollTimeout
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: o.ConnectTimeout}
		o.Dial = d.DialContext
	}
	if o.DigestType == 0 {
		o.DigestType = DefaultDigestType
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.ConnectionsPerBookie == 0 {
		o.ConnectionsPerBookie = DefaultConnectionsPerBookie
	}
	if o.BatchReadMaxCount == 0 {
		o.BatchReadMaxCount = DefaultBatchReadMaxCount
	}
	if o.BatchReadMaxSize == 0 {
		o.BatchReadMaxSize = DefaultBatchReadMaxSize
	}
	if o.ReadWindow == 0 {
		o.ReadWindow = DefaultReadWindow
	}
	if o.RecoveryReadWindow == 0 {
		o.RecoveryReadWindow = DefaultRecoveryReadWindow
	}
	if o.MetadataUpdateAttempts == 0 {
		o.MetadataUpdateAttempts = DefaultMetadataUpdateAttempts
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate checks the options after EnsureDefaults.
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Store == nil:
		return bad("Store is required")
	case metastore.ValidatePath(o.LedgersRoot) != nil || o.LedgersRoot == "/":
		return bad("LedgersRoot %q is not a valid path", o.LedgersRoot)
	case o.AddEntryTimeout < 0, o.ReadTimeout < 0, o.ConnectTimeout < 0, o.LongPollTimeout < 0:
		return bad("timeouts must be positive")
	case o.SpeculativeReadTimeout < 0:
		return bad("SpeculativeReadTimeout %v is negative", o.SpeculativeReadTimeout)
	case o.DigestType.Size() == 0 && o.DigestType != bk.DigestDummy:
		return bad("unknown DigestType %d", int32(o.DigestType))
	case o.MaxInflight < 1:
		return bad("MaxInflight %d below 1", o.MaxInflight)
	case o.ConnectionsPerBookie < 1 || o.ConnectionsPerBookie > 64:
		return bad("ConnectionsPerBookie %d outside [1, 64]", o.ConnectionsPerBookie)
	case o.BatchReadMaxSize < 1:
		return bad("BatchReadMaxSize %d below 1", o.BatchReadMaxSize)
	case o.ReadWindow < 1:
		return bad("ReadWindow %d below 1", o.ReadWindow)
	case o.RecoveryReadWindow < 1:
		return bad("RecoveryReadWindow %d below 1", o.RecoveryReadWindow)
	case o.MetadataUpdateAttempts < 1:
		return bad("MetadataUpdateAttempts %d below 1", o.MetadataUpdateAttempts)
	}
	return nil
}

// MaxEnsembleSize bounds E (acknowledgements are tracked in a 64-bit set).
const MaxEnsembleSize = 64

// CreateOptions say how a new ledger is replicated.
type CreateOptions struct {
	// Ensemble is E, the number of bookies the ledger is striped over.
	Ensemble int
	// WriteQuorum is W, how many bookies store each entry.
	WriteQuorum int
	// AckQuorum is A, how many of them must acknowledge an entry before it
	// is confirmed. E >= W >= A >= 1.
	AckQuorum int
	// Password derives the master key (SHA-1("ledger" ‖ password)) that
	// authorises adds and fencing; readers must present it too.
	Password []byte
	// Custom metadata stored with the ledger (Pulsar stores the component
	// and the managed ledger's name).
	Custom map[string][]byte
}

// Validate checks the quorum sizes.
func (o *CreateOptions) Validate() error {
	if o.Ensemble < 1 || o.Ensemble > MaxEnsembleSize || o.WriteQuorum < 1 || o.AckQuorum < 1 ||
		o.WriteQuorum > o.Ensemble || o.AckQuorum > o.WriteQuorum {
		return fmt.Errorf("%w: need %d >= E >= W >= A >= 1, got E=%d W=%d A=%d",
			ErrBadOptions, MaxEnsembleSize, o.Ensemble, o.WriteQuorum, o.AckQuorum)
	}
	return nil
}

// OpenOptions say how a ledger is opened for reading.
type OpenOptions struct {
	// Recovery fences the ledger on its bookies and closes it at the last
	// entry that may have been confirmed (BookKeeper's openLedger). Without
	// it (openLedgerNoRecovery) the ledger is read as it is, bounded by the
	// last add confirmed.
	Recovery bool
}
