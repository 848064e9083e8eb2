package broker

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar/magnetar/dispatcher"
	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
)

// The broker's hot paths, measured over loopback TCP in this process:
//
//   - SEND -> SEND_RECEIPT: a client pipelines pre-encoded SEND frames and
//     counts receipts. With ml=instant the managed ledger confirms every add
//     at once, which isolates the broker's own work (read loop, one copy of
//     the payload into a pooled buffer, receipt encoding, vectored writes);
//     with ml=mem it is the real managed ledger over the in-memory
//     BookKeeper.
//
//   - MESSAGE delivery: the consumer sink encoding MESSAGE headers and
//     queueing stored entries by reference, written by the connection's
//     write loop.
//
//     go test -run '^$' -bench . -benchmem ./broker/
func BenchmarkSendReceipt(b *testing.B) {
	for _, ml := range []string{"instant", "mem"} {
		for _, size := range []int{100, 1024} {
			for _, inflight := range []int{1, 256} {
				b.Run(fmt.Sprintf("ml=%s/size=%dB/inflight=%d", ml, size, inflight), func(b *testing.B) {
					benchSendReceipt(b, ml, size, inflight)
				})
			}
		}
	}
}

func benchSendReceipt(b *testing.B, ml string, size, inflight int) {
	w := newWorld(b)
	tweak := func(o *Options) { o.MaxPendingPublishRequestsPerConnection = 10000 }
	var tb *testBroker
	if ml == "instant" {
		tb = w.startWith(&instantFactory{}, tweak)
	} else {
		tb = w.start(tweak)
	}
	c := tb.connectFor(b)
	c.send(&pulsar.Command{Type: pulsar.TypeProducer, Producer: pulsar.CommandProducer{Topic: "bench", ProducerID: 1, RequestID: 1}})
	if r := c.next(); r.Type != pulsar.TypeProducerSuccess {
		b.Fatalf("PRODUCER: %v", r.Type)
	}
	frame := sendFrame(1, 0, "bench", make([]byte, size))
	const chunkFrames = 64
	per := min(chunkFrames, inflight)
	chunk := make([]byte, 0, per*len(frame))
	for i := 0; i < per; i++ {
		chunk = append(chunk, frame...)
	}
	var received atomic.Int64
	wake := make(chan struct{}, 1)
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 256<<10)
		have := 0
		for {
			n, err := c.nc.Read(buf[have:])
			have += n
			off := 0
			count := int64(0)
			for have-off >= 4 {
				l := pulsar.FrameLen(buf[off:have])
				if have-off < l {
					break
				}
				off += l
				count++
			}
			copy(buf, buf[off:have])
			have -= off
			if count > 0 {
				received.Add(count)
				select {
				case wake <- struct{}{}:
				default:
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	run := func(total int64) {
		start := received.Load()
		sent := int64(0)
		for sent < total {
			for sent-(received.Load()-start) > int64(inflight-per) {
				<-wake
			}
			k := min(int64(per), total-sent)
			if _, err := c.nc.Write(chunk[:k*int64(len(frame))]); err != nil {
				b.Fatal(err)
			}
			sent += k
		}
		for received.Load()-start < total {
			<-wake
		}
	}
	run(2000) // warm the pools
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	run(int64(b.N))
	b.StopTimer()
	_ = c.nc.Close()
	<-readErr
}

// BenchmarkDeliver measures the consumer sink: MESSAGE headers encoded into
// the connection's queue, entries appended by reference, one vectored write
// per batch.
func BenchmarkDeliver(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, batch := range []int{1, 20} {
			b.Run(fmt.Sprintf("size=%dB/batch=%d", size, batch), func(b *testing.B) {
				benchDeliver(b, size, batch)
			})
		}
	}
}

func benchDeliver(b *testing.B, size, batch int) {
	w := newWorld(b)
	br, err := New(Options{MetadataStore: w.store, ManagedLedgers: &instantFactory{}, Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			accepted <- nc
		}
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server := <-accepted
	var drained sync.WaitGroup
	drained.Add(1)
	go func() {
		defer drained.Done()
		_, _ = io.Copy(io.Discard, client)
	}()
	c := newConn(br, server)
	go c.out.writeLoop()
	t := newTopic(br, mustParse(b, "deliver"), nil)
	s := newSubscription(t, "s", nil)
	cs := &consumer{id: 1, name: "c", conn: c, sub: s, partition: -1}
	md := pulsar.MessageMetadata{ProducerName: []byte("p"), SequenceID: 1, PublishTime: 1}
	entry := pulsar.AppendEntry(nil, &md, make([]byte, size))
	eb := bufs.Get(len(entry))
	copy(eb.Bytes(), entry)
	ds := make([]dispatcher.Delivery, batch)
	deliver := func() {
		for i := range ds {
			ds[i] = dispatcher.Delivery{Pos: base.Position{Ledger: 1, Entry: base.EntryID(i)}, Data: eb.Retain(), NumMessages: 1}
		}
		cs.Deliver(ds)
		// Keep the queue bounded, as a consumer's permits would (1000
		// messages of ~40 header bytes).
		for c.out.queuedBytes() > 40<<10 {
			time.Sleep(10 * time.Microsecond)
		}
	}
	for i := 0; i < 1000; i++ {
		deliver()
	}
	b.SetBytes(int64(size * batch))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		deliver()
	}
	b.StopTimer()
	c.out.sendAndClose(nil)
	<-c.out.done
	drained.Wait()
	eb.Release()
}

// ---- A managed ledger that confirms at once ----

func (w *world) startWith(f managedledger.Factory, tweak ...func(*Options)) *testBroker {
	w.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.t.Fatal(err)
	}
	opts := Options{ServiceListener: ln, MetadataStore: w.store, ManagedLedgers: f, Pool: w.pool, Logger: discardLogger()}
	for _, fn := range tweak {
		fn(&opts)
	}
	b, err := New(opts)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	tb := &testBroker{Broker: b, w: w, addr: ln.Addr().String()}
	w.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return tb
}

