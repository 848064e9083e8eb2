package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/magnetar/magnetar/managedledger"
	"github.com/magnetar/magnetar/metastore"
)

// producerNameCounterPath holds the ephemeral sequential nodes that number
// broker instances, for unique generated producer names (Pulsar's
// /counters/producer-name).
const producerNameCounterPath = "/counters/producer-name"

// Broker serves the Pulsar binary protocol and the admin and lookup HTTP
// API for the topics it owns. A single broker owns every topic (Magnetar's
// standalone mode); see the package comment.
type Broker struct {
	opts Options
	log  *slog.Logger
	res  resources
	reg  *schemaRegistry
	ml   managedledger.Factory

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept, keep-alive and stats loops, connections

	ln         net.Listener
	serviceURL string // pulsar://host:port
	webURL     string
	instance   string // this broker's number among live brokers (producer names)
	nameSeq    atomic.Uint64
	pub        publishBudget
	ops        sync.Pool // *publishOp
	metrics    *metrics

	started atomic.Bool
	mu      struct {
		sync.Mutex
		closed bool
		conns  map[*conn]struct{}
		topics map[string]*topicSlot
	}
}

// topicSlot is a topic of the registry, or its loading.
type topicSlot struct {
	ready chan struct{} // closed once t or err is set
	t     *topic
	err   error
}

// New makes a broker. It does no I/O: Start opens the listener and
// bootstraps the metadata.
func New(opts Options) (*Broker, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b := &Broker{opts: opts, log: opts.Logger, ml: opts.ManagedLedgers}
	b.res = resources{meta: opts.MetadataStore, conf: opts.ConfigurationStore, timeout: opts.OperationTimeout}
	b.reg = &schemaRegistry{store: opts.MetadataStore}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.pub.init(opts.MaxPublishBufferBytes)
	b.ops.New = func() any { return &publishOp{} }
	b.mu.conns = make(map[*conn]struct{})
	b.mu.topics = make(map[string]*topicSlot)
	b.metrics = newMetrics(b)
	return b, nil
}

// Start listens for connections, registers the cluster and creates the
// tenant "public" and the namespace "public/default" if they are missing,
// as Pulsar's standalone does.
func (b *Broker) Start(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("broker: already started")
	}
	ln := b.opts.ServiceListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", b.opts.ServiceAddr); err != nil {
			return fmt.Errorf("broker: listen on %s: %w", b.opts.ServiceAddr, err)
		}
	}
	b.ln = ln
	host, port, err := net.SplitHostPort(ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("broker: listener address %s: %w", ln.Addr(), err)
	}
	adv := b.opts.AdvertisedAddress
	if adv == "" {
		adv = host
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			adv = "localhost"
		}
	}
	b.serviceURL = "pulsar://" + net.JoinHostPort(adv, port)
	b.webURL = b.opts.WebServiceURL
	if b.webURL == "" {
		b.webURL = "http://" + net.JoinHostPort(adv, "8080")
	}
	if err := b.bootstrap(ctx); err != nil {
		_ = ln.Close()
		return err
	}
	if b.opts.Registerer != nil {
		if err := b.opts.Registerer.Register(b.metrics); err != nil {
			_ = ln.Close()
			return fmt.Errorf("broker: register metrics: %w", err)
		}
	}
	b.wg.Add(3)
	go b.acceptLoop()
	go b.keepAliveLoop()
	go b.statsLoop()
	b.log.Info("broker: serving the Pulsar protocol", "addr", ln.Addr().String(), "serviceUrl", b.serviceURL,
		"cluster", b.opts.ClusterName)
	return nil
}

// ServiceURL is the broker's advertised Pulsar URL (pulsar://host:port),
// known after Start.
func (b *Broker) ServiceURL() string { return b.serviceURL }

// Addr is the address the broker listens on, known after Start.
func (b *Broker) Addr() net.Addr { return b.ln.Addr() }

