package client

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// The codecs, as Pulsar clients frame them (pulsar-client-go
// internal/compression):
//   - LZ4: one raw LZ4 block, no frame header; the reader learns the size
//     from MessageMetadata.uncompressed_size.
//   - ZLIB: a zlib stream (RFC 1950, with header and Adler-32).
//   - ZSTD: one standard zstd frame.
//   - SNAPPY: one raw Snappy block (not the framed format).

// maxUncompressedSize bounds the size a delivery may claim once
// decompressed, so that a corrupt or hostile uncompressed_size cannot make
// the client allocate without limit.
const maxUncompressedSize = 64 << 20

// zstdCodec holds the zstd encoder and decoder a client shares between its
// producers and consumers: EncodeAll and DecodeAll are safe for concurrent
// use, and each instance is expensive to build.
type zstdCodec struct {
	once sync.Once
	enc  *zstd.Encoder
	dec  *zstd.Decoder
	err  error
}

func (z *zstdCodec) get() (*zstd.Encoder, *zstd.Decoder, error) {
	z.once.Do(func() {
		z.enc, z.err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if z.err != nil {
			return
		}
		z.dec, z.err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxUncompressedSize))
	})
	return z.enc, z.dec, z.err
}

func (z *zstdCodec) close() {
	if z.enc != nil {
		_ = z.enc.Close()
	}
	if z.dec != nil {
		z.dec.Close()
	}
}

// compressor compresses batches for one partition producer; it keeps its
// scratch state between calls and is used under the producer's lock.
type compressor struct {
	kind Compression
	zstd *zstdCodec
	lz4  lz4.Compressor
	zw   *zlib.Writer
	zbuf bytes.Buffer
	out  []byte
}

// compress returns src compressed with c.kind. The result aliases c's
// scratch buffer and is valid until the next call.
func (c *compressor) compress(src []byte) ([]byte, error) {
	switch c.kind {
	case CompressionNone:
		return src, nil
	case CompressionLZ4:
		bound := lz4.CompressBlockBound(len(src))
		if cap(c.out) < bound {
			c.out = make([]byte, bound)
		}
		dst := c.out[:bound]
		n, err := c.lz4.CompressBlock(src, dst)
		if err != nil {
			return nil, fmt.Errorf("client: lz4: %w", err)
		}
		if n == 0 { // incompressible: a block of literals only
			return appendLZ4Literals(c.out[:0], src), nil
		}
		return dst[:n], nil
	case CompressionZLib:
		c.zbuf.Reset()
		if c.zw == nil {
			c.zw = zlib.NewWriter(&c.zbuf)
		} else {
			c.zw.Reset(&c.zbuf)
		}
		if _, err := c.zw.Write(src); err != nil {
			return nil, fmt.Errorf("client: zlib: %w", err)
		}
		if err := c.zw.Close(); err != nil {
			return nil, fmt.Errorf("client: zlib: %w", err)
		}
		return c.zbuf.Bytes(), nil
	case CompressionZstd:
		enc, _, err := c.zstd.get()
		if err != nil {
			return nil, fmt.Errorf("client: zstd: %w", err)
		}
		c.out = enc.EncodeAll(src, c.out[:0])
		return c.out, nil
	case CompressionSnappy:
		if n := snappy.MaxEncodedLen(len(src)); cap(c.out) < n {
			c.out = make([]byte, n)
		}
		c.out = snappy.Encode(c.out[:cap(c.out)], src)
		return c.out, nil
	}
	return nil, fmt.Errorf("%w: unknown compression %d", ErrInvalidOptions, int(c.kind))
}

// appendLZ4Literals appends an LZ4 block holding src as one run of
// literals: a token with the literal length, the length's extension bytes,
// the literals, and no match (the last sequence of a block).
func appendLZ4Literals(dst, src []byte) []byte {
	n := len(src)
	if n < 15 {
		dst = append(dst, byte(n<<4))
	} else {
		dst = append(dst, 0xF0)
		for l := n - 15; ; l -= 255 {
			if l < 255 {
				dst = append(dst, byte(l))
				break
			}
			dst = append(dst, 255)
		}
	}
	return append(dst, src...)
}

// decompressor undoes compression for one partition consumer (read loop
// only).
type decompressor struct {
	zstd *zstdCodec
	zr   io.ReadCloser
	rd   bytes.Reader
	out  []byte
}

// decompress returns src decompressed with kind; size is the uncompressed
// size from the metadata, which the result must match. The result aliases
// d's scratch buffer and is valid until the next call.
func (d *decompressor) decompress(kind Compression, src []byte, size int) ([]byte, error) {
	if kind == CompressionNone {
		return src, nil
	}
	if size < 0 || size > maxUncompressedSize {
		return nil, fmt.Errorf("%w: uncompressed size %d out of range", ErrCorruptMessage, size)
	}
	// At least one byte: pierrec/lz4 v4.1.33 dereferences a nil destination
	// (an empty batch decoded into a never-grown buffer) and crashes.
	if cap(d.out) < max(size, 1) {
		d.out = make([]byte, max(size, 1))
	}
	dst := d.out[:size]
	var got []byte
	switch kind {
	case CompressionLZ4:
		n, err := lz4.UncompressBlock(src, dst)
		if err != nil {
			return nil, fmt.Errorf("%w: lz4: %v", ErrCorruptMessage, err)
		}
		got = dst[:n]
	case CompressionZLib:
		d.rd.Reset(src)
		var err error
		if d.zr == nil {
			d.zr, err = zlib.NewReader(&d.rd)
		} else {
			err = d.zr.(zlib.Resetter).Reset(&d.rd, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: zlib: %v", ErrCorruptMessage, err)
		}
		n, err := io.ReadFull(d.zr, dst)
		if err != nil {
			return nil, fmt.Errorf("%w: zlib: %v", ErrCorruptMessage, err)
		}
		got = dst[:n]
	case CompressionZstd:
		_, dec, err := d.zstd.get()
		if err != nil {
			return nil, fmt.Errorf("client: zstd: %w", err)
		}
		got, err = dec.DecodeAll(src, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorruptMessage, err)
		}
		if cap(got) > cap(d.out) {
			d.out = got[:cap(got)]
		}
	case CompressionSnappy:
		n, err := snappy.DecodedLen(src)
		if err != nil || n != size {
			return nil, fmt.Errorf("%w: snappy: decoded length %d, metadata says %d (%v)", ErrCorruptMessage, n, size, err)
		}
		got, err = snappy.Decode(dst, src)
		if err != nil {
			return nil, fmt.Errorf("%w: snappy: %v", ErrCorruptMessage, err)
		}
	default:
		return nil, fmt.Errorf("%w: unknown compression %d", ErrCorruptMessage, int(kind))
	}
	if len(got) != size {
		return nil, fmt.Errorf("%w: %v: %d bytes after decompression, metadata says %d", ErrCorruptMessage, kind, len(got), size)
	}
	return got, nil
}
