package bk

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Minimal protocol buffers (proto2 wire format) primitives for the v3
// messages. Encoding appends into caller buffers; decoding walks a byte
// slice and never allocates.

// Wire types.
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

// maxFieldNumber is the largest field number protobuf allows.
const maxFieldNumber = 1<<29 - 1

// maxGroupDepth bounds the nesting of unknown groups we skip, as protobuf's
// own recursion limit does.
const maxGroupDepth = 100

func tag(field, wt int) uint64 { return uint64(field)<<3 | uint64(wt) }

func varintLen(v uint64) int { return 1 + (bits.Len64(v|1)-1)/7 }

func appendVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// Field encoders. Sizes include the tag.

func sizeVarintField(field int, v uint64) int {
	return varintLen(tag(field, wireVarint)) + varintLen(v)
}

func appendVarintField(dst []byte, field int, v uint64) []byte {
	dst = appendVarint(dst, tag(field, wireVarint))
	return appendVarint(dst, v)
}

// sizeBytesField is the size of a length-delimited field of n bytes.
func sizeBytesField(field, n int) int {
	return varintLen(tag(field, wireBytes)) + varintLen(uint64(n)) + n
}

// appendBytesHead appends the tag and length of a length-delimited field;
// the caller appends the n bytes.
func appendBytesHead(dst []byte, field, n int) []byte {
	dst = appendVarint(dst, tag(field, wireBytes))
	return appendVarint(dst, uint64(n))
}

func appendBytesField(dst []byte, field int, b []byte) []byte {
	return append(appendBytesHead(dst, field, len(b)), b...)
}

// int32 and enum values are sign-extended to 64 bits on the wire, as
// protobuf does (a negative one takes 10 bytes).
func i32(v int32) uint64 { return uint64(int64(v)) }

// pbReader walks the fields of one message.
type pbReader struct {
	b   []byte
	i   int
	err error
}

func (r *pbReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: protobuf: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

func (r *pbReader) more() bool { return r.err == nil && r.i < len(r.b) }

func (r *pbReader) varint() uint64 {
	if r.i < len(r.b) && r.b[r.i] < 0x80 { // one byte: most tags and small values
		v := uint64(r.b[r.i])
		r.i++
		return v
	}
	return r.varintSlow()
}

func (r *pbReader) varintSlow() uint64 {
	v, n := binary.Uvarint(r.b[r.i:])
	if n <= 0 {
		if n == 0 {
			r.fail("truncated varint at %d", r.i)
		} else {
			r.fail("varint overflow at %d", r.i)
		}
		return 0
	}
	r.i += n
	return v
}

// next reads a field tag; the field number is checked to be valid.
func (r *pbReader) next() (field int, wt int) {
	t := r.varint()
	if r.err != nil {
		return 0, 0
	}
	f := t >> 3
	if f == 0 || f > maxFieldNumber {
		r.fail("invalid field number %d", f)
		return 0, 0
	}
	return int(f), int(t & 7)
}

func (r *pbReader) bytes() []byte {
	n := r.varint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.i) {
		r.fail("length %d overruns the message (%d left)", n, len(r.b)-r.i)
		return nil
	}
	b := r.b[r.i : r.i+int(n) : r.i+int(n)]
	r.i += int(n)
	return b
}

// skip skips the value of a field of wire type wt (an unknown field, or a
// known field number with an unexpected wire type, which protobuf treats as
// unknown too).
func (r *pbReader) skip(field, wt int) { r.skipDepth(field, wt, 0) }

func (r *pbReader) skipDepth(field, wt, depth int) {
	switch wt {
	case wireVarint:
		r.varint()
	case wireFixed64:
		r.advance(8)
	case wireFixed32:
		r.advance(4)
	case wireBytes:
		r.bytes()
	case wireStartGroup:
		if depth >= maxGroupDepth {
			r.fail("groups nested too deep")
			return
		}
		for r.more() {
			f, w := r.next()
			if r.err != nil {
				return
			}
			if w == wireEndGroup {
				if f != field {
					r.fail("group %d closed by end of group %d", field, f)
				}
				return
			}
			r.skipDepth(f, w, depth+1)
		}
		r.fail("unterminated group %d", field)
	default: // an end group without a start, or wire types 6 and 7
		r.fail("unexpected wire type %d for field %d", wt, field)
	}
}

func (r *pbReader) advance(n int) {
	if len(r.b)-r.i < n {
		r.fail("truncated fixed-size field at %d", r.i)
		return
	}
	r.i += n
}
