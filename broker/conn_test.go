package broker

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

func TestHandshake(t *testing.T) {
	b := newWorld(t).start(func(o *Options) { o.MaxMessageSize = 1 << 20 })
	c := b.dial()
	c.send(&pulsar.Command{Type: pulsar.TypeConnect, Connect: pulsar.CommandConnect{ClientVersion: "raw", ProtocolVersion: 99}})
	r := c.next()
	if r.Type != pulsar.TypeConnected || r.Connected.ServerVersion == "" || r.Connected.MaxMessageSize != 1<<20 ||
		r.Connected.ProtocolVersion != maxProtocolVersion {
		t.Fatalf("CONNECTED %+v", r.Connected)
	}
	c.send(&pulsar.Command{Type: pulsar.TypePing})
	if r := c.next(); r.Type != pulsar.TypePong {
		t.Fatalf("PING answered with %v", r.Type)
	}
	// An older client gets its own version back.
	c2 := b.dial()
	c2.send(&pulsar.Command{Type: pulsar.TypeConnect, Connect: pulsar.CommandConnect{ClientVersion: "old", ProtocolVersion: 6}})
	if r := c2.next(); r.Connected.ProtocolVersion != 6 {
		t.Fatalf("protocol version %d, want 6", r.Connected.ProtocolVersion)
	}
}

// A connection that misbehaves gets ERROR and is closed; the broker goes on
// serving the others.
func TestBadClientsAreDisconnected(t *testing.T) {
	b := newWorld(t).start(func(o *Options) { o.MaxMessageSize = 64 << 10 })
	good := b.connect()
	ping := func() {
		t.Helper()
		good.send(&pulsar.Command{Type: pulsar.TypePing})
		if r := good.next(); r.Type != pulsar.TypePong {
			t.Fatalf("good connection: %v", r.Type)
		}
	}
	for _, tc := range []struct {
		name      string
		handshake bool
		bytes     func() []byte
		want      []pulsar.Type
	}{
		{"no CONNECT first", false, func() []byte { return pulsar.AppendFrame(nil, &pulsar.Command{Type: pulsar.TypePing}) },
			[]pulsar.Type{pulsar.TypeError}},
		{"garbage", true, func() []byte { return []byte{0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4} },
			[]pulsar.Type{pulsar.TypeError}},
		{"bad protobuf", true, func() []byte {
			return []byte{0, 0, 0, 8, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff}
		}, []pulsar.Type{pulsar.TypeError}},
		{"oversize frame", true, func() []byte {
			return binary.BigEndian.AppendUint32(nil, 64<<10+pulsar.FramePadding+1)
		}, []pulsar.Type{pulsar.TypeError}},
		{"second CONNECT", true, func() []byte {
			return pulsar.AppendFrame(nil, &pulsar.Command{Type: pulsar.TypeConnect, Connect: pulsar.CommandConnect{ClientVersion: "x"}})
		}, []pulsar.Type{pulsar.TypeError}},
		{"bad checksum", true, func() []byte {
			f := sendFrame(1, 0, "p", []byte("hello"))
			f[len(f)-1] ^= 0xff
			return f
		}, []pulsar.Type{pulsar.TypeSendError}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *rawClient
			if tc.handshake {
				c = b.connect()
			} else {
				c = b.dial()
			}
			c.write(tc.bytes())
			got := c.expectClosed()
			if len(got) != len(tc.want) || got[0] != tc.want[0] {
				t.Fatalf("frames before the close: %v, want %v", got, tc.want)
			}
			ping()
		})
	}
}

// A bad checksum is answered with SEND_ERROR ChecksumError, as Pulsar does.
func TestChecksumError(t *testing.T) {
	b := newWorld(t).start()
	c := b.connect()
	c.send(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "t", ProducerID: 1, RequestID: 1}})
	if r := c.next(); r.Type != pulsar.TypeProducerSuccess {
		t.Fatalf("PRODUCER: %v %+v", r.Type, r.Error)
	}
	f := sendFrame(1, 7, "p", []byte("hello"))
	f[len(f)-2] ^= 1
	c.write(f)
	r := c.next()
	if r.Type != pulsar.TypeSendError || r.SendError.Error != pulsar.ChecksumError || r.SendError.SequenceID != 7 {
		t.Fatalf("got %v %+v", r.Type, r.SendError)
	}
}

// Requests the broker does not serve get ERROR NotAllowed (the connection
// stays up); unknown request-less commands are ignored.
func TestUnsupportedCommands(t *testing.T) {
	b := newWorld(t).start()
	c := b.connect()
	c.send(&pulsar.Command{Type: pulsar.TypeNewTxn, NewTxn: pulsar.CommandNewTxn{RequestID: 42}})
	r := c.next()
	if r.Type != pulsar.TypeError || r.Error.RequestID != 42 || r.Error.Error != pulsar.NotAllowedError {
		t.Fatalf("NEW_TXN answered with %v %+v", r.Type, r.Error)
	}
	c.send(&pulsar.Command{Type: pulsar.TypeAck, Ack: pulsar.CommandAck{ConsumerID: 9, MessageIDs: []pulsar.MessageIDData{pulsar.NewMessageID(1, 1)}}})
	c.send(&pulsar.Command{Type: pulsar.TypeFlow, Flow: pulsar.CommandFlow{ConsumerID: 9, MessagePermits: 10}})
	c.send(&pulsar.Command{Type: pulsar.TypePing})
	if r := c.next(); r.Type != pulsar.TypePong {
		t.Fatalf("after commands for an unknown consumer: %v", r.Type)
	}
}

