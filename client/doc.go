// Package client is Magnetar's lean Apache Pulsar client: producers with
// batching and compression, consumers with flow control and acknowledgements,
// binary lookup and partitioned topics, over the Pulsar binary protocol
// (internal/wire/pulsar). It is built to be the load generator's engine, so
// it must never be what limits a benchmark: the hot paths reuse their frame
// buffers and do not allocate in steady state.
//
// # Connections
//
// A Client holds a pool of TCP connections, Options.ConnectionsPerBroker per
// broker address; producers and consumers are spread over them round-robin.
// Every connection has exactly two goroutines:
//
//	producers/consumers --frames--> [write queue] --writev--> socket   (write loop)
//	socket --read buffer--> FrameReader --> receipts, messages, replies (read loop)
//
// The write loop takes everything queued while its previous write was in
// flight and sends it with one vectored write (net.Buffers), so frames are
// batched under load without any artificial delay. The read loop parses
// frames in place from one growing read buffer and dispatches them: send
// receipts complete producer callbacks, MESSAGE frames go to consumers,
// replies complete requests matched by request id.
//
// There is no reconnection: when a connection fails, its producers and
// consumers fail with the error (pending sends are completed with it), and
// a new producer or consumer gets a fresh connection. A load generator wants
// to see such a failure, not have it hidden by retries.
//
// # Producers
//
// A partition producer owns a sequence counter, an open batch and a ring of
// pending messages (at most ProducerOptions.MaxPendingMessages, counting
// the open batch; SendAsync blocks while the ring is full, so a slow broker
// slows the caller down instead of growing memory). A batch is flushed when
// it reaches BatchingMaxMessages or BatchingMaxBytes, or BatchingMaxDelay
// after its first message. The batch body is the run of
//
//	| size u32 | SingleMessageMetadata | payload |
//
// records, compressed as a whole (LZ4 raw block, zlib stream, zstd frame or
// raw Snappy block, as Pulsar clients write them), then framed as one SEND
// whose MessageMetadata carries the first sequence id,
// num_messages_in_batch and uncompressed_size. Receipts must arrive in the
// order of the SENDs (the broker guarantees it); each completes its batch's
// callbacks in order. A partitioned topic gets one partition producer per
// partition; messages with a key go to hash(key) mod partitions (the Go
// client's default hash, so both put a key on the same partition), the
// others stay on one partition until its batch is flushed and then move to
// the next one.
//
// # Consumers
//
// A partition consumer grants ReceiverQueueSize permits on subscribe and
// grants more, in one FLOW, each time half of them have been consumed
// (delivered to the listener, or taken with Receive). Entries are
// decompressed and split into their messages. With a MessageListener the
// messages are handed over on the read loop without copying: a *Message
// given to the listener is valid only until it returns. Receive returns
// messages that own their memory. Acknowledgements are grouped and sent
// every AckGroupingTime or AckGroupingMaxSize ids; a batched entry is
// acknowledged when all of its messages are.
package client
