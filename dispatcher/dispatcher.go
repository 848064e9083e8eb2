package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/managedledger"
)

// Read retry backoff after a failed read from the cursor.
const (
	minReadBackoff = 100 * time.Millisecond
	maxReadBackoff = 30 * time.Second
)

// maxRewindEpochs bounds the rewind history of a single-active subscription
// (see Dispatcher.redeliveryCountLocked).
const maxRewindEpochs = 64

// Dispatcher delivers the entries of one subscription's cursor to the
// subscription's consumers. See the package comment.
type Dispatcher struct {
	cursor managedledger.Cursor
	opts   Options
	log    *slog.Logger
	readCB readCallback
	ctx    context.Context // cancelled by Close: aborts a replay read
	cancel context.CancelFunc

	// cond is signalled whenever the runner stops or an I/O completes, for
	// Close and ResetCursor to wait on. Its lock is mu.
	cond *sync.Cond

	mu struct {
		sync.Mutex
		closed bool
		paused bool // ResetCursor in progress: no reads, no deliveries

		// The runner: at most one goroutine runs rounds at a time (running);
		// again asks it for one more round because state changed meanwhile.
		running bool
		again   bool

		consumers  []*Consumer // in the order they joined
		seq        uint64
		priorities bool // the consumers are on more than one priority level

		// Reading new entries: at most one ReadEntriesOrWait outstanding.
		reading     bool
		cancelTried bool // CancelPendingRead failed: the read is completing
		readDone    bool // incoming holds a completed read
		incoming    []managedledger.Entry
		readErr     error
		readStopped bool // the cursor is closed
		retrying    bool // a read retry is scheduled
		backoff     time.Duration
		avgMsgs     float64 // messages per entry, moving average

		// Exclusive and Failover.
		active       *Consumer
		activeGen    uint64 // bumped when the active consumer changes
		notifyDirty  bool
		rewindWanted bool
		discardRead  bool            // the outstanding read predates a rewind
		epochMax     base.Position   // highest position delivered since the last rewind
		epochAny     bool            // something was delivered since the last rewind
		rewinds      []base.Position // epochMax of each past rewind

		// Shared and Key_Shared.
		pending        map[base.Position]pendingRec
		hashOwners     map[uint32]hashOwner // Key_Shared: who holds a key's unacked entries
		selector       *keySelector
		replay         replaySet
		replayDirty    bool // something changed that may let waiting entries go
		replaySelected int  // records reserved for the next replay read
		replayReading  bool
		replayDone     bool
		replayReq      []base.Position
		replayIn       []managedledger.Entry
		replayErr      error
		rr, rrSent     int
		skipped        map[uint32]struct{} // Key_Shared: keys held back this round
		scratchRecs    []replayRec
	}

	// Runner-only state: touched by the goroutine that holds mu.running,
	// under the lock while it plans a round and without it while it carries
	// the round out.
	touched []*Consumer
	acks    []base.Position // server-only entries to acknowledge
}

// pendingRec is an entry delivered to a Shared or Key_Shared consumer and
// not yet acknowledged.
type pendingRec struct {
	c            *Consumer
	msgs         int32
	hash         uint32
	redeliveries uint32
}

// hashOwner is the consumer holding unacked entries of a key hash, and how
// many (Key_Shared): while it holds any, no other consumer gets that key.
type hashOwner struct {
	c       *Consumer
	entries int32
}

type readCallback struct{ d *Dispatcher }

// plan is what a round decided to do outside the lock, in this order.
type plan struct {
	cancelRead bool
	rewind     bool
	seek       bool
	seekPos    base.Position
	replay     bool
	read       bool
	readN      int
}

func (p *plan) empty() bool {
	return !p.cancelRead && !p.rewind && !p.seek && !p.replay && !p.read
}

// New makes a dispatcher of opts.Type over cursor. The dispatcher reads the
// cursor (it must be the only reader of it) and acknowledges on it the
// consumers' acks that go through Consumer.
func New(cursor managedledger.Cursor, opts Options) (*Dispatcher, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	d := &Dispatcher{cursor: cursor, opts: opts}
	d.log = opts.Logger // attributes added per message: With would cost every idle dispatcher
	d.readCB.d = d
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.cond = sync.NewCond(&d.mu.Mutex)
	d.mu.avgMsgs = 1
	if !opts.Type.singleActive() {
		d.mu.pending = make(map[base.Position]pendingRec)
	}
	if opts.Type == KeyShared {
		d.mu.hashOwners = make(map[uint32]hashOwner)
		d.mu.selector = newKeySelector(opts.KeySharedMode, opts.KeySharedReplicaPoints)
		d.mu.replay.hashes = make(map[uint32]int32)
		d.mu.skipped = make(map[uint32]struct{})
	}
	return d, nil
}