// bootstrap registers the cluster, this broker instance, and the default
// tenant and namespace.
func (b *Broker) bootstrap(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.OperationTimeout)
	defer cancel()
	cd := ClusterData{ServiceURL: b.webURL, BrokerServiceURL: b.serviceURL}
	if err := b.res.createCluster(ctx, b.opts.ClusterName, cd); err != nil && !errors.Is(err, ErrAlreadyExists) {
		return fmt.Errorf("broker: register cluster %s: %w", b.opts.ClusterName, err)
	}
	ti := TenantInfo{AdminRoles: []string{}, AllowedClusters: []string{b.opts.ClusterName}}
	if err := b.res.createTenant(ctx, defaultTenant, ti); err != nil && !errors.Is(err, ErrAlreadyExists) {
		return fmt.Errorf("broker: create tenant %s: %w", defaultTenant, err)
	}
	err := b.res.createNamespace(ctx, defaultTenant, defaultNamespace, defaultPolicies(b.opts.ClusterName))
	if err != nil && !errors.Is(err, ErrAlreadyExists) {
		return fmt.Errorf("broker: create namespace %s/%s: %w", defaultTenant, defaultNamespace, err)
	}
	path, err := b.opts.MetadataStore.Create(ctx, producerNameCounterPath+"/broker-", nil,
		metastore.Ephemeral|metastore.Sequential|metastore.CreateParents)
	if err != nil {
		return fmt.Errorf("broker: number this broker instance: %w", err)
	}
	seq, err := metastore.ParseSequence(path)
	if err != nil {
		return err
	}
	b.instance = strconv.FormatInt(seq, 10)
	return nil
}

// Close stops the broker: it stops accepting, closes every connection
// (clients reconnect elsewhere or later), then closes the topics, flushing
// their cursors. It does not close the stores or the managed ledger
// factory, which belong to the caller.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.mu.closed {
		b.mu.Unlock()
		return nil
	}
	b.mu.closed = true
	conns := make([]*conn, 0, len(b.mu.conns))
	for c := range b.mu.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	if b.ln != nil {
		_ = b.ln.Close()
	}
	for _, c := range conns {
		_ = c.nc.Close()
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	b.mu.Lock()
	slots := make([]*topicSlot, 0, len(b.mu.topics))
	for _, s := range b.mu.topics {
		slots = append(slots, s)
	}
	b.mu.Unlock()
	var errs []error
	for _, s := range slots {
		select {
		case <-s.ready:
		case <-ctx.Done():
			continue
		}
		if s.t != nil {
			if err := s.t.close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	b.cancel()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("broker: close: %w", ctx.Err()))
	}
	if b.opts.Registerer != nil && b.started.Load() {
		b.opts.Registerer.Unregister(b.metrics)
	}
	return errors.Join(errs...)
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.closed
}

func (b *Broker) acceptLoop() {
	defer b.wg.Done()
	var delay time.Duration
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			if b.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			b.log.Warn("broker: accept failed", "err", err, "retry", delay)
			select {
			case <-time.After(delay):
			case <-b.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if tc, ok := nc.(*net.TCPConn); ok {
			_ = tc.SetNoDelay(true)
		}
		c := newConn(b, nc)
		b.mu.Lock()
		if b.mu.closed {
			b.mu.Unlock()
			_ = nc.Close()
			return
		}
		b.mu.conns[c] = struct{}{}
		b.wg.Add(1)
		b.mu.Unlock()
		go func() {
			defer b.wg.Done()
			c.serve()
		}()
	}
}

// ServeConn serves one already accepted connection until it ends (tests and
// in-process transports). The broker must be started.
func (b *Broker) ServeConn(nc net.Conn) {
	c := newConn(b, nc)
	b.mu.Lock()
	if b.mu.closed {
		b.mu.Unlock()
		_ = nc.Close()
		return
	}
	b.mu.conns[c] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()
	defer b.wg.Done()
	c.serve()
}

func (b *Broker) removeConn(c *conn) {
	b.mu.Lock()
	delete(b.mu.conns, c)
	b.mu.Unlock()
}

