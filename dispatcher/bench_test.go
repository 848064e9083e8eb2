package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/managedledger"
)

// cacheCursor is a cursor over a log of limit entries, all in memory (a
// tailing subscription reading from the entry cache): entry i is buffer
// i % len(ring), handed out with one more reference. Reads complete
// synchronously; before start and past the end they wait. Acknowledgements
// are counted, not stored.
type cacheCursor struct {
	mu      sync.Mutex
	ring    []*bufs.Buf
	next    int64
	limit   int64
	open    bool
	waiting managedledger.ReadCallback
	waitMax int
	out     []managedledger.Entry
	acks    int64
}

func (c *cacheCursor) take(n int) []managedledger.Entry {
	c.out = c.out[:0]
	for i := 0; i < n && c.next < c.limit; i++ {
		b := c.ring[c.next%int64(len(c.ring))]
		c.out = append(c.out, managedledger.Entry{Pos: base.Position{Ledger: 1, Entry: base.EntryID(c.next)}, Data: b.Retain()})
		c.next++
	}
	return c.out
}

func (c *cacheCursor) start() {
	c.mu.Lock()
	c.open = true
	cb, n := c.waiting, c.waitMax
	c.waiting = nil
	c.mu.Unlock()
	if cb != nil {
		c.mu.Lock()
		es := c.take(n)
		c.mu.Unlock()
		cb.ReadComplete(es, nil)
	}
}

func (c *cacheCursor) ReadEntriesOrWait(max int, maxBytes int64, cb managedledger.ReadCallback) {
	c.mu.Lock()
	if !c.open || c.next == c.limit {
		c.waiting, c.waitMax = cb, max
		c.mu.Unlock()
		return
	}
	es := c.take(max)
	c.mu.Unlock()
	cb.ReadComplete(es, nil)
}

func (c *cacheCursor) CancelPendingRead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok := c.waiting != nil
	c.waiting = nil
	return ok
}

func (c *cacheCursor) Delete(positions ...base.Position) error {
	c.mu.Lock()
	c.acks += int64(len(positions))
	c.mu.Unlock()
	return nil
}

func (c *cacheCursor) Name() string  { return "bench" }
func (c *cacheCursor) Durable() bool { return true }
func (c *cacheCursor) ReadEntries(context.Context, int, int64) ([]managedledger.Entry, error) {
	return nil, base.ErrNotImplemented
}
func (c *cacheCursor) ReplayEntries(context.Context, []base.Position) ([]managedledger.Entry, error) {
	return nil, base.ErrNotImplemented
}
func (c *cacheCursor) ReadPosition() base.Position                        { return base.Position{} }
func (c *cacheCursor) MarkDeletePosition() base.Position                  { return base.Position{} }
func (c *cacheCursor) MarkDelete(base.Position) error                     { return nil }
func (c *cacheCursor) DeleteBatchIndexes(base.Position, int, []int) error { return nil }
func (c *cacheCursor) AckedBatchIndexes(base.Position) []int              { return nil }
func (c *cacheCursor) IsAcknowledged(base.Position) bool                  { return false }
func (c *cacheCursor) Seek(base.Position)                                 {}
func (c *cacheCursor) Rewind()                                            {}
func (c *cacheCursor) ResetCursor(context.Context, base.Position) error   { return nil }
func (c *cacheCursor) SkipEntries(context.Context, int64) error           { return nil }
func (c *cacheCursor) Backlog() int64                                     { return 0 }
func (c *cacheCursor) Close(context.Context) error                        { return nil }
func (c *cacheCursor) release()                                           { releaseBufs(c.ring) }
func releaseBufs(bs []*bufs.Buf) {
	for _, b := range bs {
		b.Release()
	}
}

// benchSink plays a consumer and its connection: it releases each entry as
// if written, acknowledges every delivery batch at once, and returns
// permits in halves of its 1000-message queue, as the Go client does.
type benchSink struct {
	c        *Consumer
	acks     []base.Position
	consumed uint32
	total    *int64 // messages delivered to all sinks (runner-serialized)
}