// Type is the subscription type.
func (d *Dispatcher) Type() SubscriptionType { return d.opts.Type }

// Cursor is the cursor the dispatcher reads.
func (d *Dispatcher) Cursor() managedledger.Cursor { return d.cursor }

// AddConsumer adds a consumer delivering to sink. It fails with
// ErrConsumerBusy on an Exclusive subscription that has a consumer, with
// ErrConsumerAssign when Key_Shared Sticky ranges do not fit, and with
// ErrClosed after Close. The consumer receives nothing before its first
// Flow.
func (d *Dispatcher) AddConsumer(sink Sink, cfg ConsumerConfig) (*Consumer, error) {
	if sink == nil {
		return nil, errors.New("dispatcher: AddConsumer with a nil sink")
	}
	c := &Consumer{d: d, sink: sink, id: cfg.ID, name: cfg.Name, priority: cfg.PriorityLevel,
		hashRanges: slices.Clone(cfg.HashRanges)}
	m := &d.mu
	m.Lock()
	if m.closed {
		m.Unlock()
		return nil, ErrClosed
	}
	if d.opts.Type == Exclusive && len(m.consumers) > 0 {
		m.Unlock()
		return nil, ErrConsumerBusy
	}
	if m.selector != nil {
		if err := m.selector.add(c); err != nil {
			m.Unlock()
			return nil, err
		}
	}
	m.seq++
	c.seq = m.seq
	m.consumers = append(m.consumers, c)
	d.consumersChangedLocked()
	start := d.scheduleLocked()
	m.Unlock()
	if start {
		d.run()
	}
	return c, nil
}

// consumersChangedLocked reacts to a consumer joining or leaving.
func (d *Dispatcher) consumersChangedLocked() {
	m := &d.mu
	m.priorities = false
	for _, c := range m.consumers {
		if c.priority != m.consumers[0].priority {
			m.priorities = true
		}
	}
	if !d.opts.Type.singleActive() {
		m.replayDirty = true
		return
	}
	next := d.pickActiveLocked()
	if next == m.active {
		if d.opts.Type == Failover {
			m.notifyDirty = true // a new consumer learns its state
		}
		return
	}
	m.active = next
	// The new active consumer starts from the oldest unacknowledged entry,
	// as Pulsar's single-active dispatcher does.
	m.rewindWanted = true
	if d.opts.Type == Failover {
		m.activeGen++
		m.notifyDirty = true
	}
}

// pickActiveLocked chooses the active consumer of an Exclusive or Failover
// subscription: among the consumers of the lowest priority level, on a
// partition the one at the partition index modulo their number in
// (name, join order) order, else the one that joined first.
func (d *Dispatcher) pickActiveLocked() *Consumer {
	cs := d.mu.consumers
	if len(cs) == 0 {
		return nil
	}
	best := cs[0].priority
	for _, c := range cs {
		best = min(best, c.priority)
	}
	var cands []*Consumer
	for _, c := range cs {
		if c.priority == best {
			if !d.opts.Partitioned {
				return c
			}
			cands = append(cands, c)
		}
	}
	slices.SortFunc(cands, func(a, b *Consumer) int {
		if a.name != b.name {
			if a.name < b.name {
				return -1
			}
			return 1
		}
		return int(a.seq - b.seq)
	})
	return cands[d.opts.PartitionIndex%len(cands)]
}

// ActiveConsumer is the active consumer of an Exclusive or Failover
// subscription (nil if none, and always nil for the other types).
func (d *Dispatcher) ActiveConsumer() *Consumer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.active
}

// Consumers lists the consumers in the order they joined.
func (d *Dispatcher) Consumers() []*Consumer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.mu.consumers)
}

// Close stops the dispatcher: no more reads, no more deliveries. Entries it
// holds are released; unacknowledged entries stay unacknowledged on the
// cursor. It waits for a round under way to finish, and for a read it could
// not cancel (one being completed) to come back, so that another reader
// may use the cursor once it returns; it must not be called from a Sink.
// Closing the cursor is the caller's business.
func (d *Dispatcher) Close() {
	m := &d.mu
	m.Lock()
	if m.closed {
		m.Unlock()
		return
	}
	m.closed = true
	for _, c := range m.consumers {
		c.removed.Store(true)
	}
	m.consumers = nil
	m.active = nil
	d.cancel()
	for m.running || m.replayReading {
		d.cond.Wait()
	}
	d.releaseHeldLocked()
	if m.reading {
		m.Unlock()
		cancelled := d.cursor.CancelPendingRead()
		m.Lock()
		if cancelled {
			m.reading = false
		}
		// Not cancelled: the cursor is completing the read, and
		// ReadComplete (which releases what a closed dispatcher is given)
		// clears reading.
		for m.reading {
			d.cond.Wait()
		}
	}
	m.Unlock()
}