// instantFactory opens instantLedgers.
type instantFactory struct {
	mu  sync.Mutex
	mls map[string]*instantLedger
}

func (f *instantFactory) Open(_ context.Context, name string, _ managedledger.Config) (managedledger.ManagedLedger, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mls == nil {
		f.mls = map[string]*instantLedger{}
	}
	if ml := f.mls[name]; ml != nil {
		return ml, nil
	}
	ml := &instantLedger{name: name}
	f.mls[name] = ml
	return ml, nil
}

func (f *instantFactory) Delete(context.Context, string) error { return nil }
func (f *instantFactory) Exists(_ context.Context, name string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mls[name] != nil, nil
}
func (f *instantFactory) Close() error { return nil }

// instantLedger confirms every add at once and keeps nothing.
type instantLedger struct {
	name string
	next atomic.Int64
}

func (l *instantLedger) Name() string { return l.name }
func (l *instantLedger) AddEntry(data *bufs.Buf, cb managedledger.AddEntryCallback) {
	data.Release()
	cb.AddEntryComplete(base.Position{Ledger: 1, Entry: base.EntryID(l.next.Add(1) - 1)}, nil)
}
func (l *instantLedger) OpenCursor(context.Context, string, managedledger.InitialPosition) (managedledger.Cursor, error) {
	return nil, base.ErrNotImplemented
}
func (l *instantLedger) NewNonDurableCursor(base.Position) (managedledger.Cursor, error) {
	return nil, base.ErrNotImplemented
}
func (l *instantLedger) DeleteCursor(context.Context, string) error { return nil }
func (l *instantLedger) Cursors() []managedledger.Cursor            { return nil }
func (l *instantLedger) LastConfirmed() base.Position {
	return base.Position{Ledger: 1, Entry: base.EntryID(l.next.Load() - 1)}
}
func (l *instantLedger) FirstPosition() base.Position { return base.Position{Ledger: 1} }
func (l *instantLedger) NumberOfEntries() int64       { return 0 }
func (l *instantLedger) TotalSize() int64             { return 0 }
func (l *instantLedger) FindNewest(context.Context, func(managedledger.Entry) bool) (base.Position, error) {
	return base.Position{}, base.ErrNotImplemented
}
func (l *instantLedger) ReadEntry(context.Context, base.Position) (managedledger.Entry, error) {
	return managedledger.Entry{}, base.ErrNotImplemented
}
func (l *instantLedger) InternalStats() managedledger.InternalStats {
	return managedledger.InternalStats{}
}
func (l *instantLedger) Properties() map[string]string                          { return map[string]string{} }
func (l *instantLedger) SetProperties(context.Context, map[string]string) error { return nil }
func (l *instantLedger) Close(context.Context) error                            { return nil }