func TestLookupAndPartitionedMetadata(t *testing.T) {
	b := newWorld(t).start()
	c := b.connect()
	rid := uint64(0)
	lookup := func(topic string) *pulsar.CommandLookupTopicResponse {
		rid++
		c.send(&pulsar.Command{Type: pulsar.TypeLookup, Lookup: pulsar.CommandLookupTopic{Topic: topic, RequestID: rid}})
		r := c.next()
		if r.Type != pulsar.TypeLookupResponse || r.LookupResponse.RequestID != rid {
			t.Fatalf("LOOKUP %s: %v", topic, r.Type)
		}
		return &r.LookupResponse
	}
	for _, name := range []string{"t", "public/default/t", "persistent://public/default/t", "t-partition-3", "non-persistent://a/b/c"} {
		if r := lookup(name); r.Response != pulsar.LookupConnect || r.BrokerServiceURL != b.ServiceURL() || !r.Authoritative {
			t.Fatalf("LOOKUP %s: %+v", name, r)
		}
	}
	if r := lookup("a/b"); r.Response != pulsar.LookupFailed || r.Error != pulsar.InvalidTopicName {
		t.Fatalf("LOOKUP a/b: %+v", r)
	}
	meta := func(topic string) *pulsar.CommandPartitionedTopicMetadataResponse {
		rid++
		c.send(&pulsar.Command{Type: pulsar.TypePartitionedMetadata, PartitionedMetadata: pulsar.CommandPartitionedTopicMetadata{Topic: topic, RequestID: rid}})
		r := c.next()
		if r.Type != pulsar.TypePartitionedMetadataResponse {
			t.Fatalf("PARTITIONED_METADATA %s: %v", topic, r.Type)
		}
		return &r.PartitionedMetadataResponse
	}
	if err := b.res.createPartitioned(t.Context(), mustParse(t, "parted"), 4, nil); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"parted": 4, "persistent://public/default/parted": 4, "parted-partition-1": 0, "nothing": 0} {
		if r := meta(name); r.Partitions != want || r.Response != pulsar.PartitionedMetadataSuccess {
			t.Fatalf("PARTITIONED_METADATA %s: %+v, want %d", name, r, want)
		}
	}
	if r := meta("x://bad"); r.Response != pulsar.PartitionedMetadataFailed || r.Error != pulsar.InvalidTopicName {
		t.Fatalf("bad name: %+v", r)
	}
}

func mustParse(t testing.TB, s string) TopicName {
	t.Helper()
	tn, err := ParseTopicName(s)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// PRODUCER_SUCCESS carries a schema version only for producers that gave a
// schema (the Go client crashes on one otherwise).
func TestProducerSchemaVersion(t *testing.T) {
	b := newWorld(t).start()
	c := b.connect()
	c.send(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "s", ProducerID: 1, RequestID: 1}})
	r := c.next()
	if r.Type != pulsar.TypeProducerSuccess || r.ProducerSuccess.SchemaVersion != nil || r.ProducerSuccess.LastSequenceID != -1 ||
		!r.ProducerSuccess.ProducerReady || !strings.HasPrefix(r.ProducerSuccess.ProducerName, "standalone-") {
		t.Fatalf("PRODUCER without a schema: %+v", r.ProducerSuccess)
	}
	schema := pulsar.Schema{Name: "s", Type: pulsar.SchemaString, SchemaData: []byte{}}
	c.send(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "s", ProducerID: 2, RequestID: 2,
		Schema: schema, HasSchema: true}})
	r = c.next()
	if r.Type != pulsar.TypeProducerSuccess || len(r.ProducerSuccess.SchemaVersion) != 8 {
		t.Fatalf("PRODUCER with a schema: %+v", r.ProducerSuccess)
	}
	c.send(&pulsar.Command{Type: pulsar.TypeGetSchema, GetSchema: pulsar.CommandGetSchema{RequestID: 3, Topic: "s"}})
	r = c.next()
	if r.Type != pulsar.TypeGetSchemaResponse || !r.GetSchemaResponse.HasSchema || r.GetSchemaResponse.Schema.Type != pulsar.SchemaString {
		t.Fatalf("GET_SCHEMA: %+v", r.GetSchemaResponse)
	}
	c.send(&pulsar.Command{Type: pulsar.TypeGetSchema, GetSchema: pulsar.CommandGetSchema{RequestID: 4, Topic: "other"}})
	r = c.next()
	if r.Type != pulsar.TypeGetSchemaResponse || !r.GetSchemaResponse.HasErrorCode || r.GetSchemaResponse.ErrorMessage == "" {
		t.Fatalf("GET_SCHEMA of a topic without one: %+v", r.GetSchemaResponse)
	}
	// A schema of another type is refused; the error carries a message.
	c.send(&pulsar.Command{Type: pulsar.TypeGetOrCreateSchema, GetOrCreateSchema: pulsar.CommandGetOrCreateSchema{RequestID: 5,
		Topic: "s", Schema: pulsar.Schema{Name: "s", Type: pulsar.SchemaJSON, SchemaData: []byte("{}")}}})
	r = c.next()
	if r.Type != pulsar.TypeGetOrCreateSchemaResponse || r.GetOrCreateSchemaResponse.ErrorCode != pulsar.IncompatibleSchema ||
		r.GetOrCreateSchemaResponse.ErrorMessage == "" {
		t.Fatalf("GET_OR_CREATE_SCHEMA: %+v", r.GetOrCreateSchemaResponse)
	}
}