// releaseHeldLocked releases the entries the dispatcher holds but has not
// processed.
func (d *Dispatcher) releaseHeldLocked() {
	m := &d.mu
	releaseEntries(m.incoming)
	m.incoming = m.incoming[:0]
	m.readDone = false
	releaseEntries(m.replayIn)
	m.replayIn = m.replayIn[:0]
	m.replayDone = false
}

func releaseEntries(es []managedledger.Entry) {
	for i := range es {
		if es[i].Data != nil {
			es[i].Data.Release()
		}
		es[i] = managedledger.Entry{}
	}
}

// ResetCursor moves the subscription to pos (seek, subscription reset):
// it stops dispatching, drops what it holds and what it was about to
// redeliver, calls Cursor.ResetCursor and starts again from pos. As in
// Pulsar, the broker disconnects the consumers first (CLOSE_CONSUMER) and
// answers SEEK once this returns.
func (d *Dispatcher) ResetCursor(ctx context.Context, pos base.Position) error {
	m := &d.mu
	m.Lock()
	if m.closed {
		m.Unlock()
		return ErrClosed
	}
	m.paused = true
	for m.running || m.replayReading {
		d.cond.Wait()
	}
	if m.reading {
		m.Unlock()
		cancelled := d.cursor.CancelPendingRead()
		m.Lock()
		if cancelled {
			m.reading = false
		}
		for m.reading || m.running {
			d.cond.Wait()
		}
	}
	d.releaseHeldLocked()
	m.discardRead = false
	m.rewindWanted = false
	m.epochAny = false
	m.rewinds = m.rewinds[:0]
	if m.pending != nil {
		clear(m.pending)
	}
	for _, r := range m.replay.recs {
		if c := r.reserved; c != nil && !r.dead {
			c.permits += int64(r.msgs)
		}
	}
	for _, c := range m.consumers {
		c.unacked = 0
		c.blocked = false
		c.stalled = false
	}
	if m.hashOwners != nil {
		clear(m.hashOwners)
	}
	m.replay.reset()
	m.replaySelected = 0
	m.replayReq = m.replayReq[:0]
	m.Unlock()

	err := d.cursor.ResetCursor(ctx, pos)

	m.Lock()
	m.paused = false
	m.replayDirty = true
	start := d.scheduleLocked()
	m.Unlock()
	if start {
		d.run()
	}
	if err != nil {
		return fmt.Errorf("dispatcher: reset cursor to %v: %w", pos, err)
	}
	return nil
}

// scheduleLocked makes sure a round runs after the caller's change: it
// returns true if the caller must run it (call d.run after unlocking), or
// tells the running runner to go round again.
func (d *Dispatcher) scheduleLocked() bool {
	m := &d.mu
	if m.closed {
		return false
	}
	if m.running {
		m.again = true
		return false
	}
	m.running = true
	return true
}

// run runs rounds until there is nothing left to do. Only the goroutine
// that set mu.running runs it.
func (d *Dispatcher) run() {
	m := &d.mu
	finished := false
	defer func() {
		if !finished {
			// A sink or the cursor panicked: let Close and the next caller
			// through rather than leave the dispatcher wedged.
			m.Lock()
			m.running = false
			d.cond.Broadcast()
			m.Unlock()
		}
	}()
	for {
		var p plan
		m.Lock()
		m.again = false
		if m.closed || m.paused {
			d.releaseHeldLocked()
			m.running = false
			d.cond.Broadcast()
			m.Unlock()
			finished = true
			return
		}
		d.roundLocked(&p)
		if p.empty() && len(d.touched) == 0 && len(d.acks) == 0 && !m.again {
			m.running = false
			d.cond.Broadcast()
			m.Unlock()
			finished = true
			return
		}
		m.Unlock()
		d.execute(&p)
	}
}

// roundLocked plans one round: it hands out what arrived, picks what to
// redeliver and decides the next I/O.
func (d *Dispatcher) roundLocked(p *plan) {
	if d.opts.Type.singleActive() {
		d.roundSingleLocked(p)
	} else {
		d.roundSharedLocked(p)
	}
}

