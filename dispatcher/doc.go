// Package dispatcher owns delivery: it takes the entries of one
// subscription's cursor and hands them to the subscription's consumers,
// within their permits, by the rules of the subscription type, and
// redelivers what they did not acknowledge. It does no network I/O and never
// copies payload bytes: an entry's reference-counted buffer goes from the
// cursor to a consumer's Sink, which writes a MESSAGE header and the buffer
// in one vectored write and releases it.
//
// # The broker's contract
//
//	broker, per subscription:  d, _ := dispatcher.New(cursor, Options{Type: ...})
//	SUBSCRIBE                  c, err := d.AddConsumer(sink, ConsumerConfig{...})   (ErrConsumerBusy, ErrConsumerAssign)
//	FLOW                       c.Flow(permits)
//	ACK individual / cumulative  c.Ack(positions...) / c.AckCumulative(pos) / c.AckBatchIndexes(...)
//	REDELIVER_UNACKNOWLEDGED   c.RedeliverUnacknowledged(positions)   (empty: all)
//	CLOSE_CONSUMER, conn gone  c.Close()
//	SEEK                       close the consumers, d.ResetCursor(ctx, pos), answer SUCCESS
//	topic unload               d.Close()
//
//	dispatcher -> sink         sink.Deliver([]Delivery{{Pos, Data, NumMessages, RedeliveryCount}, ...})
//	                           sink.ActiveConsumerChanged(active)     (Failover)
//
// Each Delivery carries one reference to the entry's buffer, owned by the
// sink from then on. Acknowledgements go through the Consumer so that the
// dispatcher knows what each consumer holds (to redeliver it when the
// consumer leaves or asks); the dispatcher passes them on to the cursor.
// See Sink for what the sink may and may not do.
//
// # Promises
//
//   - Permits count messages: an entry that is a batch of N takes N. A
//     consumer with no permits gets nothing, and none gets more than its
//     permits, except an entry bigger than the consumer's whole window
//     (see Consumer.Flow), which would otherwise never go out.
//   - New entries are pushed at once: while any consumer has permits the
//     dispatcher keeps one ReadEntriesOrWait outstanding, of at most
//     MaxReadBatchSize entries (and about the entries the permits cover), so
//     an entry added to the ledger goes out without polling.
//   - Exclusive: one consumer. Failover: one active consumer among those of
//     the lowest priority level: the first to join, or on a partition the
//     partition index modulo their number, sorted by name; every consumer is
//     told when that changes; the new active one starts from the oldest
//     unacknowledged entry (the cursor rewinds).
//   - Shared: round robin over the consumers that have permits,
//     MaxRoundRobinBatchSize messages at a time, lowest priority level
//     first.
//   - Key_Shared: an entry's key (ordering key, else partition key) hashes
//     into 0..65535 (StickyKeyHash) and goes to the consumer serving that
//     hash (AutoSplit consistent hashing, or Sticky ranges). A key's
//     entries reach its consumer in log order. When a key moves to another
//     consumer (one joined or left), the new one gets none of that key until
//     the old one acknowledged every entry of it it holds (Pulsar 4's
//     "draining hashes", the exact form of the "recently joined consumers"
//     rule). A consumer without permits never stalls the others: entries of
//     its keys wait in the replay set while the rest flow, up to
//     MaxReplayEntries waiting entries.
//   - Redelivery: entries a Shared or Key_Shared consumer did not
//     acknowledge go back to the subscription when it leaves, when it asks
//     (RedeliverUnacknowledged) or after a negative ack, and go out before
//     new entries, each with its redelivery count one higher. Exclusive and
//     Failover redeliver by rewinding the cursor, as Pulsar, and still count
//     exactly: an entry's count is the number of earlier rewinds whose
//     delivery had reached it (Pulsar sends 0 there).
//   - Zero copy, and every reference released exactly once: entries the
//     dispatcher does not hand out (acknowledged meanwhile, read for a
//     consumer that left, server-only markers) are released by it.
//   - Never stuck: every wait ends with an event that the dispatcher
//     reacts to (a Flow, an ack, a consumer joining or leaving, a read
//     completing or failing and being retried).
//
// # Concurrency
//
// All state is guarded by one mutex, held only for bookkeeping, never across
// I/O or calls to sinks. Work happens in rounds: whichever goroutine changes
// the state (a broker connection calling Flow, the managed ledger completing
// a read) runs rounds until nothing is left, unless another goroutine is
// already running them, in which case that one goes round again. A round
// plans under the lock (what to hand to which consumer, which cursor call
// comes next) and carries the plan out without it: the sinks first, then
// the cursor. So sinks are called one at a time, and the cursor's read side
// (ReadEntriesOrWait, CancelPendingRead, Rewind, Seek) is called by one
// goroutine at a time, with at most one read (new entries or a replay)
// outstanding. ReplayEntries, which blocks, runs on a goroutine of its own.
// The managed ledger may call the read callback on any goroutine, also from
// inside ReadEntriesOrWait, but not while holding a lock that its own
// ReadEntriesOrWait or CancelPendingRead takes.
//
// Lock order: Dispatcher.mu is the only lock; nothing else is called with it
// held except the EntryParser.
//
// # Replay set
//
// Shared and Key_Shared keep the entries waiting for (re)delivery as
// positions with their message count, key hash and redelivery count (about
// 48 bytes each), sorted by position; their bytes are read again with
// Cursor.ReplayEntries when a consumer can take them. Redeliveries thus cost
// no memory for payloads, and a Key_Shared key's waiting entries keep their
// order.
package dispatcher
