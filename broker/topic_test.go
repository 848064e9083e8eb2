package broker

import (
	"errors"
	"testing"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

func TestParseTopicName(t *testing.T) {
	f := func(in, want string, partition int, base string) {
		t.Helper()
		tn, err := ParseTopicName(in)
		if err != nil {
			t.Fatalf("ParseTopicName(%q): %v", in, err)
		}
		if tn.String() != want || tn.Partition != partition || tn.Base().String() != base {
			t.Fatalf("ParseTopicName(%q) = %s (partition %d, base %s), want %s (%d, %s)", in, tn, tn.Partition, tn.Base(), want, partition, base)
		}
	}
	f("t", "persistent://public/default/t", -1, "persistent://public/default/t")
	f("a/b/t", "persistent://a/b/t", -1, "persistent://a/b/t")
	f("persistent://a/b/t", "persistent://a/b/t", -1, "persistent://a/b/t")
	f("non-persistent://a/b/t", "non-persistent://a/b/t", -1, "non-persistent://a/b/t")
	f("t-partition-2", "persistent://public/default/t-partition-2", 2, "persistent://public/default/t")
	f("x-partition-", "persistent://public/default/x-partition-", -1, "persistent://public/default/x-partition-")
	f("x-partition-01", "persistent://public/default/x-partition-01", -1, "persistent://public/default/x-partition-01")
	f("my topic", "persistent://public/default/my topic", -1, "persistent://public/default/my topic")
	for _, bad := range []string{"", "a/b", "a/b/", "http://a/b/c", "persistent://a/b/c/d", "persistent://a b/c/d", "//a/b",
		"persistent://a//c"} {
		if _, err := ParseTopicName(bad); !errors.Is(err, ErrInvalidTopicName) {
			t.Errorf("ParseTopicName(%q): %v, want ErrInvalidTopicName", bad, err)
		}
	}
	tn, _ := ParseTopicName("a/b/my topic")
	if got := tn.ManagedLedgerName(); got != "a/b/persistent/my+topic" {
		t.Fatalf("managed ledger name %q", got)
	}
	if got, err := decodeName("my+topic%2Fx"); err != nil || got != "my topic/x" {
		t.Fatalf("decodeName: %q %v", got, err)
	}
}

// Deduplication state survives a broker restart: the snapshot in the
// managed ledger's properties plus the entries after it.
func TestDeduplicationSurvivesRestart(t *testing.T) {
	w := newWorld(t)
	opts := func(o *Options) {
		o.BrokerDeduplicationEnabled = true
		o.DeduplicationSnapshotInterval = 3 // snapshots, and entries after the last one
	}
	b := w.start(opts)
	c := b.connect()
	c.send(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "d", ProducerID: 1, RequestID: 1,
		ProducerName: "p", UserProvidedProducerName: true}})
	if r := c.next(); r.Type != pulsar.TypeProducerSuccess || r.ProducerSuccess.LastSequenceID != -1 {
		t.Fatalf("PRODUCER: %v %+v", r.Type, r.ProducerSuccess)
	}
	for i := uint64(0); i < 10; i++ {
		c.write(sendFrame(1, i, "p", []byte("x")))
		if r := c.next(); r.Type != pulsar.TypeSendReceipt || int64(r.SendReceipt.MessageID.EntryID) < 0 {
			t.Fatalf("SEND %d: %v %+v", i, r.Type, r.SendReceipt)
		}
	}
	b.stop()

	b = w.start(opts)
	c = b.connect()
	c.send(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "d", ProducerID: 1, RequestID: 1,
		ProducerName: "p", UserProvidedProducerName: true}})
	if r := c.next(); r.Type != pulsar.TypeProducerSuccess || r.ProducerSuccess.LastSequenceID != 9 {
		t.Fatalf("PRODUCER after the restart: %v %+v", r.Type, r.ProducerSuccess)
	}
	// Sequence ids 5..12: 5..9 are duplicates, 10..12 new.
	for i := uint64(5); i < 13; i++ {
		c.write(sendFrame(1, i, "p", []byte("x")))
		r := c.next()
		dup := int64(r.SendReceipt.MessageID.EntryID) == -1
		if r.Type != pulsar.TypeSendReceipt || r.SendReceipt.SequenceID != i || dup != (i < 10) {
			t.Fatalf("SEND %d after the restart: %v %+v (duplicate %v)", i, r.Type, r.SendReceipt, dup)
		}
	}
	tp := b.loadedTopic(mustParse(t, "d"))
	if n := tp.in.msgs.Load(); n != 3 {
		t.Fatalf("%d messages stored after the restart, want 3", n)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"no store", Options{}},
		{"bad type", Options{MetadataStore: newWorld(t).store, AutoTopicCreationType: "x"}},
		{"bad cluster", Options{MetadataStore: newWorld(t).store, ClusterName: "a/b"}},
	} {
		if _, err := New(tc.o); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