// execute carries out a round outside the lock: notifications and
// deliveries to the sinks, then the cursor operations.
func (d *Dispatcher) execute(p *plan) {
	for i, c := range d.touched {
		if c.notify {
			c.notify = false
			c.sink.ActiveConsumerChanged(c.notifyActive)
		}
		if len(c.out) > 0 {
			if c.removed.Load() {
				for j := range c.out {
					c.out[j].Data.Release()
				}
			} else {
				c.sink.Deliver(c.out)
			}
			clear(c.out)
			c.out = c.out[:0]
		}
		c.touched = false
		d.touched[i] = nil
	}
	d.touched = d.touched[:0]
	if len(d.acks) > 0 {
		if err := d.cursor.Delete(d.acks...); err != nil {
			d.log.Warn("dispatcher: acknowledging server-only entries", "subscription", d.cursor.Name(), "err", err)
		}
		d.acks = d.acks[:0]
	}
	if p.cancelRead {
		cancelled := d.cursor.CancelPendingRead()
		d.mu.Lock()
		if cancelled && d.mu.reading {
			d.mu.reading = false
			d.mu.discardRead = false
			d.mu.again = true
			d.cond.Broadcast()
		} else {
			d.mu.cancelTried = true
		}
		d.mu.Unlock()
	}
	if p.rewind {
		d.cursor.Rewind()
		md := d.cursor.MarkDeletePosition()
		d.mu.Lock()
		d.trimRewindsLocked(md)
		d.mu.Unlock()
	}
	if p.seek {
		d.cursor.Seek(p.seekPos)
	}
	if p.replay {
		d.opts.goAsync(d.replayRead)
	}
	if p.read {
		d.cursor.ReadEntriesOrWait(p.readN, d.opts.MaxReadBatchBytes, &d.readCB)
	}
}

// ReadComplete receives the outcome of the outstanding ReadEntriesOrWait.
func (cb *readCallback) ReadComplete(entries []managedledger.Entry, err error) {
	d := cb.d
	m := &d.mu
	m.Lock()
	m.reading = false
	m.cancelTried = false
	d.cond.Broadcast()
	if m.closed {
		m.Unlock()
		releaseEntries(entries)
		return
	}
	m.incoming = append(m.incoming, entries...)
	m.readErr = err
	m.readDone = true
	start := d.scheduleLocked()
	m.Unlock()
	if start {
		d.run()
	}
}

// replayRead reads the entries reserved for redelivery (mu.replayReq, which
// nobody changes while mu.replayReading is set).
func (d *Dispatcher) replayRead() {
	entries, err := d.cursor.ReplayEntries(d.ctx, d.mu.replayReq)
	m := &d.mu
	m.Lock()
	m.replayIn = append(m.replayIn, entries...)
	m.replayErr = err
	m.replayDone = true
	if m.closed || m.paused {
		d.releaseHeldLocked()
		m.replayReading = false
		m.replaySelected = 0
		d.cond.Broadcast()
		m.Unlock()
		return
	}
	start := d.scheduleLocked()
	m.Unlock()
	if start {
		d.run()
	}
}

// readFailedLocked handles a failed read: a closed cursor stops reading,
// anything else is retried with backoff.
func (d *Dispatcher) readFailedLocked(err error) {
	m := &d.mu
	if errors.Is(err, base.ErrClosed) {
		if !m.readStopped {
			d.log.Info("dispatcher: cursor closed, reading stops", "subscription", d.cursor.Name(), "err", err)
		}
		m.readStopped = true
		return
	}
	m.backoff = min(max(2*m.backoff, minReadBackoff), maxReadBackoff)
	d.log.Warn("dispatcher: read failed, retrying", "subscription", d.cursor.Name(), "err", err, "after", m.backoff)
	if m.retrying {
		return
	}
	m.retrying = true
	d.opts.afterFunc(m.backoff, func() {
		m.Lock()
		m.retrying = false
		m.replayDirty = true
		start := d.scheduleLocked()
		m.Unlock()
		if start {
			d.run()
		}
	})
}

// canReadLocked reports whether a new read may be issued now.
func (d *Dispatcher) canReadLocked() bool {
	m := &d.mu
	return !m.reading && !m.readStopped && !m.retrying && !m.readDone
}

// readSizeLocked is how many entries to read for permits messages.
func (d *Dispatcher) readSizeLocked(permits int64) int {
	n := int64(float64(permits)/d.mu.avgMsgs + 0.999)
	return int(min(max(n, 1), int64(d.opts.MaxReadBatchSize)))
}

