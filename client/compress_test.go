package client

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/pierrec/lz4/v4"
)

func TestCodecsRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 70000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	inputs := map[string][]byte{
		"empty":   {},
		"one":     {42},
		"text":    bytes.Repeat([]byte("the quick brown fox "), 500),
		"random":  random,
		"zeros1M": make([]byte, 1<<20),
	}
	var z zstdCodec
	defer z.close()
	for _, kind := range []Compression{CompressionNone, CompressionLZ4, CompressionZLib, CompressionZstd, CompressionSnappy} {
		c := compressor{kind: kind, zstd: &z}
		d := decompressor{zstd: &z}
		for name, in := range inputs {
			out, err := c.compress(in)
			if err != nil {
				t.Fatalf("%v/%s: compress: %v", kind, name, err)
			}
			out = append([]byte(nil), out...)
			got, err := d.decompress(kind, out, len(in))
			if err != nil {
				t.Fatalf("%v/%s: decompress: %v", kind, name, err)
			}
			if !bytes.Equal(got, in) {
				t.Fatalf("%v/%s: round trip changed the data", kind, name)
			}
			if kind != CompressionNone && len(in) > 0 {
				if _, err := d.decompress(kind, out, len(in)+1); !errors.Is(err, ErrCorruptMessage) {
					t.Fatalf("%v/%s: wrong uncompressed size accepted: %v", kind, name, err)
				}
				if _, err := d.decompress(kind, []byte{0xff, 0xfe, 0xfd, 0xfc, 0xfb}, len(in)); !errors.Is(err, ErrCorruptMessage) {
					t.Fatalf("%v/%s: garbage accepted: %v", kind, name, err)
				}
			}
		}
	}
	if _, err := (&decompressor{zstd: &z}).decompress(CompressionLZ4, nil, maxUncompressedSize+1); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("oversize uncompressed size accepted: %v", err)
	}
}

// The literal-only block written for incompressible data must be a valid
// LZ4 block for any length (the length encoding changes at 15 and every
// 255 after).
func TestLZ4LiteralBlock(t *testing.T) {
	for _, n := range []int{0, 1, 14, 15, 16, 269, 270, 271, 524, 525, 1000} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i * 7)
		}
		block := appendLZ4Literals(nil, src)
		dst := make([]byte, n)
		got, err := lz4.UncompressBlock(block, dst)
		if err != nil || got != n || !bytes.Equal(dst, src) {
			t.Fatalf("n=%d: %d bytes, %v", n, got, err)
		}
	}
}

func TestParseOptions(t *testing.T) {
	for s, want := range map[string]Compression{"": CompressionNone, "LZ4": CompressionLZ4, "zstd": CompressionZstd, "Snappy": CompressionSnappy, "zlib": CompressionZLib} {
		if got, err := ParseCompression(s); err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseCompression("gzip"); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("gzip: %v", err)
	}
	for s, want := range map[string]SubscriptionType{"Exclusive": Exclusive, "shared": Shared, "Failover": Failover, "Key_Shared": KeyShared, "keyshared": KeyShared} {
		if got, err := ParseSubscriptionType(s); err != nil || got != want {
			t.Errorf("ParseSubscriptionType(%q) = %v, %v", s, got, err)
		}
	}
	var o Options
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	o.ConnectionsPerBroker = -1
	if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("negative connections: %v", err)
	}
	po := ProducerOptions{Topic: "t", Compression: 9}
	po.EnsureDefaults(nil)
	if err := po.Validate(); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("unknown compression: %v", err)
	}
	co := ConsumerOptions{Topic: "t"}
	co.EnsureDefaults()
	if err := co.Validate(); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("no subscription: %v", err)
	}
}
