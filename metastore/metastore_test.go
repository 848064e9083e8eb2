package metastore_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/magnetar/magnetar/internal/zktest"
	"github.com/magnetar/magnetar/metastore"
)

// The benchmarks' ZooKeeper, started only if a zk benchmark runs.
var zkServer zktest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	zkServer.Close()
	os.Exit(code)
}

func TestLedgerPath(t *testing.T) {
	for _, tc := range []struct {
		id   int64
		path string
	}{
		{0, "/ledgers/00/0000/L0000"},
		{1, "/ledgers/00/0000/L0001"},
		{123456789, "/ledgers/01/2345/L6789"},
		{math.MaxInt32 - 1, "/ledgers/21/4748/L3646"},
		{math.MaxInt32, "/ledgers/000/0000/0021/4748/L3647"},
		{1 << 31, "/ledgers/000/0000/0021/4748/L3648"},
		{math.MaxInt64, "/ledgers/922/3372/0368/5477/L5807"},
	} {
		if got := metastore.LedgerPath(metastore.LedgersRoot, tc.id); got != tc.path {
			t.Errorf("LedgerPath(%d) = %s, want %s", tc.id, got, tc.path)
		}
		if id, err := metastore.ParseLedgerPath(metastore.LedgersRoot, tc.path); err != nil || id != tc.id {
			t.Errorf("ParseLedgerPath(%s) = %d, %v", tc.path, id, err)
		}
	}
	for _, bad := range []string{
		"/ledgers/00/0000", "/ledgers/00/0000/X0001", "/ledgers/0/0000/L0001", "/other/00/0000/L0001",
		"/ledgers/000/0000/0000/0000/L0001", // a short id in the long layout
		"/ledgers/00/00a0/L0001",
	} {
		if _, err := metastore.ParseLedgerPath(metastore.LedgersRoot, bad); !errors.Is(err, metastore.ErrInvalidPath) {
			t.Errorf("ParseLedgerPath(%s): %v, want ErrInvalidPath", bad, err)
		}
	}
}

func TestLayoutHelpers(t *testing.T) {
	for got, want := range map[string]string{
		metastore.BookiePath("bk1:3181"):                                                          "/ledgers/available/bk1:3181",
		metastore.ReadOnlyBookiePath("bk1:3181"):                                                  "/ledgers/available/readonly/bk1:3181",
		metastore.ManagedLedgerPath(metastore.ManagedLedgerName("public", "default", "my topic")): "/managed-ledgers/public/default/persistent/my+topic",
		metastore.NamespacePoliciesPath("public", "default"):                                      "/admin/policies/public/default",
		metastore.PartitionedTopicPath("t", "n", "a/b"):                                           "/admin/partitioned-topics/t/n/persistent/a%2Fb",
		metastore.BundleOwnerPath("t", "n", "0x00000000_0xffffffff"):                              "/namespace/t/n/0x00000000_0xffffffff",
		metastore.BrokerPath("10.0.0.1:8080"):                                                     "/loadbalance/brokers/10.0.0.1:8080",
		metastore.EncodeName("a-b_c.d*e~f ü"):                                                     "a-b_c.d*e%7Ef+%C3%BC",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
		if err := metastore.ValidatePath(got); got[0] == '/' && err != nil {
			t.Errorf("%s: %v", got, err)
		}
	}
	if n, err := metastore.ParseSequence("ID-0000000042"); err != nil || n != 42 {
		t.Errorf("ParseSequence = %d, %v", n, err)
	}
	if _, err := metastore.ParseSequence("ID-x"); err == nil {
		t.Error("ParseSequence accepted a name without a counter")
	}
}

func TestOpenURLs(t *testing.T) {
	for _, url := range []string{"", "nothing", "etcd:x", "embedded:", "zk:", "zk:a:1/bad/"} {
		if _, err := metastore.Open(url, metastore.Options{}); !errors.Is(err, metastore.ErrBadURL) {
			t.Errorf("Open(%q): %v, want ErrBadURL", url, err)
		}
	}
}

func TestOpenMemory(t *testing.T) {
	ctx := context.Background()
	// Without a registry every Open is a store of its own.
	a, err := metastore.Open("memory:", metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Create(ctx, "/x", nil, 0)
	b, _ := metastore.Open("memory:x", metastore.Options{})
	defer b.Close()
	if _, ok, _ := b.Exists(ctx, "/x"); ok {
		t.Fatal("two memory stores without a registry share data")
	}

	// With one, "memory:<name>" is shared, each Open a session.
	var reg metastore.Registry
	defer reg.Close()
	opts := metastore.Options{Registry: &reg}
	c1, _ := metastore.Open("memory:shared", opts)
	c2, _ := metastore.Open("memory://shared", opts)
	other, _ := metastore.Open("memory:other", opts)
	defer c2.Close()
	defer other.Close()
	if _, err := c1.Create(ctx, "/eph", nil, metastore.Ephemeral); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c2.Exists(ctx, "/eph"); !ok {
		t.Fatal("a second client of memory:shared does not see the first's node")
	}
	if _, ok, _ := other.Exists(ctx, "/eph"); ok {
		t.Fatal("memory:other sees memory:shared's node")
	}
	if c1.SessionID() == c2.SessionID() {
		t.Fatal("two clients share a session")
	}
	c1.Close()
	if _, ok, _ := c2.Exists(ctx, "/eph"); ok {
		t.Fatal("the ephemeral node outlived its client")
	}
	// The shared memory store outlives its clients until the registry closes.
	c2.Create(ctx, "/keep", nil, 0)
	c2.Close()
	c3, _ := metastore.Open("memory:shared", opts)
	defer c3.Close()
	if _, ok, _ := c3.Exists(ctx, "/keep"); !ok {
		t.Fatal("the shared memory store lost its data between clients")
	}
}

func TestOpenEmbedded(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "metadata")
	s, err := metastore.Open("embedded:"+dir, metastore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, "/a", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	// One process per directory.
	if _, err := metastore.Open("embedded:"+dir, metastore.Options{}); !errors.Is(err, metastore.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// With a registry the metadata and configuration stores of one
	// process share the directory (configurationMetadataStoreUrl defaults
	// to metadataStoreUrl).
	var reg metastore.Registry
	opts := metastore.Options{Registry: &reg}
	meta, err := metastore.Open("metadata-store:embedded:"+dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := metastore.Open("embedded://"+dir+"/", opts)
	if err != nil {
		t.Fatal(err)
	}
	if d, _, err := conf.Get(ctx, "/a"); err != nil || string(d) != "1" {
		t.Fatalf("after reopen: %q %v", d, err)
	}
	w, _ := conf.Watch(ctx, "/b", metastore.WatchData)
	meta.Create(ctx, "/b", nil, 0)
	if ev := <-w.C; ev.Type != metastore.EventCreated {
		t.Fatalf("watch across sessions: %v", ev)
	}
	meta.Close()
	if _, _, err := conf.Get(ctx, "/a"); err != nil {
		t.Fatalf("the store closed with its first client: %v", err)
	}
	conf.Close()
	// The last client released the directory.
	s, err = metastore.Open("embedded:"+dir, metastore.Options{})
	if err != nil {
		t.Fatalf("Open after the shared store closed: %v", err)
	}
	s.Close()
}