func (d *Dispatcher) parseLocked(e *managedledger.Entry) EntryMeta {
	meta, err := d.opts.ParseEntry(e.Data.Bytes())
	if err != nil {
		d.log.Debug("dispatcher: unparsable entry, delivered as one message", "subscription", d.cursor.Name(), "pos", e.Pos, "err", err)
		meta = EntryMeta{NumMessages: 1, KeyHash: StickyKeyHash([]byte(noneKey))}
	}
	if meta.NumMessages < 1 {
		meta.NumMessages = 1
	}
	if meta.KeyHash >= KeyHashRange {
		meta.KeyHash %= KeyHashRange
	}
	d.mu.avgMsgs += (float64(meta.NumMessages) - d.mu.avgMsgs) / 16
	return meta
}

// enqueueLocked adds a delivery to c's batch of this round.
func (d *Dispatcher) enqueueLocked(c *Consumer, dl Delivery) {
	if !c.touched {
		c.touched = true
		d.touched = append(d.touched, c)
	}
	c.out = append(c.out, dl)
	c.msgOut += uint64(dl.NumMessages)
	c.bytesOut += uint64(dl.Data.Len())
	if dl.RedeliveryCount > 0 {
		c.msgRedelivered += uint64(dl.NumMessages)
	}
}

func (d *Dispatcher) notifyLocked(c *Consumer, active bool) {
	if !c.touched {
		c.touched = true
		d.touched = append(d.touched, c)
	}
	c.notify = true
	c.notifyActive = active
}

// ---- Exclusive and Failover ----

func (d *Dispatcher) roundSingleLocked(p *plan) {
	m := &d.mu
	if m.notifyDirty {
		m.notifyDirty = false
		for _, c := range m.consumers {
			if c.started && c.notifiedGen != m.activeGen {
				c.notifiedGen = m.activeGen
				d.notifyLocked(c, c == m.active)
			}
		}
	}
	if m.readDone {
		m.readDone = false
		entries := m.incoming
		switch {
		case m.readErr != nil:
			releaseEntries(entries)
			d.readFailedLocked(m.readErr)
			m.readErr = nil
		case m.discardRead || m.rewindWanted || m.active == nil:
			// Read for a consumer that is no longer active: the rewind that
			// comes with the next active consumer reads them again.
			m.discardRead = false
			m.rewindWanted = true
			releaseEntries(entries)
		default:
			m.backoff = 0
			d.deliverSingleLocked(entries, p)
		}
		m.incoming = entries[:0]
	}
	if m.rewindWanted {
		if m.reading {
			m.discardRead = true
			p.cancelRead = !m.cancelTried
			return
		}
		m.rewindWanted = false
		d.pushRewindLocked()
		p.rewind = true
	}
	a := m.active
	if a == nil {
		if m.reading && !m.cancelTried {
			p.cancelRead = true
		}
		return
	}
	if a.canTake(1) && !a.stalled && d.canReadLocked() {
		m.reading = true
		p.read = true
		p.readN = d.readSizeLocked(a.permits)
	}
}

// deliverSingleLocked hands entries in order to the active consumer while
// its permits last; the rest are read again later (seek back).
func (d *Dispatcher) deliverSingleLocked(entries []managedledger.Entry, p *plan) {
	m := &d.mu
	a := m.active
	for i := range entries {
		e := &entries[i]
		meta := d.parseLocked(e)
		if meta.ServerOnly {
			d.acks = append(d.acks, e.Pos)
			e.Data.Release()
			*e = managedledger.Entry{}
			continue
		}
		if !a.canTake(meta.NumMessages) {
			// Read again once the consumer has the permits for it.
			a.markStalledIfShort(meta.NumMessages)
			p.seek = true
			p.seekPos = e.Pos
			releaseEntries(entries[i:])
			return
		}
		a.permits -= int64(meta.NumMessages)
		d.enqueueLocked(a, Delivery{Pos: e.Pos, Data: e.Data, NumMessages: meta.NumMessages,
			RedeliveryCount: d.redeliveryCountLocked(e.Pos)})
		if !m.epochAny || m.epochMax.Less(e.Pos) {
			m.epochMax = e.Pos
		}
		m.epochAny = true
		*e = managedledger.Entry{}
	}
}

// Redelivery counts of a single-active subscription. Its consumer gets the
// entries in position order from the oldest unacknowledged one, and every
// rewind starts that over; so an entry at p was delivered before once for
// every past rewind whose epoch had reached p. The dispatcher keeps the
// highest position each epoch delivered, and forgets epochs below the
// mark-delete position (their entries are acknowledged).
func (d *Dispatcher) redeliveryCountLocked(pos base.Position) uint32 {
	var n uint32
	for _, hi := range d.mu.rewinds {
		if !hi.Less(pos) {
			n++
		}
	}
	return n
}

