package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/magnetar/magnetar/bench"
	"github.com/magnetar/magnetar/internal/config"
	"github.com/magnetar/magnetar/results"
)

func init() { benchStandalone = newStandaloneBenchTarget }

// standaloneTarget is a standalone node (embedded metadata store, one bookie,
// one broker) in this process, on loopback ports chosen by the kernel, with
// its data under one directory: what `magnetar bench` measures by default.
// It is the same assembly as `magnetar standalone`, with the standalone
// role's defaults.
type standaloneTarget struct {
	dataDir string
	log     *slog.Logger
	cfg     *config.Config

	node *standaloneNode
	web  *http.Server
}

func newStandaloneBenchTarget(dataDir string, logger *slog.Logger) (bench.Target, error) {
	cfg := config.Defaults(config.Standalone)
	set := func(key, value string) error {
		return cfg.Set(config.Setting{Key: key, Value: value, Source: config.Source{Name: "magnetar bench"}})
	}
	for _, kv := range [][2]string{
		{"bindAddress", "127.0.0.1"},
		{"advertisedAddress", "127.0.0.1"},
		{"brokerServicePort", "0"},
		{"webServicePort", "0"},
		{"bookiePort", "0"},
		{"metadataStoreUrl", "embedded:" + filepath.Join(dataDir, "metadata")},
		{"journalDirectory", filepath.Join(dataDir, "bookkeeper", "journal")},
		{"ledgerDirectories", filepath.Join(dataDir, "bookkeeper", "ledgers")},
	} {
		if err := set(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &standaloneTarget{dataDir: dataDir, log: logger, cfg: cfg}, nil
}

func (t *standaloneTarget) Start(ctx context.Context) (bench.Endpoint, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return bench.Endpoint{}, err
	}
	mux := http.NewServeMux()
	p := &proc{Config: t.cfg, Logger: t.log, Registry: prometheus.NewRegistry(), Mux: mux, HTTPAddr: ln.Addr(),
		Stdout: io.Discard, Stderr: io.Discard}
	t.web = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = t.web.Serve(ln) }()

	if t.node, err = startStandalone(ctx, p); err != nil {
		t.Stop(ctx)
		return bench.Endpoint{}, err
	}
	return bench.Endpoint{ServiceURL: t.node.broker.b.ServiceURL(), AdminURL: "http://" + ln.Addr().String()}, nil
}

func (t *standaloneTarget) Stop(ctx context.Context) error {
	var errs []error
	if t.node != nil {
		errs = append(errs, t.node.close(ctx))
		t.node = nil
	}
	if t.web != nil {
		errs = append(errs, t.web.Close())
		t.web = nil
	}
	return errors.Join(errs...)
}

func (t *standaloneTarget) Info() bench.TargetInfo {
	ml, bk := t.cfg.ManagedLedger, t.cfg.Bookie
	return bench.TargetInfo{
		Name:      bench.TargetStandalone,
		InProcess: true,
		Durability: results.Durability{
			Level:            fmt.Sprintf("journal fdatasync per group, E%d/W%d/A%d", ml.EnsembleSize, ml.WriteQuorum, ml.AckQuorum),
			JournalSync:      bk.JournalSyncData,
			JournalGroupWait: results.Duration(bk.JournalMaxGroupWait),
			EnsembleSize:     ml.EnsembleSize,
			WriteQuorum:      ml.WriteQuorum,
			AckQuorum:        ml.AckQuorum,
			Description: "in-process standalone: embedded metadata store, one bookie (journal with O_DIRECT and " +
				"group commit, acknowledged after fdatasync), one broker; journal and ledgers on the same disk",
		},
	}
}
