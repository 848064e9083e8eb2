// Package broker is Magnetar's broker: it serves the Pulsar binary protocol
// to producers and consumers, owns topics (their managed ledgers, producers
// and subscriptions), answers lookups, and serves Pulsar's admin API (v2)
// and lookup API over HTTP, with Pulsar's metric names on a Prometheus
// registry. The official clients (pulsar-client-go and its admin library,
// held to it by the suite in package compat) work against it unchanged.
//
// A Broker owns every topic it is asked about: Magnetar runs one broker per
// cluster for now (`magnetar standalone`), and lookups always answer
// Connect to itself.
//
//	b, err := broker.New(broker.Options{MetadataStore: s, ManagedLedgers: f, ...})
//	err = b.Start(ctx)        // listen, register the cluster, create public/default
//	b.RegisterHTTP(mux)       // /admin/v2/..., /lookup/v2/...
//	err = b.Close(ctx)        // disconnect clients, close topics
//
// # Connections
//
// A connection has a read loop and a write loop. The read loop reads the
// socket into a 64 KiB buffer and splits frames with
// pulsar.FrameReader (which bounds frames by MaxMessageSize plus
// pulsar.FramePadding and verifies checksums). A SEND's entry, from the
// 0x0e01 magic to the end of the frame, is copied once into a pooled
// reference-counted buffer (bufs.Buf) — for a frame larger than the read
// buffer it is read from the socket straight into that buffer — and that
// buffer is what the managed ledger stores and what consumers are sent:
//
//	socket --read--> read buffer --copy--> bufs.Buf --AddEntry--> managed ledger
//	                                                  |
//	consumer socket <--writev-- [MESSAGE header | bufs.Buf] <-- dispatcher
//
// SEND, FLOW, ACK and the like are served in line; requests that wait for
// metadata or storage (lookups, PRODUCER, SUBSCRIBE, SEEK, ...) on
// goroutines of their own, at most 256 per connection. The write loop takes
// everything queued at once and writes it with one vectored write.
//
// The handshake is CONNECT, answered by CONNECTED (the protocol version the
// two share, the maximum message size). The broker pings a connection that
// was silent for KeepAliveInterval and drops it after twice that. A frame it
// cannot accept (not CONNECT first, too large, not protobuf, a second
// CONNECT) is answered with ERROR and the connection is closed once that is
// written; a SEND with a bad checksum gets SEND_ERROR ChecksumError, and is
// closed too. Other connections are not disturbed.
//
// Bounds: a connection with MaxPendingPublishRequestsPerConnection SENDs
// awaiting persistence, or a broker with MaxPublishBufferBytes of them, stops
// reading (until half of them completed); a connection whose client does
// not read its responses stops reading requests past
// MaxOutboundBytesPerConnection; deliveries are bounded by the consumers'
// permits.
//
// # What the broker promises the clients
//
//   - Every required protobuf field is set, no command the Go client does
//     not handle is ever sent (no REACHED_END_OF_TOPIC), LOOKUP_RESPONSE
//     always carries its response, PRODUCER_SUCCESS carries a schema version
//     only when the producer gave a schema.
//   - Receipts of a producer come in the order of its SENDs; the payload
//     bytes reach consumers exactly as the producer sent them (compressed,
//     batched, chunked or encrypted, the broker does not look inside).
//   - With deduplication, a SEND whose sequence id is not above the highest
//     persisted for its producer name is acknowledged with message id
//     (-1, -1) and not stored; the state survives restarts (see dedup.go).
//   - SEEK disconnects the subscription's consumers (CLOSE_CONSUMER) before
//     the cursor moves and SUCCESS is sent, as the Go client requires;
//     unloading or deleting a topic disconnects its producers and consumers
//     with CLOSE_PRODUCER and CLOSE_CONSUMER, and they reconnect.
//   - Non-persistent topics deliver to the connected consumers that have
//     permits, and keep nothing.
//
// # Metadata
//
// Clusters, tenants, namespace policies and partitioned-topic metadata live
// in the configuration store at Pulsar's paths (see resources.go); topics
// are the managed ledgers under /managed-ledgers; schemas are kept per topic
// under /schemas (see schema.go). A topic is partition i of a partitioned
// topic when its name ends in -partition-<i>; partitions are topics of
// their own.
//
// # Lock order
//
//	Broker.mu
//	topic.mu -> subscription.mu -> dispatcher (package dispatcher) -> outbound.mu
//	conn.mu -> producer.mu -> dedup.mu, outbound.mu
//
// No lock is held during network, metadata or storage I/O. The one lock
// held while calling a dispatcher or a cursor is subscription.mu, while a
// consumer joins (and a dispatcher may be replaced): nothing a dispatcher
// or a cursor calls back (sinks, read callbacks) takes it.
package broker
