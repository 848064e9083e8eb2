package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/testutil"
	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/managedledger"
	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/memory"
)

// world is a metadata store and an in-memory BookKeeper that outlive the
// brokers started on them (restart tests).
type world struct {
	t     testing.TB
	mem   *memory.Server
	store metastore.Store
	bk    *managedledger.MemBookKeeper
	pool  *bufs.Pool
}

func newWorld(t testing.TB) *world {
	t.Helper()
	w := &world{t: t, mem: memory.New(metastore.Options{}), pool: bufs.NewPool()}
	s, err := w.mem.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	w.store = s
	w.bk = managedledger.NewMemBookKeeper(w.pool)
	t.Cleanup(func() {
		_ = w.bk.Close()
		_ = w.store.Close()
		_ = w.mem.Close()
		// Every payload buffer came back: brokers, managed ledgers and the
		// BookKeeper are closed by now.
		if n := w.pool.LiveBuffers(); n != 0 && !t.Failed() {
			t.Errorf("%d payload buffers were not released", n)
		}
	})
	return w
}

// testBroker is a started broker with its managed ledger factory.
type testBroker struct {
	*Broker
	w       *world
	factory *managedledger.MLFactory
	addr    string
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start starts a broker on w.
func (w *world) start(tweak ...func(*Options)) *testBroker {
	w.t.Helper()
	f, err := managedledger.NewFactory(managedledger.Options{Store: w.store, BookKeeper: w.bk, Pool: w.pool,
		MarkDeleteRateLimit: -1, MaintenanceInterval: -1, Logger: discardLogger()})
	if err != nil {
		w.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		w.t.Fatal(err)
	}
	opts := Options{
		ServiceListener:     ln,
		MetadataStore:       w.store,
		ManagedLedgers:      f,
		ManagedLedgerConfig: managedledger.Config{EnsembleSize: 1, WriteQuorum: 1, AckQuorum: 1},
		Pool:                w.pool,
		Logger:              discardLogger(),
	}
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
	tb := &testBroker{Broker: b, w: w, factory: f, addr: ln.Addr().String()}
	w.t.Cleanup(func() { tb.stop() })
	return tb
}

func (tb *testBroker) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tb.Close(ctx); err != nil {
		tb.w.t.Errorf("broker close: %v", err)
	}
	_ = tb.factory.Close()
}

// rawClient speaks the protocol frame by frame.
type rawClient struct {
	t   testing.TB
	nc  net.Conn
	fr  pulsar.FrameReader
	buf []byte
	cmd pulsar.Command
	f   pulsar.Frame
}

func (tb *testBroker) dial() *rawClient { return tb.dialFor(tb.w.t) }

func (tb *testBroker) dialFor(t testing.TB) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &rawClient{t: t, nc: nc}
}

// connect dials and completes the handshake.
func (tb *testBroker) connect() *rawClient { return tb.connectFor(tb.w.t) }

func (tb *testBroker) connectFor(t testing.TB) *rawClient {
	t.Helper()
	c := tb.dialFor(t)
	c.send(&pulsar.Command{Type: pulsar.TypeConnect, Connect: pulsar.CommandConnect{ClientVersion: "raw", ProtocolVersion: 20}})
	if r := c.next(); r.Type != pulsar.TypeConnected {
		c.t.Fatalf("handshake: got %v", r.Type)
	}
	return c
}

func (c *rawClient) send(cmd *pulsar.Command) {
	c.t.Helper()
	c.write(pulsar.AppendFrame(nil, cmd))
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next reads the next frame (failing the test after 10s).
func (c *rawClient) next() *pulsar.Command {
	c.t.Helper()
	cmd, err := c.tryNext(10 * time.Second)
	if err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	return cmd
}

// tryNext reads the next frame, or returns the read error (io.EOF when the
// broker closed the connection).
func (c *rawClient) tryNext(timeout time.Duration) (*pulsar.Command, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	for {
		n, err := c.fr.Next(c.buf, &c.f)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			if err := c.cmd.Decode(c.f.Command); err != nil {
				return nil, err
			}
			c.buf = c.buf[n:]
			return &c.cmd, nil
		}
		tmp := make([]byte, 64<<10)
		k, err := c.nc.Read(tmp)
		c.buf = append(c.buf, tmp[:k]...)
		if err != nil && k == 0 {
			return nil, err
		}
	}
}

// expectClosed reads until the broker closes the connection, returning the
// frames it sent before.
func (c *rawClient) expectClosed() []pulsar.Type {
	c.t.Helper()
	var got []pulsar.Type
	for {
		cmd, err := c.tryNext(10 * time.Second)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("the broker did not close the connection (frames %v)", got)
			}
			return got
		}
		got = append(got, cmd.Type)
	}
}

// sendFrame builds a SEND frame for producer pid.
func sendFrame(pid, seq uint64, producer string, payload []byte) []byte {
	md := pulsar.MessageMetadata{ProducerName: []byte(producer), SequenceID: seq, PublishTime: uint64(time.Now().UnixMilli()),
		NumMessagesInBatch: 1}
	return pulsar.AppendSendFrame(nil, &pulsar.CommandSend{ProducerID: pid, SequenceID: seq}, &md, payload)
}

// waitUntil polls an observable state until it holds, for at most 10s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, what, cond)
}
