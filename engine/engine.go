// Package engine is the bookie without its network: it ties the journal and
// ledger storage together and keeps BookKeeper's promises.
//
//   - An add is acknowledged only after the journal record holding it is
//     durable (the journal's fdatasync returned). The entry goes to the write
//     cache first and to the journal second ("memory first, journal
//     second"), so every record below a journal mark is already in ledger
//     storage's write cache when the mark is taken.
//   - Fencing and explicit LACs are journaled like entries and acknowledged
//     after the same fsync; a fenced ledger refuses normal adds and accepts
//     recovery adds.
//   - The checkpoint loop takes a journal mark, flushes ledger storage (which
//     syncs entry logs, index and ledger metadata), persists the mark
//     atomically (lastMark in the first ledger directory), and only then lets
//     the journal delete the segments below it. A restart replays the journal
//     from the persisted mark into ledger storage; replay is idempotent.
//
// Payload copies: the caller's buffer is referenced (not copied) by the write
// cache, and copied once into the journal's aligned buffer; the flush later
// copies it into an entry log.
//
// Lock order: Bookie.mu, then ledgerState.mu. Neither is held across I/O.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/journal"
	"github.com/magnetar/magnetar/ledgerstore"
)

// Errors, wrapping the base classes.
var (
	ErrFenced       = fmt.Errorf("engine: %w", base.ErrFenced)
	ErrUnauthorized = fmt.Errorf("engine: %w: master key mismatch", base.ErrUnauthorized)
	ErrClosed       = fmt.Errorf("engine: %w", base.ErrClosed)
	ErrReadOnly     = fmt.Errorf("engine: %w", base.ErrReadOnly)
)

// CheckpointFile is the name of the persisted journal mark in the first
// ledger directory (BookKeeper calls it lastMark).
const CheckpointFile = "lastMark"

// DefaultFlushInterval is how often the checkpoint loop runs (flushInterval).
const DefaultFlushInterval = 60 * time.Second

// DefaultGCInterval is how often ledgers deleted from the metadata store are
// looked for (gcWaitTime).
const DefaultGCInterval = 15 * time.Minute

// Options configure a Bookie. Zero values mean defaults.
type Options struct {
	// Journal configures the journal; its FS and Logger default to the
	// Bookie's. Journal.Dirs is required (journalDirectories).
	Journal journal.Options
	// Storage configures ledger storage; Storage.Dirs is required
	// (ledgerDirectories).
	Storage ledgerstore.Options
	// FS is the filesystem for both; nil means vfs.Default.
	FS vfs.FS
	// FlushInterval is the checkpoint period; negative disables the loop
	// (Checkpoint still works).
	FlushInterval time.Duration
	// LedgerExists tells whether a ledger still has metadata; the garbage
	// collector deletes those that do not. Nil disables that collection.
	LedgerExists func(ctx context.Context, ledger base.LedgerID) (bool, error)
	// GCInterval is the period of that collection; negative disables the loop.
	GCInterval time.Duration
	// OnModeChange is told when the bookie turns read-only or writable.
	OnModeChange func(readOnly bool)
	Logger       *slog.Logger
}

// EnsureDefaults fills in defaults.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Journal.FS == nil {
		o.Journal.FS = o.FS
	}
	if o.Journal.Logger == nil {
		o.Journal.Logger = o.Logger
	}
	if o.Storage.FS == nil {
		o.Storage.FS = o.FS
	}
	if o.Storage.Logger == nil {
		o.Storage.Logger = o.Logger
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.GCInterval == 0 {
		o.GCInterval = DefaultGCInterval
	}
}

// Validate checks the options.
func (o *Options) Validate() error {
	if len(o.Journal.Dirs) == 0 {
		return errors.New("engine: no journal directory")
	}
	if len(o.Storage.Dirs) == 0 {
		return errors.New("engine: no ledger directory")
	}
	return nil
}

// AddCallback is told the outcome of an add, fence or LAC write: nil once it
// is durable in the journal, or the error that stopped it. It is called once,
// from the journal's sync goroutine: it must not block.
type AddCallback interface {
	AddComplete(err error)
}

// Bookie is a bookie's storage engine.
type Bookie struct {
	opts  Options
	log   *slog.Logger
	j     *journal.Journal
	store *ledgerstore.Store

	mu struct {
		sync.Mutex
		ledgers map[base.LedgerID]*ledgerState
	}
	ops sync.Pool // *op

	checkpointMu sync.Mutex // one checkpoint at a time
	closing      chan struct{}
	closed       atomic.Bool
	wg           sync.WaitGroup

	stats struct {
		adds, addErrors, fences, checkpoints atomic.Int64
	}
}

// Open opens the bookie's storage, replays the journal from the last
// checkpoint into ledger storage, and starts the checkpoint loop.
func Open(opts Options) (*Bookie, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b := &Bookie{opts: opts, log: opts.Logger, closing: make(chan struct{})}
	b.mu.ledgers = make(map[base.LedgerID]*ledgerState)
	b.ops.New = func() any { return &op{b: b} }

	sopts := opts.Storage
	if opts.OnModeChange != nil {
		sopts.OnModeChange = func(m ledgerstore.Mode) { opts.OnModeChange(m == ledgerstore.ReadOnly) }
	}
	store, err := ledgerstore.Open(sopts)
	if err != nil {
		return nil, fmt.Errorf("engine: open ledger storage: %w", err)
	}
	b.store = store
	j, err := journal.Open(opts.Journal)
	if err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("engine: open journal: %w", err)
	}
	b.j = j
	if err := b.replay(); err != nil {
		_ = j.Close()
		_ = store.Close()
		return nil, err
	}
	if opts.FlushInterval > 0 {
		b.wg.Add(1)
		go b.checkpointLoop()
	}
	if opts.GCInterval > 0 && opts.LedgerExists != nil {
		b.wg.Add(1)
		go b.gcLoop()
	}
	return b, nil
}

