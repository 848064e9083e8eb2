package zk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/zktest"
	"github.com/magnetar/magnetar/metastore"
	"github.com/magnetar/magnetar/metastore/metastoretest"
	"github.com/magnetar/magnetar/metastore/zk"
)

// One ZooKeeper server for the package: a JVM takes seconds to start.
var zkServer zktest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	zkServer.Close()
	os.Exit(code)
}

var (
	discard  = slog.New(slog.DiscardHandler)
	chrootID atomic.Int64
)

// testSessionTimeout is short so that expiry tests are quick, and long
// enough that a loaded machine running the race detector does not expire
// sessions by accident.
const testSessionTimeout = 4 * time.Second

// cluster is a chroot of its own on the shared server.
type cluster struct {
	srv    *zktest.Server
	chroot string
	mu     sync.Mutex
	parts  map[metastore.Store]*zktest.Partition
}

func newCluster(t *testing.T) *cluster {
	return &cluster{
		srv:    zkServer.Get(t),
		chroot: fmt.Sprintf("/test-%d-%d", os.Getpid(), chrootID.Add(1)),
		parts:  map[metastore.Store]*zktest.Partition{},
	}
}

func (c *cluster) NewClient(t *testing.T) metastore.Store {
	part := &zktest.Partition{}
	s, err := metastore.Open(c.srv.URL(c.chroot), metastore.Options{
		SessionTimeout: testSessionTimeout,
		Dialer:         part.Dial,
		Logger:         discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c.mu.Lock()
	c.parts[s] = part
	c.mu.Unlock()
	return s
}

// ExpireSession partitions the client from the server until the server
// expired its session, then heals the partition.
func (c *cluster) ExpireSession(t *testing.T, s metastore.Store) {
	c.mu.Lock()
	part := c.parts[s]
	c.mu.Unlock()
	id := s.SessionID()
	part.Cut()
	defer part.Heal()
	if err := c.srv.WaitSessionGone(id, metastoretest.Timeout); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	metastoretest.Run(t, func(t *testing.T) metastoretest.Cluster { return newCluster(t) })
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url     string
		servers []string
		chroot  string
		err     bool
	}{
		{"zk:127.0.0.1:2181", []string{"127.0.0.1:2181"}, "", false},
		{"zk://a:1,b:2/pulsar/x", []string{"a:1", "b:2"}, "/pulsar/x", false},
		{"zk:a,b:2/", []string{"a:2181", "b:2"}, "", false},
		{"zk:a:1/bad/", nil, "", true},
		{"zk:a:1,,b:2", nil, "", true},
		{"embedded:x", nil, "", true},
	} {
		servers, chroot, err := zk.ParseURL(tc.url)
		if (err != nil) != tc.err || fmt.Sprint(servers) != fmt.Sprint(tc.servers) || chroot != tc.chroot {
			t.Errorf("ParseURL(%q) = %q %q %v", tc.url, servers, chroot, err)
		}
		if err != nil && !errors.Is(err, metastore.ErrBadURL) {
			t.Errorf("ParseURL(%q): %v is not ErrBadURL", tc.url, err)
		}
	}
}

func TestOpenUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = metastore.Open("zk:"+addr, metastore.Options{ConnectTimeout: 500 * time.Millisecond, Logger: discard})
	if !errors.Is(err, metastore.ErrUnavailable) {
		t.Fatalf("Open of a dead server: %v, want ErrUnavailable", err)
	}
}

