package broker

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
)

// messageIDJSON is a message id in the admin API.
type messageIDJSON struct {
	LedgerID       int64 `json:"ledgerId"`
	EntryID        int64 `json:"entryId"`
	PartitionIndex int   `json:"partitionIndex"`
	BatchIndex     *int  `json:"batchIndex,omitempty"`
}

// ---- Listing, creating and deleting ----

func (h *httpAPI) listTopics(w http.ResponseWriter, r *http.Request, domain string, partitioned bool) error {
	tenant, ns, err := h.pathNamespace(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if _, _, err := h.b.res.policies(ctx, tenant, ns); err != nil {
		return err
	}
	if partitioned {
		pts, err := h.b.res.partitionedTopics(ctx, tenant, ns, domain)
		if err != nil {
			return err
		}
		return writeJSON(w, sortedNames(pts))
	}
	var ts []TopicName
	if domain == domainPersistent {
		if ts, err = h.b.res.persistentTopics(ctx, tenant, ns); err != nil {
			return err
		}
	} else {
		for _, t := range h.b.loadedTopics() {
			if !t.name.Persistent() && t.name.Tenant == tenant && t.name.Namespace == ns {
				ts = append(ts, t.name)
			}
		}
	}
	return writeJSON(w, sortedNames(ts))
}

func (h *httpAPI) createTopic(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	var props map[string]string
	if _, err := readJSON(r, &props); err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if _, ok, err := h.b.res.partitions(ctx, tn); err != nil {
		return err
	} else if ok {
		return errorf(ErrAlreadyExists, "partitioned topic %s already exists", tn)
	}
	if tn.Persistent() {
		exists, err := h.b.ml.Exists(ctx, tn.ManagedLedgerName())
		if err != nil {
			return err
		}
		if exists {
			return errorf(ErrAlreadyExists, "topic %s already exists", tn)
		}
	} else if h.b.loadedTopic(tn) != nil {
		return errorf(ErrAlreadyExists, "topic %s already exists", tn)
	}
	if _, err := h.b.getTopic(ctx, tn, loadCreate); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) deleteTopic(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	if err := h.b.deleteTopic(ctx, tn, queryBool(r, "force")); err != nil {
		return err
	}
	return noContent(w)
}

// deleteTopic deletes a non-partitioned topic (or one partition).
func (b *Broker) deleteTopic(ctx context.Context, tn TopicName, force bool) error {
	t, err := b.getTopic(ctx, tn, loadExisting)
	if err != nil {
		return err
	}
	return t.delete(ctx, force)
}

// deletePartitionedTopic deletes every partition and the partitioned
// metadata.
func (b *Broker) deletePartitionedTopic(ctx context.Context, tn TopicName, force bool) error {
	n, ok, err := b.res.partitions(ctx, tn)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(ErrTopicNotFound, "partitioned topic %s does not exist", tn)
	}
	for i := 0; i < n; i++ {
		if err := b.deleteTopic(ctx, tn.PartitionName(i), force); err != nil && !errors.Is(err, ErrTopicNotFound) {
			return err
		}
	}
	if err := b.res.deletePartitioned(ctx, tn); err != nil {
		return err
	}
	return b.reg.delete(ctx, tn)
}

// readPartitions reads a partition count: a bare integer, or
// {"partitions": N, ...}.
func readPartitions(r *http.Request) (int, map[string]string, error) {
	var raw json.RawMessage
	ok, err := readJSON(r, &raw)
	if err != nil {
		return 0, nil, err
	}
	if !ok {
		return 0, nil, errorf(ErrBadRequest, "missing partition count")
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n, nil, nil
	}
	var pm partitionedMetadata
	if err := json.Unmarshal(raw, &pm); err != nil {
		return 0, nil, errorf(ErrBadRequest, "invalid partitioned topic metadata: %v", err)
	}
	return pm.Partitions, pm.Properties, nil
}

func (h *httpAPI) checkPartitions(n int) error {
	if n <= 0 {
		return errorf(ErrBadRequest, "the number of partitions must be positive, not %d", n)
	}
	if max := h.b.opts.MaxNumPartitionsPerPartitionedTopic; max > 0 && n > max {
		return errorf(ErrBadRequest, "the number of partitions %d exceeds the maximum %d", n, max)
	}
	return nil
}