func (b *Bookie) checkpointPath() string {
	return filepath.Join(b.opts.Storage.Dirs[0], CheckpointFile)
}

// replay re-applies journal records from the persisted checkpoint to ledger
// storage, then checkpoints so that they need not be replayed again.
func (b *Bookie) replay() error {
	cp, err := journal.LoadCheckpoint(b.opts.FS, b.checkpointPath())
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	ctx := context.Background()
	var n int
	start := time.Now()
	err = b.j.Replay(cp, func(pos journal.Pos, h record.Header, payload []byte) error {
		n++
		l, e := base.LedgerID(h.Ledger), base.EntryID(h.Entry)
		var err error
		switch h.Kind {
		case record.KindMeta:
			err = b.store.SetMasterKey(l, payload)
		case record.KindEntry:
			buf := bufs.Get(len(payload))
			copy(buf.Bytes(), payload)
			err = b.store.AddEntry(ctx, l, e, buf)
			buf.Release()
		case record.KindFence:
			_, err = b.store.SetFenced(l)
		case record.KindLAC:
			err = b.store.SetExplicitLAC(l, payload)
		case record.KindBarrier:
		default:
			return fmt.Errorf("engine: replay: journal record of unknown kind %d at %v", h.Kind, pos)
		}
		if errors.Is(err, base.ErrNoLedger) {
			return nil // deleted since: nothing to restore
		}
		if err != nil {
			return fmt.Errorf("engine: replay record at %v (ledger %d entry %d): %w", pos, l, e, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.log.Info("journal replayed", "records", n, "from", fmt.Sprint(cp), "took", time.Since(start))
	return b.Checkpoint(ctx)
}

// Checkpoint makes everything journaled so far durable in ledger storage and
// lets the journal delete what lies below it.
func (b *Bookie) Checkpoint(ctx context.Context) error {
	b.checkpointMu.Lock()
	defer b.checkpointMu.Unlock()
	mark := b.j.Mark()
	if err := b.store.Flush(ctx); err != nil {
		return fmt.Errorf("engine: checkpoint flush: %w", err)
	}
	if err := journal.SaveCheckpoint(b.opts.FS, b.checkpointPath(), mark); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if err := b.j.SetCheckpoint(mark); err != nil {
		// The mark is persisted; old segments linger until the next one.
		b.log.Warn("journal segments not released", "err", err)
	}
	b.stats.checkpoints.Add(1)
	return nil
}

func (b *Bookie) checkpointLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-b.closing:
			return
		case <-t.C:
			if err := b.Checkpoint(context.Background()); err != nil && !b.closed.Load() {
				b.log.Error("checkpoint failed", "err", err)
			}
		}
	}
}

func (b *Bookie) gcLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-b.closing:
			return
		case <-t.C:
			if _, err := b.CollectDeletedLedgers(context.Background()); err != nil && !b.closed.Load() {
				b.log.Warn("ledger garbage collection failed", "err", err)
			}
		}
	}
}

// CollectDeletedLedgers deletes from ledger storage every ledger whose
// metadata no longer exists (Options.LedgerExists), one point lookup per
// ledger held (never a listing of all metadata). It returns how many it
// deleted.
func (b *Bookie) CollectDeletedLedgers(ctx context.Context) (int, error) {
	if b.opts.LedgerExists == nil {
		return 0, nil
	}
	n := 0
	for _, l := range b.store.Ledgers() {
		ok, err := b.opts.LedgerExists(ctx, l)
		if err != nil {
			return n, err
		}
		if ok {
			continue
		}
		if err := b.DeleteLedger(ctx, l); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Close checkpoints, then closes the journal and ledger storage.
func (b *Bookie) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	close(b.closing)
	b.wg.Wait()
	errCk := b.Checkpoint(context.Background())
	errJ := b.j.Close()
	errS := b.store.Close()
	return errors.Join(errCk, errJ, errS)
}

// ReadOnly reports whether the bookie refuses adds (every ledger directory is
// full).
func (b *Bookie) ReadOnly() bool { return b.store.Mode() == ledgerstore.ReadOnly }

// Stats are the engine's counters and those of its parts.
type Stats struct {
	Adds, AddErrors, Fences, Checkpoints int64
	Journal                              journal.Stats
	Storage                              ledgerstore.Stats
}

// Stats returns the current counters.
func (b *Bookie) Stats() Stats {
	return Stats{
		Adds:        b.stats.adds.Load(),
		AddErrors:   b.stats.addErrors.Load(),
		Fences:      b.stats.fences.Load(),
		Checkpoints: b.stats.checkpoints.Load(),
		Journal:     b.j.Stats(),
		Storage:     b.store.Stats(),
	}
}