func (b *Broker) connections() []*conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	cs := make([]*conn, 0, len(b.mu.conns))
	for c := range b.mu.conns {
		cs = append(cs, c)
	}
	return cs
}

// keepAliveLoop pings connections that were silent for the keep-alive
// interval and drops those silent for twice as long.
func (b *Broker) keepAliveLoop() {
	defer b.wg.Done()
	iv := b.opts.KeepAliveInterval
	if iv <= 0 {
		return
	}
	t := time.NewTicker(max(iv/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		now := b.opts.Now().UnixNano()
		for _, c := range b.connections() {
			if c.paused.Load() {
				continue
			}
			idle := time.Duration(now - c.lastRead.Load())
			switch {
			case idle >= 2*iv:
				c.log.Info("broker: closing a connection silent for twice the keep-alive interval", "idle", idle)
				_ = c.nc.Close()
			case idle >= iv && !c.pinged.Load() && c.established.Load():
				c.pinged.Store(true)
				c.sendPing()
			}
		}
	}
}

// statsLoop updates the topics' message rates.
func (b *Broker) statsLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.StatsInterval)
	defer t.Stop()
	last := b.opts.Now()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		now := b.opts.Now()
		elapsed := now.Sub(last).Seconds()
		last = now
		if elapsed <= 0 {
			continue
		}
		for _, t := range b.loadedTopics() {
			t.updateRates(elapsed)
		}
	}
}

// generateProducerName makes a producer name unique across brokers and
// restarts: <cluster>-<broker instance>-<n>, as Pulsar does.
func (b *Broker) generateProducerName() string {
	return b.opts.ClusterName + "-" + b.instance + "-" + strconv.FormatUint(b.nameSeq.Add(1)-1, 10)
}

// ---- The topic registry ----

// loadMode says what getTopic may do with a topic that does not exist.
type loadMode int

const (
	loadExisting   loadMode = iota // TopicNotFound
	loadAutoCreate                 // create it if the auto-creation policy allows
	loadCreate                     // create it (admin)
)

// loadedTopics lists the topics loaded now.
func (b *Broker) loadedTopics() []*topic {
	b.mu.Lock()
	defer b.mu.Unlock()
	ts := make([]*topic, 0, len(b.mu.topics))
	for _, s := range b.mu.topics {
		select {
		case <-s.ready:
			if s.t != nil {
				ts = append(ts, s.t)
			}
		default:
		}
	}
	return ts
}

// loadedTopic returns the topic if it is loaded.
func (b *Broker) loadedTopic(tn TopicName) *topic {
	b.mu.Lock()
	s := b.mu.topics[tn.String()]
	b.mu.Unlock()
	if s == nil {
		return nil
	}
	select {
	case <-s.ready:
		return s.t
	default:
		return nil
	}
}

