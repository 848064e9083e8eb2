package ledger

import (
	"errors"
	"fmt"

	"github.com/magnetar/magnetar/internal/base"
)

// Errors. Those that belong to an error class of internal/base wrap it, so
// callers may test either (errors.Is(err, base.ErrFenced)).
var (
	// ErrBadOptions: Options, CreateOptions or a call's arguments are
	// invalid.
	ErrBadOptions = errors.New("ledger: bad options")
	// ErrNotEnoughBookies: fewer writable bookies are available than the
	// ensemble (or a replacement) needs.
	ErrNotEnoughBookies = errors.New("ledger: not enough bookies available")
	// ErrFenced: the ledger was fenced (opened for recovery by another
	// client, or closed by it); this handle may add nothing more.
	ErrFenced = fmt.Errorf("ledger: %w", base.ErrFenced)
	// ErrLedgerClosed: the ledger is closed in its metadata; it will never
	// have more entries.
	ErrLedgerClosed = fmt.Errorf("ledger: ledger is closed: %w", base.ErrClosed)
	// ErrHandleClosed: the handle (or the client) was closed.
	ErrHandleClosed = fmt.Errorf("ledger: handle %w", base.ErrClosed)
	// ErrClientClosed: the client was closed.
	ErrClientClosed = fmt.Errorf("ledger: client %w", base.ErrClosed)
	// ErrNoLedger: the ledger has no metadata (never created, or deleted).
	ErrNoLedger = fmt.Errorf("ledger: %w", base.ErrNoLedger)
	// ErrUnauthorized: the password does not match the ledger's, or a bookie
	// refused the master key.
	ErrUnauthorized = fmt.Errorf("ledger: %w", base.ErrUnauthorized)
	// ErrBeyondLAC: a read asked for entries past the last add confirmed
	// (or past the last entry of a closed ledger).
	ErrBeyondLAC = fmt.Errorf("ledger: read past the last confirmed entry: %w", base.ErrNoEntry)
	// ErrTimeout: a bookie did not answer a request in time.
	ErrTimeout = errors.New("ledger: bookie request timed out")
	// ErrConnection: the connection to a bookie failed or was lost.
	ErrConnection = errors.New("ledger: bookie connection failed")
	// ErrMetadata: ledger metadata that cannot be parsed or is
	// inconsistent.
	ErrMetadata = fmt.Errorf("ledger: bad ledger metadata: %w", base.ErrCorruption)
	// ErrMetadataConflict: the stored metadata changed in a way this client
	// cannot reconcile (for example another writer changed the ensemble).
	ErrMetadataConflict = errors.New("ledger: conflicting ledger metadata")
	// ErrRecovery: recovery could not decide where the ledger ends (too few
	// bookies answered); retry when more bookies are reachable.
	ErrRecovery = errors.New("ledger: recovery could not complete")
	// ErrProtocol: a bookie sent bytes this client cannot accept.
	ErrProtocol = fmt.Errorf("ledger: protocol error: %w", base.ErrCorruption)
	// ErrNotSupported: the bookie does not support a request (for example
	// a v3 long poll).
	ErrNotSupported = errors.New("ledger: operation not supported by the bookie")
)