func (d *Dispatcher) pushRewindLocked() {
	m := &d.mu
	if !m.epochAny {
		return
	}
	m.epochAny = false
	if len(m.rewinds) == maxRewindEpochs {
		// Forget the lowest epoch: the one most likely acknowledged already.
		i := 0
		for j, hi := range m.rewinds {
			if hi.Less(m.rewinds[i]) {
				i = j
			}
		}
		m.rewinds = slices.Delete(m.rewinds, i, i+1)
	}
	m.rewinds = append(m.rewinds, m.epochMax)
}

// trimRewindsLocked forgets the epochs wholly below the mark-delete position.
func (d *Dispatcher) trimRewindsLocked(markDelete base.Position) {
	d.mu.rewinds = slices.DeleteFunc(d.mu.rewinds, func(hi base.Position) bool { return !markDelete.Less(hi) })
}

// ---- Shared and Key_Shared ----

func (d *Dispatcher) roundSharedLocked(p *plan) {
	m := &d.mu
	if m.replayDone {
		d.replayArrivedLocked()
	}
	if m.readDone {
		m.readDone = false
		entries := m.incoming
		if m.readErr != nil {
			releaseEntries(entries)
			d.readFailedLocked(m.readErr)
			m.readErr = nil
		} else {
			m.backoff = 0
			d.deliverSharedLocked(entries)
		}
		m.incoming = entries[:0]
	}
	if m.replayDirty && m.replaySelected == 0 && !m.replayReading && !m.retrying {
		if m.replay.len() == 0 {
			m.replayDirty = false
		} else if n := d.selectReplayLocked(); n == 0 {
			m.replayDirty = false
		} else {
			m.replaySelected = n
		}
	}
	if m.replaySelected > 0 && !m.replayReading {
		if m.reading {
			p.cancelRead = !m.cancelTried
			return
		}
		m.replayReading = true
		p.replay = true
		return
	}
	if len(m.consumers) == 0 && m.reading && !m.cancelTried {
		p.cancelRead = true
		return
	}
	if m.replayReading || !d.canReadLocked() || m.replay.len() >= d.opts.MaxReplayEntries {
		return
	}
	var permits int64
	for _, c := range m.consumers {
		if c.canTake(1) && !c.stalled {
			permits += c.permits
		}
	}
	if permits > 0 {
		m.reading = true
		p.read = true
		p.readN = d.readSizeLocked(permits)
	}
}

// deliverSharedLocked hands out newly read entries; those no consumer can
// take now wait in the replay set.
func (d *Dispatcher) deliverSharedLocked(entries []managedledger.Entry) {
	m := &d.mu
	keyShared := m.selector != nil
	for i := range entries {
		e := &entries[i]
		meta := d.parseLocked(e)
		switch {
		case meta.ServerOnly:
			d.acks = append(d.acks, e.Pos)
		default:
			var c *Consumer
			if keyShared {
				c = d.keyConsumerLocked(meta.KeyHash, meta.NumMessages, true)
			} else {
				c = d.nextSharedLocked(meta.NumMessages)
			}
			if c == nil {
				if !keyShared {
					// No consumer can take it: read no more for those that
					// lack the permits until they have more.
					for _, c := range m.consumers {
						c.markStalledIfShort(meta.NumMessages)
					}
				}
				m.replay.add(replayRec{pos: e.Pos, msgs: meta.NumMessages, hash: meta.KeyHash})
				break
			}
			c.permits -= int64(meta.NumMessages)
			d.deliverSharedEntryLocked(c, e, meta.NumMessages, meta.KeyHash, 0, false)
			*e = managedledger.Entry{}
			continue
		}
		e.Data.Release()
		*e = managedledger.Entry{}
	}
}

// keyConsumerLocked returns the consumer that may take an entry of key hash
// h with msgs messages now, or nil if the entry must wait. fresh says the
// entry was just read (it then also waits behind older entries of its key).
func (d *Dispatcher) keyConsumerLocked(h uint32, msgs int32, fresh bool) *Consumer {
	m := &d.mu
	if fresh && !d.opts.AllowOutOfOrderDelivery && m.replay.waitingFor(h) {
		return nil
	}
	c := m.selector.pick(h)
	if c == nil {
		return nil
	}
	if !c.canTake(msgs) {
		c.markStalledIfShort(msgs)
		return nil
	}
	if o, ok := m.hashOwners[h]; ok && o.c != c && !d.opts.AllowOutOfOrderDelivery {
		// The key moved to c but its previous consumer still holds unacked
		// entries of it: c waits until they are acknowledged (or
		// redelivered), so the key's order holds.
		return nil
	}
	return c
}