// getTopic returns the loaded topic tn, loading it first (and creating it,
// as mode allows).
func (b *Broker) getTopic(ctx context.Context, tn TopicName, mode loadMode) (*topic, error) {
	key := tn.String()
	for attempt := 0; ; attempt++ {
		b.mu.Lock()
		if b.mu.closed {
			b.mu.Unlock()
			return nil, ErrClosed
		}
		s := b.mu.topics[key]
		owner := s == nil
		if owner {
			s = &topicSlot{ready: make(chan struct{})}
			b.mu.topics[key] = s
		}
		b.mu.Unlock()
		if owner {
			s.t, s.err = b.loadTopic(ctx, tn, mode)
			if s.err != nil {
				b.mu.Lock()
				if b.mu.topics[key] == s {
					delete(b.mu.topics, key)
				}
				b.mu.Unlock()
			}
			close(s.ready)
			return s.t, s.err
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if s.err == nil {
			return s.t, nil
		}
		if errors.Is(s.err, errTopicReloading) {
			attempt = -1 // the topic was closing: load it afresh
			continue
		}
		// The load was someone else's, with its own mode and deadline: try
		// with ours once.
		if attempt > 0 {
			return nil, s.err
		}
	}
}

// errTopicReloading ends the wait of requests that came while a topic was
// being closed or deleted: they load it again.
var errTopicReloading = errors.New("broker: topic closed, load it again")

// fenceTopic replaces t in the registry by a gate that requests for the
// topic wait on, so that nobody opens its managed ledger while t closes
// it (or deletes it). unfenceTopic lets them through. It returns nil if t
// is no longer the registered topic.
func (b *Broker) fenceTopic(t *topic) *topicSlot {
	key := t.name.String()
	gate := &topicSlot{ready: make(chan struct{})}
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.mu.topics[key]; s != nil && s.t == t {
		b.mu.topics[key] = gate
		return gate
	}
	return nil
}

func (b *Broker) unfenceTopic(t *topic, gate *topicSlot) {
	if gate == nil {
		return
	}
	b.mu.Lock()
	if b.mu.topics[t.name.String()] == gate {
		delete(b.mu.topics, t.name.String())
	}
	b.mu.Unlock()
	gate.err = errTopicReloading
	close(gate.ready)
}

// loadTopic loads (and maybe creates) a topic.
func (b *Broker) loadTopic(ctx context.Context, tn TopicName, mode loadMode) (*topic, error) {
	pol, _, err := b.res.policies(ctx, tn.Tenant, tn.Namespace)
	if errors.Is(err, ErrNotFound) {
		return nil, errorf(ErrTopicNotFound, "namespace %s does not exist", tn.NamespaceName())
	}
	if err != nil {
		return nil, err
	}
	if !tn.Persistent() {
		if ok, err := b.mayCreate(ctx, tn, pol, mode); err != nil {
			return nil, err
		} else if !ok {
			return nil, errorf(ErrTopicNotFound, "topic %s does not exist", tn)
		}
		return newTopic(b, tn, nil), nil
	}
	name := tn.ManagedLedgerName()
	exists, err := b.ml.Exists(ctx, name)
	if err != nil {
		return nil, err
	}
	if !exists {
		if ok, err := b.mayCreate(ctx, tn, pol, mode); err != nil {
			return nil, err
		} else if !ok {
			return nil, errorf(ErrTopicNotFound, "topic %s does not exist", tn)
		}
	}
	ml, err := b.ml.Open(ctx, name, b.managedLedgerConfig(pol))
	if err != nil {
		return nil, fmt.Errorf("broker: open topic %s: %w", tn, err)
	}
	t := newTopic(b, tn, ml)
	if err := t.load(ctx); err != nil {
		_ = ml.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("broker: load topic %s: %w", tn, err)
	}
	return t, nil
}

// autoCreation is the automatic topic creation policy of a namespace.
func (b *Broker) autoCreation(pol Policies) AutoTopicCreation {
	var o AutoTopicCreation
	if pol.get(polAutoTopic, &o) {
		if o.TopicType == "" {
			o.TopicType = AutoCreateNonPartitioned
		}
		if o.DefaultNumPartitions <= 0 {
			o.DefaultNumPartitions = b.opts.DefaultNumPartitions
		}
		return o
	}
	return AutoTopicCreation{Allow: !b.opts.DisableAutoTopicCreation, TopicType: b.opts.AutoTopicCreationType,
		DefaultNumPartitions: b.opts.DefaultNumPartitions}
}

// mayCreate reports whether a topic that does not exist may be created:
// by the admin API always; a partition of an existing partitioned topic
// always (as Pulsar creates partitions on first use); other topics on first
// use as the namespace's policy (or the broker's) says.
func (b *Broker) mayCreate(ctx context.Context, tn TopicName, pol Policies, mode loadMode) (bool, error) {
	if mode == loadCreate {
		return true, nil
	}
	if tn.IsPartition() {
		n, ok, err := b.res.partitions(ctx, tn.Base())
		if err != nil {
			return false, err
		}
		if ok {
			return tn.Partition < n, nil
		}
	}
	return mode == loadAutoCreate && b.autoCreation(pol).Allow, nil
}

// managedLedgerConfig is the managed ledger configuration of a topic in a
// namespace with policies pol.
func (b *Broker) managedLedgerConfig(pol Policies) managedledger.Config {
	cfg := b.opts.ManagedLedgerConfig
	cfg.RetentionTime = b.opts.DefaultRetentionTime
	cfg.RetentionSizeBytes = b.opts.DefaultRetentionSizeBytes
	var rp RetentionPolicies
	if pol.get(polRetention, &rp) {
		cfg.RetentionTime = time.Duration(rp.RetentionTimeInMinutes) * time.Minute
		if rp.RetentionTimeInMinutes < 0 {
			cfg.RetentionTime = -1
		}
		cfg.RetentionSizeBytes = rp.RetentionSizeInMB << 20
		if rp.RetentionSizeInMB < 0 {
			cfg.RetentionSizeBytes = -1
		}
	}
	return cfg
}

// dedupEnabled says whether a namespace deduplicates.
func (b *Broker) dedupEnabled(pol Policies) bool {
	var on bool
	if pol.get(polDeduplication, &on) {
		return on
	}
	return b.opts.BrokerDeduplicationEnabled
}

// partitionCount returns the partitions of tn (0 if it is not a
// partitioned topic), creating the partitioned metadata when tn does not
// exist and the namespace creates partitioned topics automatically.
func (b *Broker) partitionCount(ctx context.Context, tn TopicName, create bool) (int, error) {
	if tn.IsPartition() {
		return 0, nil
	}
	n, ok, err := b.res.partitions(ctx, tn)
	if err != nil || ok {
		return n, err
	}
	if !create {
		return 0, nil
	}
	pol, _, err := b.res.policies(ctx, tn.Tenant, tn.Namespace)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return 0, nil
		}
		return 0, err
	}
	ac := b.autoCreation(pol)
	if !ac.Allow || ac.TopicType != AutoCreatePartitioned {
		return 0, nil
	}
	if b.loadedTopic(tn) != nil {
		return 0, nil
	}
	if tn.Persistent() {
		if exists, err := b.ml.Exists(ctx, tn.ManagedLedgerName()); err != nil || exists {
			return 0, err
		}
	}
	err = b.res.createPartitioned(ctx, tn, ac.DefaultNumPartitions, nil)
	if errors.Is(err, ErrAlreadyExists) {
		n, _, err = b.res.partitions(ctx, tn)
		return n, err
	}
	if err != nil {
		return 0, err
	}
	return ac.DefaultNumPartitions, nil
}