func (s *benchSink) Deliver(batch []Delivery) {
	for _, d := range batch {
		d.Data.Release()
		s.acks = append(s.acks, d.Pos)
		s.consumed += uint32(d.NumMessages)
		*s.total += int64(d.NumMessages)
	}
	_ = s.c.Ack(s.acks...)
	s.acks = s.acks[:0]
	if s.consumed >= 500 {
		s.c.Flow(s.consumed)
		s.consumed = 0
	}
}

func (s *benchSink) ActiveConsumerChanged(bool) {}

// BenchmarkDispatchShared measures dispatch from the cache to the consumers
// of a Shared subscription: one op is one message delivered (read from the
// cursor, handed to a sink, acknowledged, its permit returned).
func BenchmarkDispatchShared(b *testing.B) {
	for _, consumers := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("consumers=%d", consumers), func(b *testing.B) {
			benchDispatch(b, Shared, consumers, 1024)
		})
	}
}

// BenchmarkDispatchKeyShared is the same for a Key_Shared subscription
// whose entries carry keys.
func BenchmarkDispatchKeyShared(b *testing.B) {
	for _, consumers := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("consumers=%d", consumers), func(b *testing.B) {
			benchDispatch(b, KeyShared, consumers, 1024)
		})
	}
}

// BenchmarkDispatchExclusive is the single-consumer path.
func BenchmarkDispatchExclusive(b *testing.B) {
	benchDispatch(b, Exclusive, 1, 1024)
}

func benchDispatch(b *testing.B, typ SubscriptionType, consumers, size int) {
	pool := bufs.NewPool()
	cur := &cacheCursor{limit: int64(b.N)}
	payload := strings.Repeat("x", size)
	for i := 0; i < 1024; i++ {
		spec := entrySpec{}
		if typ == KeyShared {
			spec.key = fmt.Sprintf("key-%d", i%97)
		}
		cur.ring = append(cur.ring, makeEntry(pool, spec, payload))
	}
	d, err := New(cur, Options{Type: typ, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for i := 0; i < consumers; i++ {
		s := &benchSink{total: &total}
		c, err := d.AddConsumer(s, ConsumerConfig{Name: fmt.Sprintf("c%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		s.c = c
		c.Flow(1000)
	}
	b.SetBytes(int64(cur.ring[0].Len()))
	b.ReportAllocs()
	b.ResetTimer()
	cur.start() // everything runs on this goroutine until b.N messages went out
	b.StopTimer()
	if total != int64(b.N) {
		b.Fatalf("delivered %d of %d", total, b.N)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
	d.Close()
	cur.release()
	if n := pool.LiveBuffers(); n != 0 {
		b.Fatalf("%d buffers leaked", n)
	}
}

// BenchmarkIdleSubscriptions reports the memory an idle subscription's
// dispatcher takes (B/dispatcher): one consumer with permits, a read waiting
// for entries. Each op makes one; run it with -benchtime 10000x for the
// figure of 10,000 idle topics.
func BenchmarkIdleSubscriptions(b *testing.B) {
	for _, typ := range []SubscriptionType{Exclusive, Shared, KeyShared} {
		b.Run("type="+typ.String(), func(b *testing.B) {
			log := slog.New(slog.DiscardHandler)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ds := make([]*Dispatcher, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for j := range ds {
				d, err := New(&cacheCursor{}, Options{Type: typ, Logger: log})
				if err != nil {
					b.Fatal(err)
				}
				c, err := d.AddConsumer(&benchSink{}, ConsumerConfig{Name: "c"})
				if err != nil {
					b.Fatal(err)
				}
				c.Flow(1000)
				ds[j] = d
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "B/dispatcher")
			runtime.KeepAlive(ds)
		})
	}
}