// nextSharedLocked picks the consumer for an entry of msgs messages: round
// robin over the consumers that can take it, MaxRoundRobinBatchSize messages
// each, preferring the lowest priority level.
func (d *Dispatcher) nextSharedLocked(msgs int32) *Consumer {
	m := &d.mu
	cs := m.consumers
	n := len(cs)
	if n == 0 {
		return nil
	}
	level, ok := 0, true
	if m.priorities {
		level, ok = d.bestLevelLocked(msgs)
		if !ok {
			return nil
		}
	}
	if m.rr >= n {
		m.rr = 0
	}
	if c := cs[m.rr]; m.rrSent < d.opts.MaxRoundRobinBatchSize && c.canTake(msgs) && (!m.priorities || c.priority == level) {
		m.rrSent += int(msgs)
		return c
	}
	for k := 1; k <= n; k++ {
		i := (m.rr + k) % n
		if c := cs[i]; c.canTake(msgs) && (!m.priorities || c.priority == level) {
			m.rr = i
			m.rrSent = int(msgs)
			return c
		}
	}
	return nil
}

func (d *Dispatcher) bestLevelLocked(msgs int32) (int, bool) {
	level, ok := 0, false
	for _, c := range d.mu.consumers {
		if c.canTake(msgs) && (!ok || c.priority < level) {
			level, ok = c.priority, true
		}
	}
	return level, ok
}

// deliverSharedEntryLocked records e as pending at c and queues it. c's
// permits are already taken, and with reserved so are its unacked messages.
func (d *Dispatcher) deliverSharedEntryLocked(c *Consumer, e *managedledger.Entry, msgs int32, hash, redeliveries uint32, reserved bool) {
	m := &d.mu
	m.pending[e.Pos] = pendingRec{c: c, msgs: msgs, hash: hash, redeliveries: redeliveries}
	if !reserved {
		d.addUnackedLocked(c, msgs)
	}
	if m.hashOwners != nil {
		o := m.hashOwners[hash]
		o.c = c
		o.entries++
		m.hashOwners[hash] = o
	}
	d.enqueueLocked(c, Delivery{Pos: e.Pos, Data: e.Data, NumMessages: msgs, RedeliveryCount: redeliveries})
}

func (d *Dispatcher) addUnackedLocked(c *Consumer, msgs int32) {
	c.unacked += int64(msgs)
	if lim := d.opts.MaxUnackedMessagesPerConsumer; lim > 0 && c.unacked >= int64(lim) {
		c.blocked = true
	}
}

// subUnackedLocked takes msgs off c's unacked messages and reports whether
// that lifted the unacked limit.
func (d *Dispatcher) subUnackedLocked(c *Consumer, msgs int32) bool {
	c.unacked -= int64(msgs)
	if c.blocked && c.unacked <= int64(d.opts.MaxUnackedMessagesPerConsumer/2) {
		c.blocked = false
		c.stalled = false
		d.mu.replayDirty = true
		return true
	}
	return false
}

// selectReplayLocked reserves waiting entries for the consumers that can
// take them now, oldest first, up to one read batch, and lists their
// positions in mu.replayReq.
func (d *Dispatcher) selectReplayLocked() int {
	m := &d.mu
	any := false
	for _, c := range m.consumers {
		if c.canTake(1) {
			any = true
			break
		}
	}
	if !any {
		return 0
	}
	keyShared := m.selector != nil
	if keyShared {
		clear(m.skipped)
	}
	m.replayReq = m.replayReq[:0]
	for i := range m.replay.recs {
		r := &m.replay.recs[i]
		if r.dead || r.reserved != nil {
			continue
		}
		var c *Consumer
		if keyShared {
			if _, skip := m.skipped[r.hash]; skip {
				continue
			}
			if c = d.keyConsumerLocked(r.hash, r.msgs, false); c == nil {
				// Later entries of this key must not overtake this one.
				m.skipped[r.hash] = struct{}{}
				continue
			}
		} else if c = d.nextSharedLocked(r.msgs); c == nil {
			continue
		}
		c.permits -= int64(r.msgs)
		d.addUnackedLocked(c, r.msgs)
		r.reserved = c
		m.replayReq = append(m.replayReq, r.pos)
		if len(m.replayReq) == d.opts.MaxReadBatchSize {
			break
		}
	}
	return len(m.replayReq)
}

