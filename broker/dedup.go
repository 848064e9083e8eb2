package broker

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
)

// Message deduplication (Pulsar's MessageDeduplication), per topic.
//
// The broker tracks, per producer name, the highest sequence id pushed to
// the managed ledger and the highest persisted. A SEND whose sequence id is
// not above the highest pushed is a duplicate: it is not stored, and gets a
// receipt with the message id (-1, -1) once the SENDs before it are
// acknowledged. The chunks of a chunked message share a sequence id; only
// the last one counts.
//
// The state survives restarts without a write per message: every
// DeduplicationSnapshotInterval entries the persisted map is stored in the
// managed ledger's properties together with the position it covers, and the
// cursor "pulsar.dedup" is moved to that position, so that the entries
// after it are kept. Loading the topic reads the snapshot and replays the
// entries after it, reading each one's producer name and sequence id from
// its metadata. Every acknowledged message is in the log, so the rebuilt
// state covers it.
//
// Properties:
//
//	pulsar.dedup.position   "ledger:entry" the snapshot covers
//	pulsar.dedup.seq.<name> highest persisted sequence id of producer <name>
const (
	dedupCursorName    = "pulsar.dedup"
	dedupPositionProp  = "pulsar.dedup.position"
	dedupSeqPropPrefix = "pulsar.dedup.seq."
)

type dedup struct {
	t *topic

	mu struct {
		sync.Mutex
		pushed        map[string]int64
		persisted     map[string]int64
		sinceSnapshot int
		snapshotting  bool
		closed        bool
	}
	cursor managedledger.Cursor
	wg     sync.WaitGroup
	errs   atomic.Int64
}

func newDedup(t *topic) *dedup {
	d := &dedup{t: t}
	d.mu.pushed = make(map[string]int64)
	d.mu.persisted = make(map[string]int64)
	return d
}

// recover rebuilds the state from the last snapshot and the entries after
// it, then takes a snapshot.
func (d *dedup) recover(ctx context.Context) error {
	ml := d.t.ml
	props := ml.Properties()
	start := base.Position{Ledger: -1}
	if s, ok := props[dedupPositionProp]; ok {
		p, err := parsePosition(s)
		if err != nil {
			return fmt.Errorf("broker: deduplication snapshot of %s: %w", d.t.name, err)
		}
		start = p
	}
	persisted := make(map[string]int64)
	for k, v := range props {
		name, ok := strings.CutPrefix(k, dedupSeqPropPrefix)
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			persisted[name] = n
		}
	}
	c, err := ml.NewNonDurableCursor(start)
	if err != nil {
		return err
	}
	var md pulsar.MessageMetadata
	for {
		es, err := c.ReadEntries(ctx, 100, 8<<20)
		if err != nil {
			_ = c.Close(ctx)
			return fmt.Errorf("broker: replay %s for deduplication: %w", d.t.name, err)
		}
		if len(es) == 0 {
			break
		}
		for i := range es {
			if err := decodeEntryMetadata(es[i].Data.Bytes(), &md); err == nil {
				if seq, ok := dedupSequence(&md); ok {
					name := string(md.ProducerName)
					if old, ok := persisted[name]; !ok || seq > old {
						persisted[name] = seq
					}
				}
			}
			es[i].Data.Release()
		}
	}
	_ = c.Close(ctx)
	d.mu.persisted = persisted
	d.mu.pushed = maps.Clone(persisted)
	cur, err := ml.OpenCursor(ctx, dedupCursorName, managedledger.Latest)
	if err != nil {
		return err
	}
	d.cursor = cur
	return d.snapshot(ctx, ml.LastConfirmed(), maps.Clone(persisted))
}

// dedupSequence is the sequence id an entry counts for, and whether it
// counts (not a chunk before the last).
func dedupSequence(md *pulsar.MessageMetadata) (int64, bool) {
	if md.HasChunk && md.ChunkID < md.NumChunksFromMsg-1 {
		return 0, false
	}
	return int64(max(md.SequenceID, md.HighestSequenceID)), true
}

// check reports whether a SEND from producer name is a duplicate, and
// records it as pushed if not. counted is false for chunks before the last,
// which are never duplicates and do not move the state.
func (d *dedup) check(name string, seq int64, counted bool) (dup bool) {
	if !counted {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if last, ok := d.mu.pushed[name]; ok && seq <= last {
		return true
	}
	d.mu.pushed[name] = seq
	return false
}

// lastPersisted is the highest persisted sequence id of a producer, -1 if
// none.
func (d *dedup) lastPersisted(name string) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.mu.persisted[name]; ok {
		return v
	}
	return -1
}