func TestChrootIsolation(t *testing.T) {
	ctx := context.Background()
	srv := zkServer.Get(t)
	root, err := metastore.Open(srv.URL(""), metastore.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	chroot := fmt.Sprintf("/iso-%d/deep", chrootID.Add(1))
	in, err := metastore.Open(srv.URL(chroot), metastore.Options{Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	p, err := in.Create(ctx, "/node", []byte("x"), metastore.Sequential)
	if err != nil {
		t.Fatal(err)
	}
	if d, _, err := root.Get(ctx, chroot+p); err != nil || string(d) != "x" {
		t.Fatalf("chrooted %s seen from the root as %q %v", p, d, err)
	}
	kids, _ := root.Children(ctx, "/")
	for _, k := range kids {
		if k == "zookeeper" {
			t.Fatal("Children(/) lists ZooKeeper's own node")
		}
	}
	if kids, _ := in.Children(ctx, "/"); len(kids) != 1 {
		t.Fatalf("chrooted root lists %q", kids)
	}
}

// TestServerRestart: the server is killed and restarted while a client
// holds an ephemeral node and a watch, and reads and writes are issued
// during the outage. The client reconnects within its session: nothing is
// lost, the calls complete, and the owner hears Suspended then
// Reconnected.
func TestServerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := zkServer.Get(t)
	url := srv.URL(fmt.Sprintf("/restart-%d", chrootID.Add(1)))
	// The session must outlive a JVM restart on a loaded machine.
	opts := metastore.Options{SessionTimeout: 20 * time.Second, Logger: discard}
	s, err := metastore.Open(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sw := s.WatchSession()
	id := s.SessionID()
	if _, err := s.Create(ctx, "/lease", nil, metastore.Ephemeral); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/data", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	w, err := s.Watch(ctx, "/data", metastore.WatchData)
	if err != nil {
		t.Fatal(err)
	}

	srv.Stop()
	if ev := <-sw.C; ev.Type != metastore.SessionSuspended || ev.SessionID != id {
		t.Fatalf("after the server died: %v", ev)
	}
	// Calls made while the server is down wait for it.
	type res struct {
		d   []byte
		err error
	}
	got := make(chan res, 1)
	go func() {
		d, _, err := s.Get(ctx, "/data")
		got <- res{d, err}
	}()
	put := make(chan error, 1)
	go func() {
		_, err := s.Put(ctx, "/data", []byte("1"), 0)
		put <- err
	}()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if ev := <-sw.C; ev.Type != metastore.SessionReconnected || ev.SessionID != id {
		t.Fatalf("after the server came back: %v", ev)
	}
	if r := <-got; r.err != nil || (string(r.d) != "0" && string(r.d) != "1") {
		t.Fatalf("Get during the outage: %q %v", r.d, r.err)
	}
	if err := <-put; err != nil {
		t.Fatalf("Put during the outage: %v", err)
	}
	select {
	case ev := <-w.C:
		if ev.Type != metastore.EventDataChanged {
			t.Fatalf("watch after restart: %v", ev)
		}
	case <-time.After(metastoretest.Timeout):
		t.Fatal("the watch missed the change made across the restart")
	}
	_, st, err := s.Get(ctx, "/lease")
	if err != nil || st.EphemeralOwner != id || s.SessionID() != id {
		t.Fatalf("ephemeral after restart: %+v %v (session %#x, was %#x)", st, err, s.SessionID(), id)
	}
}

// trapDialer drops the connection right after a request containing a
// marker was sent: the server gets the request, the client never sees the
// answer, so the outcome of the write is unknown to the client.
type trapDialer struct {
	mu     sync.Mutex
	marker []byte
	fired  chan struct{}
}

func (d *trapDialer) arm(marker string) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.marker = []byte(marker)
	d.fired = make(chan struct{})
	return d.fired
}

func (d *trapDialer) Dial(network, address string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	return &trapConn{Conn: c, d: d}, nil
}

type trapConn struct {
	net.Conn
	d *trapDialer
}

func (c *trapConn) Write(b []byte) (int, error) {
	c.d.mu.Lock()
	hit := c.d.marker != nil && bytes.Contains(b, c.d.marker)
	var fired chan struct{}
	if hit {
		c.d.marker = nil
		fired = c.d.fired
	}
	c.d.mu.Unlock()
	n, err := c.Conn.Write(b)
	if hit {
		c.Conn.Close()
		close(fired)
	}
	return n, err
}

// TestWriteLostInFlight: writes whose connection drops after they were
// sent are verified and settled as the package comment says.
func TestWriteLostInFlight(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := zkServer.Get(t)
	trap := &trapDialer{}
	s, err := metastore.Open(srv.URL(fmt.Sprintf("/lost-%d", chrootID.Add(1))), metastore.Options{
		SessionTimeout: 20 * time.Second, Dialer: trap.Dial, Logger: discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(what string, fired <-chan struct{}) {
		t.Helper()
		select {
		case <-fired:
		default:
			t.Fatalf("%s: the trap did not fire", what)
		}
	}

	fired := trap.arm("/eph-lost")
	if p, err := s.Create(ctx, "/eph-lost", []byte("me"), metastore.Ephemeral); err != nil || p != "/eph-lost" {
		t.Fatalf("ephemeral create lost in flight: %q %v", p, err)
	}
	check("create", fired)
	_, st, err := s.Get(ctx, "/eph-lost")
	if err != nil || st.EphemeralOwner != s.SessionID() {
		t.Fatalf("after the lost create: %+v %v", st, err)
	}

	if _, err := s.Create(ctx, "/cas-lost", []byte("0"), 0); err != nil {
		t.Fatal(err)
	}
	fired = trap.arm("/cas-lost")
	st, err = s.Put(ctx, "/cas-lost", []byte("1"), 0)
	if err != nil || st.Version != 1 {
		t.Fatalf("CAS lost in flight: %+v %v", st, err)
	}
	check("put", fired)
	if d, st, _ := s.Get(ctx, "/cas-lost"); string(d) != "1" || st.Version != 1 {
		t.Fatalf("after the lost CAS: %q version %d (applied twice or not at all)", d, st.Version)
	}

	fired = trap.arm("/cas-lost")
	if err := s.Delete(ctx, "/cas-lost", 1); err != nil {
		t.Fatalf("delete lost in flight: %v", err)
	}
	check("delete", fired)
	if _, ok, _ := s.Exists(ctx, "/cas-lost"); ok {
		t.Fatal("node still there after the lost delete")
	}

	if _, err := s.Create(ctx, "/seq", nil, 0); err != nil {
		t.Fatal(err)
	}
	fired = trap.arm("/seq/n-")
	_, err = s.Create(ctx, "/seq/n-", nil, metastore.Sequential)
	if !errors.Is(err, metastore.ErrOutcomeUnknown) {
		t.Fatalf("sequential create lost in flight: %v, want ErrOutcomeUnknown", err)
	}
	check("sequential create", fired)
	// The store carries on.
	if _, err := s.Create(ctx, "/seq/n-", nil, metastore.Sequential); err != nil {
		t.Fatal(err)
	}
}