// topicsOfNamespace lists a namespace's topics: persistent topics with a
// managed ledger, the partitions of partitioned topics, and loaded
// non-persistent topics, as fully qualified names.
func (b *Broker) topicsOfNamespace(ctx context.Context, tenant, ns string, persistent, nonPersistent bool) ([]string, error) {
	var all []TopicName
	if persistent {
		ts, err := b.res.persistentTopics(ctx, tenant, ns)
		if err != nil {
			return nil, err
		}
		all = append(all, ts...)
	}
	for _, dom := range []string{domainPersistent, domainNonPersistent} {
		if dom == domainPersistent && !persistent || dom == domainNonPersistent && !nonPersistent {
			continue
		}
		pts, err := b.res.partitionedTopics(ctx, tenant, ns, dom)
		if err != nil {
			return nil, err
		}
		for _, pt := range pts {
			n, _, err := b.res.partitions(ctx, pt)
			if err != nil {
				return nil, err
			}
			for i := 0; i < n; i++ {
				all = append(all, pt.PartitionName(i))
			}
		}
	}
	if nonPersistent {
		for _, t := range b.loadedTopics() {
			if !t.name.Persistent() && t.name.Tenant == tenant && t.name.Namespace == ns {
				all = append(all, t.name)
			}
		}
	}
	return sortedNames(all), nil
}

// isSystemCursor reports whether a cursor is the broker's own.
func isSystemCursor(name string) bool { return strings.HasPrefix(name, "pulsar.") }
