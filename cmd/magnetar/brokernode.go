package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/magnetar/magnetar/broker"
	"github.com/magnetar/magnetar/internal/config"
	"github.com/magnetar/magnetar/ledger"
	"github.com/magnetar/magnetar/managedledger"
	"github.com/magnetar/magnetar/metastore"
)

// brokerNode is a running broker with its storage stack: the ledger
// client, the managed-ledger factory and the broker itself.
type brokerNode struct {
	lc *ledger.Client
	ml *managedledger.MLFactory
	b  *broker.Broker
}

// managedLedgerConfig maps the managedLedger* keys to a topic's default
// managed-ledger configuration.
func managedLedgerConfig(c config.ManagedLedgerConfig) managedledger.Config {
	return managedledger.Config{
		EnsembleSize:              c.EnsembleSize,
		WriteQuorum:               c.WriteQuorum,
		AckQuorum:                 c.AckQuorum,
		MaxEntriesPerLedger:       int64(c.MaxEntriesPerLedger),
		MaxSizePerLedgerBytes:     int64(c.MaxSizePerLedgerMbytes) << 20,
		MinRolloverTime:           c.MinLedgerRolloverTime,
		MaxRolloverTime:           c.MaxLedgerRolloverTime,
		CursorMaxEntriesPerLedger: int64(c.CursorMaxEntriesPerLedger),
	}
}

// startBrokerNode starts the ledger client over the bookies registered under
// ledgersRoot in meta, the managed-ledger factory and the broker.
func startBrokerNode(ctx context.Context, p *proc, meta, conf metastore.Store, ledgersRoot string) (*brokerNode, error) {
	cfg := p.Config
	log := p.Logger.With("component", "broker")
	n := &brokerNode{}
	lc, err := ledger.NewClient(ledger.Options{
		Store:                  meta,
		LedgersRoot:            ledgersRoot,
		SpeculativeReadTimeout: cfg.ManagedLedger.SpeculativeReadTimeout,
		Logger:                 p.Logger.With("component", "ledger"),
	})
	if err != nil {
		return nil, fmt.Errorf("ledger client: %w", err)
	}
	n.lc = lc
	cache := int64(cfg.ManagedLedger.CacheSizeMB) << 20
	ml, err := managedledger.NewFactory(managedledger.Options{
		Store:                      meta,
		BookKeeper:                 managedledger.NewBookKeeper(lc, nil),
		CacheSizeBytes:             cache,
		CacheEvictionTimeThreshold: cfg.ManagedLedger.CacheEvictionTimeThreshold,
		ReadBatchSize:              cfg.Broker.DispatcherMaxReadBatchSize,
		MarkDeleteRateLimit:        cfg.ManagedLedger.DefaultMarkDeleteRateLimit,
		Logger:                     p.Logger.With("component", "managedledger"),
	})
	if err != nil {
		n.close(ctx)
		return nil, fmt.Errorf("managed ledgers: %w", err)
	}
	n.ml = ml
	bc := cfg.Broker
	opts := broker.Options{
		ClusterName:                            cfg.Metadata.ClusterName,
		ServiceAddr:                            net.JoinHostPort(cfg.Network.BindAddress, strconv.Itoa(cfg.Network.BrokerServicePort)),
		AdvertisedAddress:                      cfg.Network.AdvertisedAddress,
		MetadataStore:                          meta,
		ConfigurationStore:                     conf,
		ManagedLedgers:                         ml,
		ManagedLedgerConfig:                    managedLedgerConfig(cfg.ManagedLedger),
		MaxMessageSize:                         bc.MaxMessageSize,
		MaxPendingPublishRequestsPerConnection: bc.MaxPendingPublishRequestsPerConnection,
		KeepAliveInterval:                      bc.KeepAliveInterval,
		DisableAutoTopicCreation:               !bc.AllowAutoTopicCreation,
		AutoTopicCreationType:                  bc.AllowAutoTopicCreationType,
		DefaultNumPartitions:                   bc.DefaultNumPartitions,
		MaxNumPartitionsPerPartitionedTopic:    bc.MaxNumPartitionsPerPartitionedTopic,
		BrokerDeduplicationEnabled:             bc.BrokerDeduplicationEnabled,
		DefaultRetentionTime:                   time.Duration(bc.DefaultRetentionTimeInMinutes) * time.Minute,
		DefaultRetentionSizeBytes:              bc.DefaultRetentionSizeInMB << 20,
		MaxProducersPerTopic:                   bc.MaxProducersPerTopic,
		MaxConsumersPerTopic:                   bc.MaxConsumersPerTopic,
		MaxConsumersPerSubscription:            bc.MaxConsumersPerSubscription,
		DispatcherMaxReadBatchSize:             bc.DispatcherMaxReadBatchSize,
		DispatcherMaxReadSizeBytes:             int64(bc.DispatcherMaxReadSizeBytes),
		DispatcherMaxRoundRobinBatchSize:       bc.DispatcherMaxRoundRobinBatchSize,
		MaxUnackedMessagesPerConsumer:          bc.MaxUnackedMessagesPerConsumer,
		Registerer:                             p.Registry,
		Logger:                                 log,
	}
	if bc.MaxUnackedMessagesPerConsumer == 0 {
		opts.MaxUnackedMessagesPerConsumer = -1 // Pulsar's 0: no limit
	}
	if bc.DefaultRetentionTimeInMinutes < 0 {
		opts.DefaultRetentionTime = -1
	}
	if bc.DefaultRetentionSizeInMB < 0 {
		opts.DefaultRetentionSizeBytes = -1
	}
	if p.HTTPAddr != nil {
		_, port, _ := net.SplitHostPort(p.HTTPAddr.String())
		host := cfg.Network.AdvertisedAddress
		if host == "" {
			host = "localhost"
		}
		opts.WebServiceURL = "http://" + net.JoinHostPort(host, port)
	}
	b, err := broker.New(opts)
	if err != nil {
		n.close(ctx)
		return nil, err
	}
	if err := b.Start(ctx); err != nil {
		n.close(ctx)
		return nil, err
	}
	n.b = b
	if p.Mux != nil {
		b.RegisterHTTP(p.Mux)
	}
	log.Info("broker started", "service", b.ServiceURL(), "web", opts.WebServiceURL)
	return n, nil
}