// replayArrivedLocked hands out the entries of a replay read to the
// consumers they were reserved for.
func (d *Dispatcher) replayArrivedLocked() {
	m := &d.mu
	m.replayDone = false
	m.replayReading = false
	m.replaySelected = 0
	d.cond.Broadcast()
	entries := m.replayIn
	failed := m.replayErr != nil
	if failed {
		releaseEntries(entries)
		d.readFailedLocked(m.replayErr)
		m.replayErr = nil
	}
	for i := range entries {
		e := &entries[i]
		if e.Data == nil {
			continue
		}
		j := m.replay.find(e.Pos)
		if j < 0 || m.replay.recs[j].reserved == nil {
			e.Data.Release()
			*e = managedledger.Entry{}
			continue
		}
		r := m.replay.recs[j]
		if r.reserved.removed.Load() {
			m.replay.recs[j].reserved = nil
			m.replayDirty = true
			e.Data.Release()
			*e = managedledger.Entry{}
			continue
		}
		m.replay.remove(j)
		d.deliverSharedEntryLocked(r.reserved, e, r.msgs, r.hash, r.redeliveries, true)
		*e = managedledger.Entry{}
	}
	m.replayIn = entries[:0]
	// Positions that did not come back were acknowledged meanwhile (or are
	// gone from the ledger): drop them and give the permits back. After a
	// failed read, give the permits back and keep the entries waiting.
	for _, pos := range m.replayReq {
		j := m.replay.find(pos)
		if j < 0 || m.replay.recs[j].reserved == nil {
			continue
		}
		r := &m.replay.recs[j]
		if c := r.reserved; !c.removed.Load() {
			c.permits += int64(r.msgs)
			c.stalled = false
			d.subUnackedLocked(c, r.msgs)
		}
		if failed {
			r.reserved = nil
		} else {
			m.replay.remove(j)
		}
	}
	m.replayReq = m.replayReq[:0]
	m.replay.compactIfSparse()
	m.replayDirty = true
}

// unpendLocked forgets the pending entry at pos (acknowledged, or going back
// to the replay set). It reports whether that may let other entries go: a
// consumer left its unacked limit, or a key whose entries wait was freed.
func (d *Dispatcher) unpendLocked(pos base.Position, rec pendingRec) bool {
	m := &d.mu
	delete(m.pending, pos)
	wake := d.subUnackedLocked(rec.c, rec.msgs)
	if m.hashOwners != nil {
		o := m.hashOwners[rec.hash]
		if o.entries--; o.entries <= 0 {
			delete(m.hashOwners, rec.hash)
			if m.replay.waitingFor(rec.hash) {
				m.replayDirty = true
				wake = true
			}
		} else {
			m.hashOwners[rec.hash] = o
		}
	}
	return wake
}

// redeliverLocked moves c's pending entries (all of them, or those listed)
// back to the replay set, counting one more delivery for each.
func (d *Dispatcher) redeliverLocked(c *Consumer, positions []base.Position) {
	m := &d.mu
	recs := m.scratchRecs[:0]
	take := func(pos base.Position, rec pendingRec) {
		d.unpendLocked(pos, rec)
		recs = append(recs, replayRec{pos: pos, msgs: rec.msgs, hash: rec.hash, redeliveries: rec.redeliveries + 1})
	}
	if positions == nil {
		for pos, rec := range m.pending {
			if rec.c == c {
				take(pos, rec)
			}
		}
	} else {
		for _, pos := range positions {
			if rec, ok := m.pending[pos]; ok && rec.c == c {
				take(pos, rec)
			}
		}
	}
	if len(recs) > 0 {
		slices.SortFunc(recs, func(a, b replayRec) int { return a.pos.Compare(b.pos) })
		recs = slices.CompactFunc(recs, func(a, b replayRec) bool { return a.pos == b.pos })
		m.replay.addSorted(recs)
		m.replayDirty = true
	}
	clear(recs)
	m.scratchRecs = recs[:0]
}

// ---- debugging and stats ----

// Stats describes the dispatcher.
type Stats struct {
	Type           SubscriptionType
	Consumers      []ConsumerStats
	ActiveConsumer string // Exclusive and Failover
	// PendingEntries are delivered and not yet acknowledged (Shared and
	// Key_Shared); ReplayEntries wait for (re)delivery.
	PendingEntries int
	ReplayEntries  int
}

// Stats returns a snapshot of the dispatcher's state.
func (d *Dispatcher) Stats() Stats {
	m := &d.mu
	m.Lock()
	defer m.Unlock()
	s := Stats{Type: d.opts.Type, PendingEntries: len(m.pending), ReplayEntries: m.replay.len()}
	if m.active != nil {
		s.ActiveConsumer = m.active.name
	}
	for _, c := range m.consumers {
		s.Consumers = append(s.Consumers, c.statsLocked())
	}
	return s
}
