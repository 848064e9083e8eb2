package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/magnetar/magnetar/engine"
	"github.com/magnetar/magnetar/engine/cookie"
	"github.com/magnetar/magnetar/engine/server"
	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/config"
	"github.com/magnetar/magnetar/internal/vfs"
	"github.com/magnetar/magnetar/journal"
	"github.com/magnetar/magnetar/ledgerstore"
	"github.com/magnetar/magnetar/metastore"
)

// bookieNode is a running bookie: engine, server and registration.
type bookieNode struct {
	eng *engine.Bookie
	srv *server.Server
	reg *server.Registration
	id  string
}

// engineOptions maps the bookie keys of the configuration to the engine's
// options.
func engineOptions(b config.BookieConfig, log *slog.Logger) engine.Options {
	mb := func(n int) int64 { return int64(n) << 20 }
	return engine.Options{
		Logger:        log,
		FlushInterval: b.FlushInterval,
		GCInterval:    b.GCWaitTime,
		Journal: journal.Options{
			Dirs:                    b.JournalDirs(),
			DisableDirectIO:         !b.JournalDirectIO,
			Alignment:               b.JournalAlignmentSize,
			MaxSegmentBytes:         mb(b.JournalMaxSizeMB),
			PreallocBytes:           mb(b.JournalPreAllocSizeMB),
			NoZeroFill:              !b.JournalPreAllocZeroFill,
			MaxGroupWait:            b.JournalMaxGroupWait,
			BufferedWritesThreshold: int(b.JournalBufferedWritesThreshold),
			QueueMaxBytes:           b.JournalQueueMaxBytes,
			MaxBackups:              b.JournalMaxBackups,
		},
		Storage: ledgerstore.Options{
			Dirs:                     b.LedgerDirectories,
			WriteCacheMaxBytes:       mb(b.WriteCacheMaxSizeMb),
			ReadCacheMaxBytes:        mb(b.ReadAheadCacheMaxSizeMb),
			ReadAheadBatchSize:       b.ReadAheadCacheBatchSize,
			ReadAheadBatchBytes:      b.ReadAheadCacheBatchBytes,
			BufferedReads:            !b.EntryLogDirectReads,
			EntryLogSizeLimit:        b.LogSizeLimit,
			MinorCompactionThreshold: b.MinorCompactionThreshold,
			MinorCompactionInterval:  b.MinorCompactionInterval,
			MajorCompactionThreshold: b.MajorCompactionThreshold,
			MajorCompactionInterval:  b.MajorCompactionInterval,
			CompactionRateBytes:      b.CompactionRateByBytes,
			DiskUsageThreshold:       b.DiskUsageThreshold,
			DiskUsageLwmThreshold:    b.DiskUsageLwmThreshold,
			DiskCheckInterval:        b.DiskCheckInterval,
		},
	}
}

// startBookie opens the storage (replaying the journal), serves it on
// bookiePort and registers it under ledgersRoot in store.
func startBookie(ctx context.Context, p *proc, store metastore.Store, ledgersRoot string) (*bookieNode, error) {
	cfg := p.Config
	log := p.Logger.With("component", "bookie")
	n := &bookieNode{}
	opts := engineOptions(cfg.Bookie, log)
	var modeChanged = make(chan bool, 1)
	opts.OnModeChange = func(readOnly bool) {
		select {
		case modeChanged <- readOnly:
		default:
			<-modeChanged
			modeChanged <- readOnly
		}
	}
	if store != nil {
		opts.LedgerExists = func(ctx context.Context, l base.LedgerID) (bool, error) {
			_, ok, err := store.Exists(ctx, metastore.LedgerPath(ledgersRoot, int64(l)))
			return ok, err
		}
	}
	// Listen first: the bookie's id is its address, and the cookies are
	// checked against it before the storage is opened.
	addr := net.JoinHostPort(cfg.Network.BindAddress, strconv.Itoa(cfg.Network.BookiePort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bookie: listen: %w", err)
	}
	n.id = bookieID(cfg, ln.Addr())
	if store != nil {
		if _, err := cookie.Check(ctx, cookie.Params{
			FS: vfs.Default, Store: store, Root: ledgersRoot, BookieID: n.id,
			JournalDirs: opts.Journal.Dirs, LedgerDirs: opts.Storage.Dirs, Logger: log,
		}); err != nil {
			ln.Close()
			return nil, err
		}
	}
	eng, err := engine.Open(opts)
	if err != nil {
		ln.Close()
		return nil, err
	}
	n.eng = eng
	srv, err := server.New(eng, server.Options{Listener: ln, MaxFrameSize: cfg.Network.NettyMaxFrameSizeBytes, Logger: log})
	if err != nil {
		ln.Close()
		_ = eng.Close()
		return nil, err
	}
	n.srv = srv
	srv.Serve()
	if p.Mux != nil {
		server.RegisterHTTP(p.Mux, eng, srv)
	}
	if p.Registry != nil {
		registerBookieMetrics(p.Registry, eng, srv)
	}
	if store != nil {
		reg, err := server.Register(ctx, store, ledgersRoot, n.id, eng.ReadOnly(), log)
		if err != nil {
			n.close()
			return nil, err
		}
		n.reg = reg
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case ro := <-modeChanged:
					if err := reg.SetReadOnly(ctx, ro); err != nil {
						log.Error("moving the bookie registration failed", "readOnly", ro, "err", err)
					} else {
						log.Warn("bookie mode changed", "readOnly", ro)
					}
				}
			}
		}()
	}
	log.Info("bookie started", "id", n.id, "address", srv.Addr().String(),
		"journal", cfg.Bookie.JournalDirs(), "ledgers", cfg.Bookie.LedgerDirectories)
	return n, nil
}

