package dispatcher

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/magnetar/magnetar/internal/bufs"
)

func TestMurmur3(t *testing.T) {
	// Published MurmurHash3_x86_32 test vectors, and the values of
	// pulsar-client-go's hash tests (which mask the sign bit, as Pulsar does).
	for _, tc := range []struct {
		in   string
		seed uint32
		want uint32
	}{
		{"", 0, 0},
		{"", 1, 0x514e28b7},
		{"", 0xffffffff, 0x81f16f39},
		{"\xff\xff\xff\xff", 0, 0x76293b50},
		{"\x21\x43\x65\x87", 0, 0xf55b516b},
		{"\x21\x43\x65\x87", 0x5082edee, 0x2362f9de},
		{"\x21\x43\x65", 0, 0x7e4a8634},
		{"\x21\x43", 0, 0xa0f7b07a},
		{"\x21", 0, 0x72661cf4},
		{"\x00\x00\x00\x00", 0, 0x2362f9de},
		{"\x00\x00\x00", 0, 0x85f0b427},
		{"\x00\x00", 0, 0x30f4c306},
		{"\x00", 0, 0x514e28b7},
		{"Hello, world!", 1234, 0xfaf6cdb3},
		{"The quick brown fox jumps over the lazy dog", 0, 0x2e4ff723},
		{"aaaa", 0x9747b28c, 0x5a97808a},
		{"abc", 0, 0xb3dd93fa},
	} {
		if got := Murmur3([]byte(tc.in), tc.seed); got != tc.want {
			t.Errorf("Murmur3(%q, %#x) = %#x, want %#x", tc.in, tc.seed, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want uint32
	}{{"", 0}, {"hello", 0x248bfa47}, {"test", 0x3a6bd213}} {
		if got := Murmur3([]byte(tc.in), 0) & 0x7fffffff; got != tc.want {
			t.Errorf("masked Murmur3(%q) = %#x, want %#x", tc.in, got, tc.want)
		}
	}
}

func TestStickyKeyHash(t *testing.T) {
	for _, k := range []string{"", "a", "NONE_KEY", "key-1", "some longer key with spaces"} {
		h := StickyKeyHash([]byte(k))
		want := (Murmur3([]byte(k), 0) & 0x7fffffff) % 65536
		if want == 0 {
			want = 1
		}
		if h != want || h == 0 || h >= KeyHashRange {
			t.Errorf("StickyKeyHash(%q) = %d, want %d", k, h, want)
		}
	}
	// "hello" masks to 0x248bfa47; mod 65536 that is 0xfa47.
	if h := StickyKeyHash([]byte("hello")); h != 0xfa47 {
		t.Errorf("StickyKeyHash(hello) = %#x, want 0xfa47", h)
	}
}

func TestPulsarEntryParser(t *testing.T) {
	pool := bufs.NewPool()
	parse := NewPulsarEntryParser()
	check := func(name string, s entrySpec, wantMsgs int32, wantKey string, wantServerOnly bool) {
		t.Helper()
		b := makeEntry(pool, s, "payload")
		defer b.Release()
		m, err := parse(b.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.NumMessages != wantMsgs || m.KeyHash != StickyKeyHash([]byte(wantKey)) || m.ServerOnly != wantServerOnly {
			t.Fatalf("%s: %+v, want %d messages, key %q (hash %d), server-only %v", name, m, wantMsgs, wantKey,
				StickyKeyHash([]byte(wantKey)), wantServerOnly)
		}
	}
	check("single", entrySpec{}, 1, "NONE_KEY", false)
	check("batch", entrySpec{msgs: 7}, 7, "NONE_KEY", false)
	check("batch of one", entrySpec{msgs: 1}, 1, "NONE_KEY", false)
	check("partition key", entrySpec{pkey: "pk"}, 1, "pk", false)
	check("ordering key wins", entrySpec{key: "ok", pkey: "pk"}, 1, "ok", false)
	check("base64 partition key", entrySpec{pkey: base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 250}), b64: true}, 1, "\x00\x01\x02\xfa", false)
	check("bad base64 used as is", entrySpec{pkey: "!!", b64: true}, 1, "!!", false)
	check("marker", entrySpec{marker: true}, 1, "NONE_KEY", true)

	for _, bad := range [][]byte{nil, {0x0e}, {0x0e, 0x02, 0, 0, 0, 0, 0, 0, 0, 0}, {0x0e, 0x01, 0, 0, 0, 0, 0, 0, 0, 9}} {
		if _, err := parse(bad); !errors.Is(err, ErrBadEntry) {
			t.Errorf("parse(%x): err %v, want ErrBadEntry", bad, err)
		}
	}

	b := makeEntry(pool, entrySpec{msgs: 3, key: "k", pkey: base64.StdEncoding.EncodeToString([]byte("x")), b64: true}, "p")
	defer b.Release()
	plain := makeEntry(pool, entrySpec{}, "p")
	defer plain.Release()
	for _, e := range []*bufs.Buf{b, plain} {
		if n := testing.AllocsPerRun(100, func() { _, _ = parse(e.Bytes()) }); n != 0 {
			t.Fatalf("parse allocates %v times", n)
		}
	}
}

func TestUnparsableEntryDelivered(t *testing.T) {
	f := newFixture(t, Options{Type: Shared})
	c, s := f.consumer("a", ConsumerConfig{})
	c.Flow(10)
	junk := f.pool.Get(3)
	copy(junk.Bytes(), "xyz")
	f.cursor.add(junk)
	if g := s.deliveries(); len(g) != 1 || g[0].msgs != 1 {
		t.Fatalf("got %+v", g)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{Type: 7},
		{Partitioned: true, PartitionIndex: -1},
		{MaxReadBatchSize: -1},
		{MaxReadBatchBytes: -1},
		{MaxRoundRobinBatchSize: -1},
		{MaxReplayEntries: -1},
		{KeySharedMode: 5},
		{KeySharedReplicaPoints: -1},
	} {
		o.EnsureDefaults()
		if err := o.Validate(); !errors.Is(err, ErrBadOptions) {
			t.Errorf("%+v: err %v", o, err)
		}
	}
	var o Options
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.MaxReadBatchSize != 100 || o.MaxRoundRobinBatchSize != 20 || o.MaxUnackedMessagesPerConsumer != 50000 {
		t.Fatalf("defaults %+v", o)
	}
}
