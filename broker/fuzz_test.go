package broker

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// FuzzConnection feeds arbitrary bytes to a connection, after a valid
// CONNECT or instead of one. Whatever the bytes, the broker must not panic,
// must end the connection once the client goes away (or earlier, with an
// error), and must go on serving other connections.
//
//	go test -run '^$' -fuzz FuzzConnection -fuzztime 60s ./broker/
func FuzzConnection(f *testing.F) {
	connect := pulsar.AppendFrame(nil, &pulsar.Command{Type: pulsar.TypeConnect,
		Connect: pulsar.CommandConnect{ClientVersion: "fuzz", ProtocolVersion: 20}})
	frame := func(c *pulsar.Command) []byte { return pulsar.AppendFrame(nil, c) }
	var session []byte
	session = append(session, frame(&pulsar.Command{Type: pulsar.TypePing})...)
	session = append(session, frame(&pulsar.Command{Type: pulsar.TypeLookup, Lookup: pulsar.CommandLookupTopic{Topic: "f", RequestID: 1}})...)
	session = append(session, frame(&pulsar.Command{Type: pulsar.TypePartitionedMetadata,
		PartitionedMetadata: pulsar.CommandPartitionedTopicMetadata{Topic: "f", RequestID: 2}})...)
	session = append(session, frame(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "f", ProducerID: 1, RequestID: 3}})...)
	session = append(session, sendFrame(1, 0, "fuzz", []byte("payload"))...)
	session = append(session, frame(&pulsar.Command{Type: pulsar.TypeSubscribe, Subscribe: pulsar.CommandSubscribe{Topic: "f",
		Subscription: "s", ConsumerID: 1, RequestID: 4, Durable: true, InitialPosition: pulsar.PositionEarliest}})...)
	session = append(session, pulsar.AppendFlowFrame(nil, 1, 100)...)
	session = append(session, pulsar.AppendAckFrame(nil, &pulsar.CommandAck{ConsumerID: 1,
		MessageIDs: []pulsar.MessageIDData{pulsar.NewMessageID(1, 0)}})...)
	session = append(session, frame(&pulsar.Command{Type: pulsar.TypeSeek, Seek: pulsar.CommandSeek{ConsumerID: 1, RequestID: 5,
		MessageID: pulsar.NewMessageID(1, 0), HasMessageID: true}})...)
	session = append(session, frame(&pulsar.Command{Type: pulsar.TypeCloseConsumer, CloseConsumer: pulsar.CommandCloseConsumer{ConsumerID: 1, RequestID: 6}})...)
	f.Add(true, session)
	f.Add(true, []byte{})
	f.Add(false, session)
	f.Add(true, []byte{0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Add(true, []byte{0xff, 0xff, 0xff, 0xff})
	f.Add(false, []byte("GET / HTTP/1.1\r\n\r\n"))
	bad := sendFrame(1, 0, "fuzz", []byte("payload"))
	bad[len(bad)-1] ^= 1
	f.Add(true, append(frame(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "f", ProducerID: 1, RequestID: 3}}), bad...))

	w := newWorld(f)
	b := w.start(func(o *Options) {
		o.MaxMessageSize = 64 << 10
		o.OperationTimeout = 2 * time.Second
		o.HandshakeTimeout = 2 * time.Second
	})
	serve := func(t *testing.T, input []byte) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			b.ServeConn(server)
			close(done)
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		_ = client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = client.Write(input)
		_ = client.Close()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the connection did not end after the client closed it")
		}
	}
	f.Fuzz(func(t *testing.T, withConnect bool, data []byte) {
		input := data
		if withConnect {
			input = append(append([]byte{}, connect...), data...)
		}
		serve(t, input)
		// The broker still serves a well-behaved client.
		c := b.connectFor(t)
		c.send(&pulsar.Command{Type: pulsar.TypePing})
		if r := c.next(); r.Type != pulsar.TypePong {
			t.Fatalf("after the fuzzed connection, PING got %v", r.Type)
		}
		_ = c.nc.Close()
	})
}

// The broker pings a silent client and drops it when it does not answer.
func TestKeepAlive(t *testing.T) {
	b := newWorld(t).start(func(o *Options) { o.KeepAliveInterval = 20 * time.Millisecond })
	c := b.connect()
	if r := c.next(); r.Type != pulsar.TypePing {
		t.Fatalf("got %v, want PING", r.Type)
	}
	c.send(&pulsar.Command{Type: pulsar.TypePong})
	// Answered: it is pinged again, not dropped.
	if r := c.next(); r.Type != pulsar.TypePing {
		t.Fatalf("got %v, want a second PING", r.Type)
	}
	// Not answered: dropped.
	for _, typ := range c.expectClosed() {
		if typ != pulsar.TypePing {
			t.Fatalf("got %v before the close", typ)
		}
	}
}