// completed records the outcome of a SEND that was pushed; called in the
// order of the entries.
func (d *dedup) completed(name string, seq int64, counted bool, pos base.Position, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		// Forget what was pushed and not persisted, so that the client's
		// resend is stored.
		if v, ok := d.mu.persisted[name]; ok {
			d.mu.pushed[name] = v
		} else {
			delete(d.mu.pushed, name)
		}
		return
	}
	if counted {
		if old, ok := d.mu.persisted[name]; !ok || seq > old {
			d.mu.persisted[name] = seq
		}
	}
	d.mu.sinceSnapshot++
	if d.mu.sinceSnapshot >= d.t.b.opts.DeduplicationSnapshotInterval && !d.mu.snapshotting && !d.mu.closed {
		d.mu.snapshotting = true
		d.mu.sinceSnapshot = 0
		snap := maps.Clone(d.mu.persisted)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			ctx, cancel := context.WithTimeout(d.t.b.ctx, d.t.b.opts.OperationTimeout)
			defer cancel()
			if err := d.snapshot(ctx, pos, snap); err != nil {
				d.errs.Add(1)
				d.t.log.Warn("broker: deduplication snapshot failed", "err", err)
			}
			d.mu.Lock()
			d.mu.snapshotting = false
			d.mu.Unlock()
		}()
	}
}

// snapshot stores persisted as covering the log up to pos, then lets the
// managed ledger trim what is before pos.
func (d *dedup) snapshot(ctx context.Context, pos base.Position, persisted map[string]int64) error {
	props := make(map[string]string, len(persisted)+1)
	props[dedupPositionProp] = pos.String()
	for name, seq := range persisted {
		props[dedupSeqPropPrefix+name] = strconv.FormatInt(seq, 10)
	}
	if err := d.t.ml.SetProperties(ctx, props); err != nil {
		return err
	}
	if d.cursor != nil && pos.Entry >= 0 {
		return d.cursor.MarkDelete(pos)
	}
	return nil
}

// close takes a last snapshot (best effort) and waits for one under way.
func (d *dedup) close(ctx context.Context) {
	d.mu.Lock()
	d.mu.closed = true
	snap := maps.Clone(d.mu.persisted)
	d.mu.Unlock()
	d.wg.Wait()
	if d.t.ml != nil && d.cursor != nil {
		if err := d.snapshot(ctx, d.t.ml.LastConfirmed(), snap); err != nil {
			d.t.log.Debug("broker: last deduplication snapshot failed", "err", err)
		}
	}
}

// parsePosition parses "ledger:entry".
func parsePosition(s string) (base.Position, error) {
	l, e, ok := strings.Cut(s, ":")
	if !ok {
		return base.Position{}, fmt.Errorf("bad position %q", s)
	}
	li, err1 := strconv.ParseInt(l, 10, 64)
	ei, err2 := strconv.ParseInt(e, 10, 64)
	if err1 != nil || err2 != nil {
		return base.Position{}, fmt.Errorf("bad position %q", s)
	}
	return base.Position{Ledger: base.LedgerID(li), Entry: base.EntryID(ei)}, nil
}

// decodeEntryMetadata decodes the MessageMetadata of a stored entry
// (0x0e01 | crc32c | size | metadata | payload) without verifying the
// checksum (the broker verified it when the entry was published).
func decodeEntryMetadata(entry []byte, md *pulsar.MessageMetadata) error {
	mdb, ok := entryMetadata(entry)
	if !ok {
		return pulsar.ErrBadMagic
	}
	return md.Decode(mdb)
}

// entryMetadata returns the encoded MessageMetadata of a stored entry.
func entryMetadata(entry []byte) ([]byte, bool) {
	if len(entry) < pulsar.EntryHeaderSize || binary.BigEndian.Uint16(entry) != pulsar.MagicChecksum {
		return nil, false
	}
	n := binary.BigEndian.Uint32(entry[6:])
	if uint64(n) > uint64(len(entry)-pulsar.EntryHeaderSize) {
		return nil, false
	}
	return entry[pulsar.EntryHeaderSize : pulsar.EntryHeaderSize+n], true
}

// meter counts messages and bytes, and turns them into rates on the stats
// loop.
type meter struct {
	msgs, bytes         atomic.Int64
	lastMsgs, lastBytes int64         // stats loop only
	rate, throughput    atomic.Uint64 // float64 bits: per second
}

func (m *meter) add(msgs, bytes int64) {
	m.msgs.Add(msgs)
	m.bytes.Add(bytes)
}

func (m *meter) update(elapsed float64) {
	n, b := m.msgs.Load(), m.bytes.Load()
	m.rate.Store(math.Float64bits(float64(n-m.lastMsgs) / elapsed))
	m.throughput.Store(math.Float64bits(float64(b-m.lastBytes) / elapsed))
	m.lastMsgs, m.lastBytes = n, b
}

func (m *meter) rates() (rate, throughput float64) {
	return math.Float64frombits(m.rate.Load()), math.Float64frombits(m.throughput.Load())
}