// A message above the maximum size gets SEND_ERROR NotAllowed; a chunk of
// that size is accepted.
func TestSendTooLarge(t *testing.T) {
	b := newWorld(t).start(func(o *Options) { o.MaxMessageSize = 4 << 10 })
	c := b.connect()
	c.send(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "big", ProducerID: 1, RequestID: 1}})
	c.next()
	c.write(sendFrame(1, 0, "p", make([]byte, 5<<10)))
	r := c.next()
	if r.Type != pulsar.TypeSendError || r.SendError.Error != pulsar.NotAllowedError {
		t.Fatalf("oversize SEND: %v %+v", r.Type, r.SendError)
	}
	md := pulsar.MessageMetadata{ProducerName: []byte("p"), SequenceID: 1, PublishTime: 1, UUID: []byte("p-1"),
		NumChunksFromMsg: 2, TotalChunkMsgSize: 8 << 10, ChunkID: 0, HasChunk: true}
	f := pulsar.AppendSendFrame(nil, &pulsar.CommandSend{ProducerID: 1, SequenceID: 1, IsChunk: true}, &md, make([]byte, 4<<10))
	c.write(f)
	if r := c.next(); r.Type != pulsar.TypeSendReceipt || r.SendReceipt.SequenceID != 1 {
		t.Fatalf("chunk: %v %+v", r.Type, r.SendError)
	}
}

// Receipts come in send order, with consecutive entry ids; a frame bigger
// than the read buffer is read straight into its entry buffer.
func TestReceiptsInOrder(t *testing.T) {
	w := newWorld(t)
	b := w.start()
	c := b.connect()
	c.send(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "order", ProducerID: 1, RequestID: 1}})
	c.next()
	var frames []byte
	const n = 200
	for i := 0; i < n; i++ {
		size := 10
		if i%50 == 7 {
			size = 3 * readBufSize // takes the big-frame path
		}
		frames = append(frames, sendFrame(1, uint64(i), "p", make([]byte, size))...)
	}
	go c.write(frames)
	var last uint64
	for i := 0; i < n; i++ {
		r := c.next()
		if r.Type != pulsar.TypeSendReceipt || r.SendReceipt.SequenceID != uint64(i) {
			t.Fatalf("receipt %d: %v seq %d", i, r.Type, r.SendReceipt.SequenceID)
		}
		if i > 0 && r.SendReceipt.MessageID.EntryID != last+1 {
			t.Fatalf("receipt %d: entry %d after %d", i, r.SendReceipt.MessageID.EntryID, last)
		}
		last = r.SendReceipt.MessageID.EntryID
	}
}

// With SENDs awaiting persistence at the limit, the broker stops reading
// the connection until half of them completed.
func TestPublishBackPressure(t *testing.T) {
	w := newWorld(t)
	const max = 16
	b := w.start(func(o *Options) { o.MaxPendingPublishRequestsPerConnection = max })
	c := b.connect()
	c.send(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "bp", ProducerID: 1, RequestID: 1}})
	c.next()
	w.bk.HoldAdds(true)
	var frames []byte
	for i := 0; i < max; i++ {
		frames = append(frames, sendFrame(1, uint64(i), "p", []byte("x"))...)
	}
	c.write(frames)
	conn := waitConn(t, b.Broker)
	waitUntil(t, "the read loop to pause", func() bool { return conn.paused.Load() })
	// This PING waits in the socket while the connection is paused.
	c.send(&pulsar.Command{Type: pulsar.TypePing})
	w.bk.HoldAdds(false)
	receipts := 0
	for {
		r := c.next()
		if r.Type == pulsar.TypePong {
			break
		}
		if r.Type != pulsar.TypeSendReceipt {
			t.Fatalf("got %v", r.Type)
		}
		receipts++
	}
	if receipts < max/2 {
		t.Fatalf("PONG after %d receipts: the broker read the PING while %d SENDs were pending", receipts, max-receipts)
	}
}

func waitConn(t *testing.T, b *Broker) *conn {
	t.Helper()
	var c *conn
	waitUntil(t, "a connection", func() bool {
		cs := b.connections()
		if len(cs) == 1 {
			c = cs[0]
		}
		return c != nil
	})
	return c
}
