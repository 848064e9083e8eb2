package managedledger

import (
	"context"
	"slices"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/ledger"
)

// NewBookKeeper adapts the replicated-ledger client to the BookKeeper the
// managed ledger writes to. Ledgers are opened with password (Pulsar uses
// one password, managedLedgerPassword, for every managed ledger's ledgers);
// ledgers are created with the Config's Password, which should be the same.
// The adapter does not close the client.
func NewBookKeeper(c *ledger.Client, password []byte) BookKeeper {
	return &ledgerBK{c: c, password: slices.Clone(password)}
}

type ledgerBK struct {
	c        *ledger.Client
	password []byte
}

func (b *ledgerBK) Create(ctx context.Context, cfg LedgerConfig) (WriteLedger, error) {
	h, err := b.c.CreateLedger(ctx, ledger.CreateOptions{
		Ensemble: cfg.EnsembleSize, WriteQuorum: cfg.WriteQuorum, AckQuorum: cfg.AckQuorum,
		Password: cfg.Password, Custom: cfg.Custom,
	})
	if err != nil {
		return nil, err
	}
	return ledgerWriter{h}, nil
}

func (b *ledgerBK) Open(ctx context.Context, id base.LedgerID, recover bool) (ReadLedger, error) {
	h, err := b.c.OpenLedger(ctx, id, b.password, ledger.OpenOptions{Recovery: recover})
	if err != nil {
		return nil, err
	}
	return ledgerReadHandle{h}, nil
}

func (b *ledgerBK) Delete(ctx context.Context, id base.LedgerID) error {
	return b.c.DeleteLedger(ctx, id)
}

func convertEntries(es []ledger.Entry) []LedgerEntry {
	out := make([]LedgerEntry, len(es))
	for i, e := range es {
		out[i] = LedgerEntry{ID: e.ID, Data: e.Data}
	}
	return out
}

type ledgerWriter struct{ h *ledger.WriteHandle }

func (w ledgerWriter) ID() base.LedgerID                          { return w.h.ID() }
func (w ledgerWriter) AddEntry(payload *bufs.Buf, cb AddCallback) { w.h.AddEntry(payload, cb) }
func (w ledgerWriter) LastAddConfirmed() base.EntryID             { return w.h.LastAddConfirmed() }
func (w ledgerWriter) Length() int64                              { return w.h.Length() }
func (w ledgerWriter) Close(ctx context.Context) error            { return w.h.Close(ctx) }
func (w ledgerWriter) Read(ctx context.Context, first, last base.EntryID) ([]LedgerEntry, error) {
	es, err := w.h.Read(ctx, first, last)
	if err != nil {
		return nil, err
	}
	return convertEntries(es), nil
}

type ledgerReadHandle struct{ h *ledger.ReadHandle }

func (r ledgerReadHandle) ID() base.LedgerID              { return r.h.ID() }
func (r ledgerReadHandle) LastAddConfirmed() base.EntryID { return r.h.LastAddConfirmed() }
func (r ledgerReadHandle) Close() error                   { return r.h.Close() }

// Length is the ledger's length once it is closed (after recovery); 0 for
// a ledger still open, whose length the reader does not learn.
func (r ledgerReadHandle) Length() int64 {
	if md := r.h.Metadata(); md.State == ledger.StateClosed {
		return md.Length
	}
	return 0
}

func (r ledgerReadHandle) Read(ctx context.Context, first, last base.EntryID) ([]LedgerEntry, error) {
	es, err := r.h.Read(ctx, first, last)
	if err != nil {
		return nil, err
	}
	return convertEntries(es), nil
}