func (n *brokerNode) close(ctx context.Context) error {
	var errs []error
	if n.b != nil {
		errs = append(errs, n.b.Close(ctx))
	}
	if n.ml != nil {
		errs = append(errs, n.ml.Close())
	}
	if n.lc != nil {
		errs = append(errs, n.lc.Close())
	}
	return errors.Join(errs...)
}

// openStores opens the metadata and configuration stores; when they name
// the same embedded or memory store, they share it (one process may open an
// embedded directory only once).
func openStores(p *proc) (meta, conf metastore.Store, closeAll func(), err error) {
	reg := &metastore.Registry{}
	opts := metastore.Options{
		Logger:           p.Logger.With("component", "metastore"),
		SessionTimeout:   p.Config.Metadata.MetadataStoreSessionTimeout,
		OperationTimeout: p.Config.Metadata.MetadataStoreOperationTimeout,
		Registry:         reg,
	}
	meta, err = metastore.Open(p.Config.Metadata.MetadataStoreURL, opts)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("metadata store %s: %w", p.Config.Metadata.MetadataStoreURL, err)
	}
	confURL := p.Config.Metadata.ConfigurationStoreURL()
	conf, err = metastore.Open(confURL, opts)
	if err != nil {
		meta.Close()
		return nil, nil, nil, fmt.Errorf("configuration store %s: %w", confURL, err)
	}
	return meta, conf, func() {
		conf.Close()
		meta.Close()
		reg.Close()
	}, nil
}

// shutdownTimeout bounds a clean stop.
const shutdownTimeout = 30 * time.Second

func brokerRun(ctx context.Context, p *proc, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	meta, conf, closeStores, err := openStores(p)
	if err != nil {
		return err
	}
	defer closeStores()
	n, err := startBrokerNode(ctx, p, meta, conf, metastore.LedgersRoot)
	if err != nil {
		return err
	}
	<-ctx.Done()
	p.Logger.Info("broker stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return n.close(sctx)
}

func standaloneRun(ctx context.Context, p *proc, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	start := time.Now()
	n, err := startStandalone(ctx, p)
	if err != nil {
		return err
	}
	p.Logger.Info("standalone node ready", "took", time.Since(start).Round(time.Millisecond),
		"service", n.broker.b.ServiceURL())
	<-ctx.Done()
	p.Logger.Info("standalone node stopping")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return n.close(sctx)
}

// standaloneNode is the standalone assembly: the metadata stores, one
// bookie and one broker in this process (`magnetar standalone`, and the
// node `magnetar bench` measures by default).
type standaloneNode struct {
	closeStores func()
	bookie      *bookieNode
	broker      *brokerNode
}

// startStandalone opens the stores and starts the bookie, then the broker;
// on failure it closes what it started.
func startStandalone(ctx context.Context, p *proc) (*standaloneNode, error) {
	meta, conf, closeStores, err := openStores(p)
	if err != nil {
		return nil, err
	}
	n := &standaloneNode{closeStores: closeStores}
	if n.bookie, err = startBookie(ctx, p, meta, metastore.LedgersRoot); err == nil {
		n.broker, err = startBrokerNode(ctx, p, meta, conf, metastore.LedgersRoot)
	}
	if err != nil {
		n.close(ctx)
		return nil, err
	}
	return n, nil
}

// close stops the broker, then the bookie, then closes the stores.
func (n *standaloneNode) close(ctx context.Context) error {
	var errs []error
	if n.broker != nil {
		errs = append(errs, n.broker.close(ctx))
	}
	if n.bookie != nil {
		errs = append(errs, n.bookie.close())
	}
	n.closeStores()
	return errors.Join(errs...)
}