func (h *httpAPI) createPartitioned(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	n, props, err := readPartitions(r)
	if err != nil {
		return err
	}
	if err := h.checkPartitions(n); err != nil {
		return err
	}
	if tn.IsPartition() {
		return errorf(ErrBadRequest, "%s is a partition name", tn)
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if _, _, err := h.b.res.policies(ctx, tn.Tenant, tn.Namespace); err != nil {
		return err
	}
	if tn.Persistent() {
		if exists, err := h.b.ml.Exists(ctx, tn.ManagedLedgerName()); err != nil {
			return err
		} else if exists {
			return errorf(ErrAlreadyExists, "a non-partitioned topic %s already exists", tn)
		}
	}
	if err := h.b.res.createPartitioned(ctx, tn, n, props); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) updatePartitioned(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	n, _, err := readPartitions(r)
	if err != nil {
		return err
	}
	if err := h.checkPartitions(n); err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if err := h.b.res.updatePartitioned(ctx, tn, n); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) getPartitions(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	n, err := h.b.partitionCount(ctx, tn, queryBool(r, "checkAllowAutoCreation"))
	if err != nil {
		return err
	}
	return writeJSON(w, partitionedMetadata{Partitions: n})
}

func (h *httpAPI) deletePartitioned(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	if err := h.b.deletePartitionedTopic(ctx, tn, queryBool(r, "force")); err != nil {
		return err
	}
	return noContent(w)
}

// ---- Stats ----

// existingTopic loads a topic that exists.
func (h *httpAPI) existingTopic(ctx context.Context, tn TopicName) (*topic, error) {
	if _, ok, err := h.b.res.partitions(ctx, tn); err != nil {
		return nil, err
	} else if ok {
		return nil, errorf(ErrTopicNotFound, "%s is a partitioned topic: ask for its partitions", tn)
	}
	return h.b.getTopic(ctx, tn, loadExisting)
}

// partitionsOrSelf lists the topics an operation on tn applies to: the
// partitions of a partitioned topic, or tn.
func (h *httpAPI) partitionsOrSelf(ctx context.Context, tn TopicName, mode loadMode) ([]*topic, error) {
	n, ok, err := h.b.res.partitions(ctx, tn)
	if err != nil {
		return nil, err
	}
	if !ok {
		t, err := h.b.getTopic(ctx, tn, mode)
		if err != nil {
			return nil, err
		}
		return []*topic{t}, nil
	}
	ts := make([]*topic, 0, n)
	for i := 0; i < n; i++ {
		t, err := h.b.getTopic(ctx, tn.PartitionName(i), loadCreate)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, nil
}

func (h *httpAPI) topicStats(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	t, err := h.existingTopic(ctx, tn)
	if err != nil {
		return err
	}
	return writeJSON(w, t.stats())
}

func (h *httpAPI) partitionedStats(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	n, ok, err := h.b.res.partitions(ctx, tn)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(ErrTopicNotFound, "partitioned topic %s does not exist", tn)
	}
	perPartition := true
	if v := r.URL.Query().Get("perPartition"); v != "" {
		perPartition, _ = strconv.ParseBool(v)
	}
	agg := TopicStats{Publishers: []PublisherStats{}, Subscriptions: map[string]SubscriptionStats{},
		Replication: map[string]any{}, DeduplicationStatus: "Disabled"}
	parts := map[string]TopicStats{}
	for i := 0; i < n; i++ {
		pn := tn.PartitionName(i)
		t, err := h.b.getTopic(ctx, pn, loadExisting)
		if errors.Is(err, ErrTopicNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		st := t.stats()
		mergeStats(&agg, st)
		if perPartition {
			parts[pn.String()] = st
		}
	}
	out := struct {
		TopicStats
		Metadata   partitionedMetadata   `json:"metadata"`
		Partitions map[string]TopicStats `json:"partitions"`
	}{TopicStats: agg, Metadata: partitionedMetadata{Partitions: n}, Partitions: parts}
	return writeJSON(w, out)
}

func (h *httpAPI) internalStats(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	t, err := h.existingTopic(ctx, tn)
	if err != nil {
		return err
	}
	if t.ml == nil {
		return errorf(ErrNotAllowed, "a non-persistent topic has no internal stats")
	}
	return writeJSON(w, t.internalStats())
}

func (h *httpAPI) lastMessageID(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	t, err := h.existingTopic(ctx, tn)
	if err != nil {
		return err
	}
	if t.ml == nil {
		return errorf(ErrNotAllowed, "a non-persistent topic has no last message id")
	}
	last := t.ml.LastConfirmed()
	if last.Entry < 0 {
		last = base.Position{Ledger: -1, Entry: -1}
	}
	return writeJSON(w, messageIDJSON{LedgerID: int64(last.Ledger), EntryID: int64(last.Entry), PartitionIndex: tn.Partition})
}

func (h *httpAPI) messageIDByTime(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ts, err := pathInt(r, "timestamp")
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	t, err := h.existingTopic(ctx, tn)
	if err != nil {
		return err
	}
	if t.ml == nil {
		return errorf(ErrNotAllowed, "a non-persistent topic keeps no messages")
	}
	p, err := findByPublishTime(ctx, t.ml, ts)
	if err != nil {
		return err
	}
	if last := t.ml.LastConfirmed(); last.Less(p) {
		return errorf(ErrNotFound, "no message of %s was published at or after %d", tn, ts)
	}
	e, err := t.ml.ReadEntry(ctx, p)
	if err != nil {
		return err
	}
	e.Data.Release()
	return writeJSON(w, messageIDJSON{LedgerID: int64(e.Pos.Ledger), EntryID: int64(e.Pos.Entry), PartitionIndex: tn.Partition})
}

func (h *httpAPI) unloadTopic(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	n, ok, err := h.b.res.partitions(ctx, tn)
	if err != nil {
		return err
	}
	names := []TopicName{tn}
	if ok {
		names = names[:0]
		for i := 0; i < n; i++ {
			names = append(names, tn.PartitionName(i))
		}
	}
	for _, name := range names {
		if t := h.b.loadedTopic(name); t != nil {
			if err := t.close(ctx); err != nil {
				return err
			}
		}
	}
	return noContent(w)
}

func (h *httpAPI) terminateTopic(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	return errorf(ErrNotAllowed, "terminating topics is not supported")
}

// ---- Subscriptions ----

func (h *httpAPI) listSubscriptions(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	ts, err := h.partitionsOrSelf(ctx, tn, loadExisting)
	if err != nil {
		return err
	}
	names := []string{}
	for _, t := range ts {
		for _, s := range t.subscriptions() {
			names = append(names, s.name)
		}
	}
	slices.Sort(names)
	return writeJSON(w, slices.Compact(names))
}

// subscriptionsOf returns the subscription on tn (on each of its
// partitions).
func (h *httpAPI) subscriptionsOf(ctx context.Context, tn TopicName, name string) ([]*subscription, error) {
	ts, err := h.partitionsOrSelf(ctx, tn, loadExisting)
	if err != nil {
		return nil, err
	}
	var ss []*subscription
	for _, t := range ts {
		s := t.subscription(name)
		if s == nil {
			return nil, errorf(ErrSubscriptionGone, "subscription %s of %s does not exist", name, t.name)
		}
		ss = append(ss, s)
	}
	return ss, nil
}

func (h *httpAPI) createSubscription(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	name, err := pathSubscription(r)
	if err != nil {
		return err
	}
	id := messageIDJSON{LedgerID: math.MaxInt64, EntryID: math.MaxInt64}
	if _, err := readJSON(r, &id); err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	// Creating a subscription creates the topic, as in Pulsar.
	ts, err := h.partitionsOrSelf(ctx, tn, loadAutoCreate)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if t.subscription(name) != nil {
			return errorf(ErrAlreadyExists, "subscription %s of %s already exists", name, t.name)
		}
	}
	for _, t := range ts {
		if t.ml == nil {
			return errorf(ErrNotAllowed, "subscriptions of non-persistent topics are made by consumers")
		}
		initial := managedledger.Latest
		if id.LedgerID < 0 {
			initial = managedledger.Earliest
		}
		s, err := t.getOrCreateSubscription(ctx, name, true, initial, base.Position{})
		if err != nil {
			return err
		}
		if id.LedgerID >= 0 && id.LedgerID != math.MaxInt64 {
			if err := s.resetCursor(ctx, base.Position{Ledger: base.LedgerID(id.LedgerID), Entry: base.EntryID(id.EntryID)}); err != nil {
				return err
			}
		}
	}
	return noContent(w)
}

func (h *httpAPI) deleteSubscription(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	name, err := pathSubscription(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	ss, err := h.subscriptionsOf(ctx, tn, name)
	if err != nil {
		return err
	}
	force := queryBool(r, "force")
	for _, s := range ss {
		if err := s.delete(ctx, force, nil); err != nil {
			return err
		}
	}
	return noContent(w)
}

func (h *httpAPI) forEachSubscription(r *http.Request, tn TopicName, fn func(context.Context, *subscription) error) error {
	name, err := pathSubscription(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	ss, err := h.subscriptionsOf(ctx, tn, name)
	if err != nil {
		return err
	}
	for _, s := range ss {
		if err := fn(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (h *httpAPI) skip(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	n, err := pathInt(r, "n")
	if err != nil {
		return err
	}
	if n < 0 {
		return errorf(ErrBadRequest, "cannot skip %d messages", n)
	}
	if err := h.forEachSubscription(r, tn, func(ctx context.Context, s *subscription) error { return s.skip(ctx, n) }); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) skipAll(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	if err := h.forEachSubscription(r, tn, func(ctx context.Context, s *subscription) error { return s.clearBacklog(ctx) }); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) resetCursorToTime(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	ts, err := pathInt(r, "timestamp")
	if err != nil {
		return err
	}
	err = h.forEachSubscription(r, tn, func(ctx context.Context, s *subscription) error {
		if s.cursor == nil {
			return errorf(ErrNotAllowed, "a non-persistent subscription cannot be reset")
		}
		p, err := findByPublishTime(ctx, s.t.ml, ts)
		if err != nil {
			return err
		}
		return s.resetCursor(ctx, p)
	})
	if err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) resetCursorToID(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	var id messageIDJSON
	if ok, err := readJSON(r, &id); err != nil {
		return err
	} else if !ok {
		return errorf(ErrBadRequest, "missing message id")
	}
	err := h.forEachSubscription(r, tn, func(ctx context.Context, s *subscription) error {
		if s.cursor == nil {
			return errorf(ErrNotAllowed, "a non-persistent subscription cannot be reset")
		}
		return s.resetCursor(ctx, seekPosition(s.t, base.Position{Ledger: base.LedgerID(id.LedgerID), Entry: base.EntryID(id.EntryID)}))
	})
	if err != nil {
		return err
	}
	return noContent(w)
}

// expire acknowledges the messages of s published more than seconds ago.
func expire(ctx context.Context, s *subscription, seconds int64, now time.Time) error {
	if s.cursor == nil {
		return nil
	}
	p, err := findByPublishTime(ctx, s.t.ml, now.UnixMilli()-seconds*1000)
	if err != nil {
		return err
	}
	md := base.Position{Ledger: p.Ledger, Entry: p.Entry - 1}
	if md.Entry < 0 || !s.cursor.MarkDeletePosition().Less(md) {
		return nil
	}
	err = s.cursor.MarkDelete(md)
	if errors.Is(err, managedledger.ErrInvalidPosition) {
		return nil
	}
	return err
}

func (h *httpAPI) expireMessages(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	sec, err := pathInt(r, "seconds")
	if err != nil {
		return err
	}
	now := h.b.opts.Now()
	if err := h.forEachSubscription(r, tn, func(ctx context.Context, s *subscription) error { return expire(ctx, s, sec, now) }); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) expireAllMessages(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	sec, err := pathInt(r, "seconds")
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	ts, err := h.partitionsOrSelf(ctx, tn, loadExisting)
	if err != nil {
		return err
	}
	now := h.b.opts.Now()
	for _, t := range ts {
		for _, s := range t.subscriptions() {
			if err := expire(ctx, s, sec, now); err != nil {
				return err
			}
		}
	}
	return noContent(w)
}

// ---- Peeking ----

// peek returns the n-th unacknowledged message of a subscription (n from
// 1), as Pulsar does: the uncompressed payload as the body (a whole batch
// for a batch entry), the id and metadata in X-Pulsar-* headers.
func (h *httpAPI) peek(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	name, err := pathSubscription(r)
	if err != nil {
		return err
	}
	n, err := pathInt(r, "n")
	if err != nil {
		return err
	}
	if n < 1 {
		return errorf(ErrBadRequest, "message positions start at 1, not %d", n)
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	t, err := h.existingTopic(ctx, tn)
	if err != nil {
		return err
	}
	s := t.subscription(name)
	if s == nil {
		return errorf(ErrSubscriptionGone, "subscription %s of %s does not exist", name, tn)
	}
	if s.cursor == nil {
		return errorf(ErrNotAllowed, "a non-persistent subscription has no backlog")
	}
	e, err := nthUnacked(ctx, t, s.cursor, n)
	if err != nil {
		return err
	}
	defer e.Data.Release()
	return writeEntry(w, e, tn)
}

// nthUnacked reads the n-th entry after the cursor's mark-delete position
// that the cursor has not acknowledged.
func nthUnacked(ctx context.Context, t *topic, cur managedledger.Cursor, n int64) (managedledger.Entry, error) {
	reader, err := t.ml.NewNonDurableCursor(cur.MarkDeletePosition())
	if err != nil {
		return managedledger.Entry{}, err
	}
	defer func() { _ = reader.Close(ctx) }()
	for {
		es, err := reader.ReadEntries(ctx, 100, 8<<20)
		if err != nil {
			return managedledger.Entry{}, err
		}
		if len(es) == 0 {
			return managedledger.Entry{}, errorf(ErrNotFound, "subscription has fewer than %d unacknowledged messages", n)
		}
		var found managedledger.Entry
		for i := range es {
			if found.Data == nil && !cur.IsAcknowledged(es[i].Pos) {
				n--
				if n == 0 {
					found = es[i]
					continue
				}
			}
			es[i].Data.Release()
		}
		if found.Data != nil {
			return found, nil
		}
	}
}

func (h *httpAPI) getMessageByID(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	l, err := pathInt(r, "ledger")
	if err != nil {
		return err
	}
	e, err := pathInt(r, "entry")
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	t, err := h.existingTopic(ctx, tn)
	if err != nil {
		return err
	}
	if t.ml == nil {
		return errorf(ErrNotAllowed, "a non-persistent topic keeps no messages")
	}
	entry, err := t.ml.ReadEntry(ctx, base.Position{Ledger: base.LedgerID(l), Entry: base.EntryID(e)})
	if errors.Is(err, managedledger.ErrInvalidPosition) {
		return errorf(ErrNotFound, "message %d:%d of %s not found", l, e, tn)
	}
	if err != nil {
		return err
	}
	defer entry.Data.Release()
	return writeEntry(w, entry, tn)
}

// writeEntry writes a stored entry as the admin API returns messages.
func writeEntry(w http.ResponseWriter, e managedledger.Entry, tn TopicName) error {
	mdb, body, err := pulsar.ParseEntry(e.Data.Bytes())
	if err != nil {
		return fmt.Errorf("broker: entry %v of %s: %w", e.Pos, tn, err)
	}
	var md pulsar.MessageMetadata
	if err := md.Decode(mdb); err != nil {
		return fmt.Errorf("broker: entry %v of %s: %w", e.Pos, tn, err)
	}
	payload, err := decompress(md.Compression, body, int(md.UncompressedSize))
	if err != nil {
		return fmt.Errorf("broker: entry %v of %s: %w", e.Pos, tn, err)
	}
	hd := w.Header()
	id := fmt.Sprintf("%d:%d", e.Pos.Ledger, e.Pos.Entry)
	if tn.IsPartition() {
		id += ":" + strconv.Itoa(tn.Partition)
	}
	hd.Set("X-Pulsar-Message-ID", id)
	hd.Set("X-Pulsar-Publish-Time", time.UnixMilli(int64(md.PublishTime)).UTC().Format("2006-01-02T15:04:05.000Z"))
	hd.Set("X-Pulsar-Producer-Name", string(md.ProducerName))
	hd.Set("X-Pulsar-Sequence-Id", strconv.FormatUint(md.SequenceID, 10))
	if md.HasNumMessagesInBatch {
		hd.Set("X-Pulsar-Num-Batch-Message", strconv.Itoa(int(md.NumMessagesInBatch)))
		hd.Set("X-Pulsar-Batch-Size", strconv.Itoa(len(payload)))
	} else if len(md.Properties) > 0 {
		props := make(map[string]string, len(md.Properties))
		for _, kv := range md.Properties {
			props[string(kv.Key)] = string(kv.Value)
		}
		if data, err := json.Marshal(props); err == nil {
			hd.Set("X-Pulsar-Property", string(data))
		}
	}
	if md.PartitionKey != nil {
		hd.Set("X-Pulsar-Partition-Key", string(md.PartitionKey))
	}
	if md.EventTime != 0 {
		hd.Set("X-Pulsar-Event-Time", time.UnixMilli(int64(md.EventTime)).UTC().Format("2006-01-02T15:04:05.000Z"))
	}
	hd.Set("Content-Type", "application/octet-stream")
	_, err = w.Write(payload)
	return err
}

// maxDecompressed bounds what decompress produces.
const maxDecompressed = 64 << 20

// decompress undoes a producer's compression (peek only: the broker never
// decompresses on the publish or delivery paths).
func decompress(c pulsar.CompressionType, body []byte, size int) ([]byte, error) {
	if size > maxDecompressed {
		return nil, fmt.Errorf("uncompressed size %d too large", size)
	}
	switch c {
	case pulsar.CompressionNone:
		return body, nil
	case pulsar.CompressionLZ4:
		out := make([]byte, size)
		n, err := lz4.UncompressBlock(body, out)
		if err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		return out[:n], nil
	case pulsar.CompressionZLib:
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("zlib: %w", err)
		}
		defer zr.Close()
		return io.ReadAll(io.LimitReader(zr, maxDecompressed))
	case pulsar.CompressionZstd:
		d, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxDecompressed))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		return d.DecodeAll(body, make([]byte, 0, size))
	case pulsar.CompressionSnappy:
		return snappy.Decode(nil, body)
	}
	return nil, fmt.Errorf("unknown compression %d", c)
}

// ---- Lookup ----

func (h *httpAPI) lookup(w http.ResponseWriter, r *http.Request, tn TopicName) error {
	return writeJSON(w, map[string]string{
		"brokerUrl":    h.b.serviceURL,
		"brokerUrlTls": "",
		"httpUrl":      h.b.webURL,
		"httpUrlTls":   "",
		"nativeUrl":    h.b.serviceURL,
	})
}

// ---- Schemas ----

// schemaResponse is a schema version in the admin API.
type schemaResponse struct {
	Version    int64             `json:"version"`
	Type       string            `json:"type"`
	Timestamp  int64             `json:"timestamp"`
	Data       string            `json:"data"`
	Properties map[string]string `json:"properties"`
}

func (h *httpAPI) schemaTopic(r *http.Request) (TopicName, error) {
	tn, err := pathTopic(r, domainPersistent)
	if err != nil {
		return tn, err
	}
	return tn, nil
}

func (h *httpAPI) getSchema(w http.ResponseWriter, r *http.Request) error {
	tn, err := h.schemaTopic(r)
	if err != nil {
		return err
	}
	var version []byte
	if v := r.PathValue("version"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errorf(ErrBadRequest, "invalid schema version %q", v)
		}
		version = encodeSchemaVersion(n)
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	e, err := h.b.reg.get(ctx, tn, version)
	if err != nil {
		return err
	}
	props := e.Properties
	if props == nil {
		props = map[string]string{}
	}
	return writeJSON(w, schemaResponse{Version: e.Version, Type: schemaTypeName(e.Type), Timestamp: e.Timestamp,
		Data: string(e.Data), Properties: props})
}

func (h *httpAPI) postSchema(w http.ResponseWriter, r *http.Request) error {
	tn, err := h.schemaTopic(r)
	if err != nil {
		return err
	}
	var in struct {
		Type       string            `json:"type"`
		Schema     string            `json:"schema"`
		Properties map[string]string `json:"properties"`
	}
	if ok, err := readJSON(r, &in); err != nil {
		return err
	} else if !ok {
		return errorf(ErrBadRequest, "missing schema")
	}
	typ, ok := schemaTypeByName(strings.ToUpper(in.Type))
	if !ok {
		return errorf(ErrBadRequest, "unknown schema type %q", in.Type)
	}
	s := pulsar.Schema{Name: tn.Base().String(), SchemaData: []byte(in.Schema), Type: typ}
	for k, v := range in.Properties {
		s.Properties = append(s.Properties, pulsar.KeyValue{Key: k, Value: v})
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	v, err := h.b.reg.getOrCreate(ctx, tn, &s)
	if err != nil {
		return err
	}
	n, _ := decodeSchemaVersion(v)
	return writeJSON(w, map[string]int64{"version": n})
}

func (h *httpAPI) deleteSchema(w http.ResponseWriter, r *http.Request) error {
	tn, err := h.schemaTopic(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if err := h.b.reg.delete(ctx, tn); err != nil {
		return err
	}
	return noContent(w)
}
