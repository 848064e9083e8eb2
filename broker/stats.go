package broker

import (
	"slices"
	"strings"
	"time"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// Topic statistics in the JSON shapes of Pulsar's admin API (TopicStats,
// PersistentTopicInternalStats, ...), as pulsaradmin decodes them.

// TopicStats is a topic's statistics.
type TopicStats struct {
	MsgRateIn              float64                      `json:"msgRateIn"`
	MsgThroughputIn        float64                      `json:"msgThroughputIn"`
	MsgRateOut             float64                      `json:"msgRateOut"`
	MsgThroughputOut       float64                      `json:"msgThroughputOut"`
	MsgInCounter           int64                        `json:"msgInCounter"`
	BytesInCounter         int64                        `json:"bytesInCounter"`
	MsgOutCounter          int64                        `json:"msgOutCounter"`
	BytesOutCounter        int64                        `json:"bytesOutCounter"`
	AverageMsgSize         float64                      `json:"averageMsgSize"`
	StorageSize            int64                        `json:"storageSize"`
	BacklogSize            int64                        `json:"backlogSize"`
	MsgDropRate            float64                      `json:"msgDropRate,omitempty"`
	Publishers             []PublisherStats             `json:"publishers"`
	Subscriptions          map[string]SubscriptionStats `json:"subscriptions"`
	Replication            map[string]any               `json:"replication"`
	DeduplicationStatus    string                       `json:"deduplicationStatus"`
	TopicCreationTimeStamp int64                        `json:"topicCreationTimeStamp,omitempty"`
	LastPublishTimeStamp   int64                        `json:"lastPublishTimeStamp,omitempty"`
}

// PublisherStats describes a producer.
type PublisherStats struct {
	AccessMode      string            `json:"accessMode"`
	ProducerID      int64             `json:"producerId"`
	ProducerName    string            `json:"producerName"`
	MsgRateIn       float64           `json:"msgRateIn"`
	MsgThroughputIn float64           `json:"msgThroughputIn"`
	AverageMsgSize  float64           `json:"averageMsgSize"`
	Address         string            `json:"address"`
	ConnectedSince  string            `json:"connectedSince"`
	ClientVersion   string            `json:"clientVersion"`
	Metadata        map[string]string `json:"metadata"`
}

// SubscriptionStats describes a subscription.
type SubscriptionStats struct {
	Type               string          `json:"type"`
	MsgRateOut         float64         `json:"msgRateOut"`
	MsgThroughputOut   float64         `json:"msgThroughputOut"`
	MsgRateRedeliver   float64         `json:"msgRateRedeliver"`
	MsgBacklog         int64           `json:"msgBacklog"`
	BacklogSize        int64           `json:"backlogSize"`
	UnackedMessages    int64           `json:"unackedMessages"`
	MsgOutCounter      int64           `json:"msgOutCounter"`
	BytesOutCounter    int64           `json:"bytesOutCounter"`
	IsDurable          bool            `json:"isDurable"`
	IsReplicated       bool            `json:"isReplicated"`
	ActiveConsumerName string          `json:"activeConsumerName,omitempty"`
	Consumers          []ConsumerStats `json:"consumers"`
}

// ConsumerStats describes a consumer.
type ConsumerStats struct {
	ConsumerName     string            `json:"consumerName"`
	AvailablePermits int64             `json:"availablePermits"`
	UnackedMessages  int64             `json:"unackedMessages"`
	BlockedOnUnacked bool              `json:"blockedConsumerOnUnackedMsgs"`
	MsgRateOut       float64           `json:"msgRateOut"`
	MsgThroughputOut float64           `json:"msgThroughputOut"`
	MsgOutCounter    int64             `json:"msgOutCounter"`
	BytesOutCounter  int64             `json:"bytesOutCounter"`
	MsgRateRedeliver float64           `json:"msgRateRedeliver"`
	Address          string            `json:"address"`
	ConnectedSince   string            `json:"connectedSince"`
	ClientVersion    string            `json:"clientVersion"`
	Metadata         map[string]string `json:"metadata"`
}

// InternalStats is a persistent topic's internal statistics (its managed
// ledger's).
type InternalStats struct {
	EntriesAddedCounter        int64                          `json:"entriesAddedCounter"`
	NumberOfEntries            int64                          `json:"numberOfEntries"`
	TotalSize                  int64                          `json:"totalSize"`
	CurrentLedgerEntries       int64                          `json:"currentLedgerEntries"`
	CurrentLedgerSize          int64                          `json:"currentLedgerSize"`
	LastLedgerCreatedTimestamp string                         `json:"lastLedgerCreatedTimestamp"`
	LastConfirmedEntry         string                         `json:"lastConfirmedEntry"`
	State                      string                         `json:"state"`
	Ledgers                    []InternalLedgerInfo           `json:"ledgers"`
	Cursors                    map[string]InternalCursorStats `json:"cursors"`
}

// InternalLedgerInfo describes one ledger of a topic.
type InternalLedgerInfo struct {
	LedgerID  int64 `json:"ledgerId"`
	Entries   int64 `json:"entries"`
	Size      int64 `json:"size"`
	Timestamp int64 `json:"timestamp"`
	Offloaded bool  `json:"offloaded"`
}

// InternalCursorStats describes a cursor.
type InternalCursorStats struct {
	MarkDeletePosition          string `json:"markDeletePosition"`
	ReadPosition                string `json:"readPosition"`
	PendingReadOps              int    `json:"pendingReadOps"`
	MessagesConsumedCounter     int64  `json:"messagesConsumedCounter"`
	CursorLedger                int64  `json:"cursorLedger"`
	IndividuallyDeletedMessages string `json:"individuallyDeletedMessages"`
	State                       string `json:"state"`
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func accessModeName(m pulsar.ProducerAccessMode) string {
	switch m {
	case pulsar.AccessExclusive:
		return "Exclusive"
	case pulsar.AccessWaitForExclusive:
		return "WaitForExclusive"
	case pulsar.AccessExclusiveWithFencing:
		return "ExclusiveWithFencing"
	}
	return "Shared"
}

// stats returns the topic's statistics.
func (t *topic) stats() TopicStats {
	st := TopicStats{
		Publishers:             []PublisherStats{},
		Subscriptions:          map[string]SubscriptionStats{},
		Replication:            map[string]any{},
		DeduplicationStatus:    "Disabled",
		TopicCreationTimeStamp: t.created.UnixMilli(),
		LastPublishTimeStamp:   t.lastSend.Load(),
	}
	st.MsgRateIn, st.MsgThroughputIn = t.in.rates()
	st.MsgRateOut, st.MsgThroughputOut = t.out.rates()
	st.MsgInCounter, st.BytesInCounter = t.in.msgs.Load(), t.in.bytes.Load()
	st.MsgOutCounter, st.BytesOutCounter = t.out.msgs.Load(), t.out.bytes.Load()
	if st.MsgInCounter > 0 {
		st.AverageMsgSize = float64(st.BytesInCounter) / float64(st.MsgInCounter)
	}
	if t.dedup.Load() != nil {
		st.DeduplicationStatus = "Enabled"
	}
	if t.ml != nil {
		st.StorageSize = t.ml.TotalSize()
	}
	for _, p := range t.producers() {
		st.Publishers = append(st.Publishers, p.stats())
	}
	slices.SortFunc(st.Publishers, func(a, b PublisherStats) int { return strings.Compare(a.ProducerName, b.ProducerName) })
	for _, s := range t.subscriptions() {
		ss := s.stats()
		st.Subscriptions[s.name] = ss
		st.BacklogSize = max(st.BacklogSize, ss.BacklogSize)
	}
	if !t.name.Persistent() {
		st.MsgDropRate = float64(t.npDrops.Load())
	}
	return st
}

func (p *producer) stats() PublisherStats {
	rate, tput := p.in.rates()
	ps := PublisherStats{
		AccessMode:      accessModeName(p.accessMode),
		ProducerID:      int64(p.id),
		ProducerName:    p.name,
		MsgRateIn:       rate,
		MsgThroughputIn: tput,
		Address:         p.conn.remote,
		ConnectedSince:  formatTime(p.connectedSince),
		ClientVersion:   p.conn.clientVersion,
		Metadata:        p.metadata,
	}
	if n := p.in.msgs.Load(); n > 0 {
		ps.AverageMsgSize = float64(p.in.bytes.Load()) / float64(n)
	}
	if ps.Metadata == nil {
		ps.Metadata = map[string]string{}
	}
	return ps
}

func (s *subscription) stats() SubscriptionStats {
	ss := SubscriptionStats{Type: s.subType().String(), IsDurable: s.durable, Consumers: []ConsumerStats{}}
	ss.MsgRateOut, ss.MsgThroughputOut = s.out.rates()
	ss.MsgRateRedeliver, _ = s.redeliver.rates()
	ss.MsgOutCounter, ss.BytesOutCounter = s.out.msgs.Load(), s.out.bytes.Load()
	if s.cursor != nil {
		ss.MsgBacklog = s.cursor.Backlog()
		if n := s.t.ml.NumberOfEntries(); n > 0 {
			ss.BacklogSize = s.t.ml.TotalSize() * ss.MsgBacklog / n
		}
	}
	for _, cs := range s.consumers() {
		c := cs.stats()
		ss.UnackedMessages += c.UnackedMessages
		ss.Consumers = append(ss.Consumers, c)
	}
	s.mu.Lock()
	d := s.mu.disp
	s.mu.Unlock()
	if d != nil {
		if a := d.ActiveConsumer(); a != nil {
			ss.ActiveConsumerName = a.Name()
		}
	}
	return ss
}

func (cs *consumer) stats() ConsumerStats {
	c := ConsumerStats{
		ConsumerName:   cs.name,
		Address:        cs.conn.remote,
		ConnectedSince: formatTime(cs.connectedSince),
		ClientVersion:  cs.conn.clientVersion,
		Metadata:       cs.metadata,
	}
	c.MsgRateOut, c.MsgThroughputOut = cs.out.rates()
	c.MsgOutCounter, c.BytesOutCounter = cs.out.msgs.Load(), cs.out.bytes.Load()
	if dc := cs.dc.Load(); dc != nil {
		st := dc.Stats()
		c.AvailablePermits = st.Permits
		c.UnackedMessages = st.Unacked
		c.BlockedOnUnacked = st.Blocked
	} else {
		c.AvailablePermits = cs.npPermits.Load()
	}
	if c.Metadata == nil {
		c.Metadata = map[string]string{}
	}
	return c
}

// internalStats returns the managed ledger's statistics.
func (t *topic) internalStats() InternalStats {
	is := t.ml.InternalStats()
	out := InternalStats{
		EntriesAddedCounter:  is.EntriesAddedCounter,
		NumberOfEntries:      is.NumberOfEntries,
		TotalSize:            is.TotalSize,
		CurrentLedgerEntries: is.CurrentLedgerEntries,
		CurrentLedgerSize:    is.CurrentLedgerSize,
		LastConfirmedEntry:   is.LastConfirmedEntry.String(),
		State:                is.State,
		Ledgers:              []InternalLedgerInfo{},
		Cursors:              map[string]InternalCursorStats{},
	}
	if !is.LastLedgerCreatedTimestamp.IsZero() {
		out.LastLedgerCreatedTimestamp = formatTime(is.LastLedgerCreatedTimestamp)
	}
	for _, l := range is.Ledgers {
		out.Ledgers = append(out.Ledgers, InternalLedgerInfo{LedgerID: int64(l.LedgerID), Entries: l.Entries,
			Size: l.Size, Timestamp: l.Timestamp.UnixMilli(), Offloaded: l.Offloaded})
	}
	for name, c := range is.Cursors {
		out.Cursors[name] = InternalCursorStats{
			MarkDeletePosition:          c.MarkDeletePosition.String(),
			ReadPosition:                c.ReadPosition.String(),
			PendingReadOps:              c.PendingReadOps,
			MessagesConsumedCounter:     c.MessagesConsumedCounter,
			CursorLedger:                int64(c.CursorLedger),
			IndividuallyDeletedMessages: c.IndividuallyDeletedMessages,
			State:                       c.State,
		}
	}
	return out
}

// mergeStats adds a partition's statistics into a partitioned topic's.
func mergeStats(dst *TopicStats, src TopicStats) {
	dst.MsgRateIn += src.MsgRateIn
	dst.MsgThroughputIn += src.MsgThroughputIn
	dst.MsgRateOut += src.MsgRateOut
	dst.MsgThroughputOut += src.MsgThroughputOut
	dst.MsgInCounter += src.MsgInCounter
	dst.BytesInCounter += src.BytesInCounter
	dst.MsgOutCounter += src.MsgOutCounter
	dst.BytesOutCounter += src.BytesOutCounter
	dst.StorageSize += src.StorageSize
	dst.BacklogSize += src.BacklogSize
	dst.Publishers = append(dst.Publishers, src.Publishers...)
	for name, s := range src.Subscriptions {
		d, ok := dst.Subscriptions[name]
		if !ok {
			d = SubscriptionStats{Type: s.Type, IsDurable: s.IsDurable, Consumers: []ConsumerStats{}}
		}
		d.MsgRateOut += s.MsgRateOut
		d.MsgThroughputOut += s.MsgThroughputOut
		d.MsgRateRedeliver += s.MsgRateRedeliver
		d.MsgBacklog += s.MsgBacklog
		d.BacklogSize += s.BacklogSize
		d.UnackedMessages += s.UnackedMessages
		d.MsgOutCounter += s.MsgOutCounter
		d.BytesOutCounter += s.BytesOutCounter
		d.Consumers = append(d.Consumers, s.Consumers...)
		dst.Subscriptions[name] = d
	}
	if src.DeduplicationStatus == "Enabled" {
		dst.DeduplicationStatus = "Enabled"
	}
	if dst.MsgInCounter > 0 {
		dst.AverageMsgSize = float64(dst.BytesInCounter) / float64(dst.MsgInCounter)
	}
}