// bookieID is the bookie's address as others reach it: advertisedAddress
// (or the bind address, or 127.0.0.1 for a wildcard) and the port.
func bookieID(cfg *config.Config, addr net.Addr) string {
	host := cfg.Network.AdvertisedAddress
	if host == "" {
		host = cfg.Network.BindAddress
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	_, port, _ := net.SplitHostPort(addr.String())
	return net.JoinHostPort(host, port)
}

func (n *bookieNode) close() error {
	var errs []error
	if n.reg != nil {
		errs = append(errs, n.reg.Close(context.Background()))
	}
	if n.srv != nil {
		errs = append(errs, n.srv.Close())
	}
	if n.eng != nil {
		errs = append(errs, n.eng.Close())
	}
	return errors.Join(errs...)
}

func registerBookieMetrics(reg prometheus.Registerer, eng *engine.Bookie, srv *server.Server) {
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
	counter("bookie_add_entry_count", "Entries added.", func() float64 { return float64(eng.Stats().Adds) })
	counter("bookie_journal_sync_count", "Journal fdatasyncs (commit groups).", func() float64 { return float64(eng.Stats().Journal.Syncs) })
	counter("bookie_journal_written_bytes", "Bytes written to journal segments.", func() float64 { return float64(eng.Stats().Journal.WrittenBytes) })
	counter("bookie_flush_count", "Write cache segments flushed to entry logs.", func() float64 { return float64(eng.Stats().Storage.Flushes) })
	counter("bookie_entry_corruption_count", "Entry-log records that failed a check on read.", func() float64 { return float64(eng.Stats().Storage.Corruptions) })
	counter("bookie_index_rebuild_count", "Damaged index files rebuilt from their entry logs at start.", func() float64 { return float64(eng.Stats().Storage.IndexRebuilds) })
	counter("bookie_checkpoint_count", "Checkpoints completed.", func() float64 { return float64(eng.Stats().Checkpoints) })
	counter("bookie_read_entry_count", "Read requests served.", func() float64 { return float64(srv.Stats.Reads.Load()) })
	counter("bookie_request_errors", "Requests answered with an error.", func() float64 { return float64(srv.Stats.Errors.Load()) })
	gauge("bookie_write_cache_size", "Bytes held by the write cache.", func() float64 { return float64(eng.Stats().Storage.WriteCacheBytes) })
	gauge("bookie_read_only", "1 while the bookie refuses adds.", func() float64 {
		if eng.ReadOnly() {
			return 1
		}
		return 0
	})
}

func bookieRun(ctx context.Context, p *proc, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	storeURL, root, err := p.Config.Metadata.BookieMetadataStore()
	if err != nil {
		return configError{err}
	}
	store, err := metastore.Open(storeURL, metastore.Options{Logger: p.Logger})
	if err != nil {
		return fmt.Errorf("metadata store %s: %w", storeURL, err)
	}
	defer store.Close()
	n, err := startBookie(ctx, p, store, root)
	if err != nil {
		return err
	}
	<-ctx.Done()
	p.Logger.Info("bookie stopping")
	return n.close()
}

// withDeleteCookie gives a command that starts a bookie the flag
// --delete-cookie, which deletes the bookie's cookie instead of starting.
func withDeleteCookie(c *command, standalone bool) *command {
	var del bool
	run := c.run
	c.flags = func(fs *flag.FlagSet) {
		fs.BoolVar(&del, "delete-cookie", false, "delete the bookie's cookie (in the metadata store and its "+
			"directories) and exit, accepting storage the bookie refused to start on; its next start stamps new cookies")
	}
	c.run = func(ctx context.Context, p *proc, args []string) error {
		if del {
			return deleteCookieRun(ctx, p, args, standalone)
		}
		return run(ctx, p, args)
	}
	return c
}

// deleteCookieRun is --delete-cookie: it removes the cookie of the bookie
// the configuration describes, with the bookie stopped.
func deleteCookieRun(ctx context.Context, p *proc, args []string, standalone bool) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	cfg := p.Config
	if cfg.Network.BookiePort == 0 {
		return configError{errors.New("--delete-cookie: bookiePort is 0, so the bookie has no fixed id")}
	}
	root := metastore.LedgersRoot
	var store metastore.Store
	if standalone {
		meta, _, closeStores, err := openStores(p)
		if err != nil {
			return err
		}
		defer closeStores()
		store = meta
	} else {
		url, r, err := cfg.Metadata.BookieMetadataStore()
		if err != nil {
			return configError{err}
		}
		if store, err = metastore.Open(url, metastore.Options{Logger: p.Logger}); err != nil {
			return fmt.Errorf("metadata store %s: %w", url, err)
		}
		defer store.Close()
		root = r
	}
	id := bookieID(cfg, &net.TCPAddr{Port: cfg.Network.BookiePort})
	dirs := append(cfg.Bookie.JournalDirs(), cfg.Bookie.LedgerDirectories...)
	if err := cookie.Delete(ctx, vfs.Default, store, root, id, dirs); err != nil {
		return err
	}
	fmt.Fprintf(p.Stdout, "deleted the cookie of bookie %s (%s and %s in %q)\n", id, cookie.Path(root, id), cookie.FileName, dirs)
	return nil
}
