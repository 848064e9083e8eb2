package pulsar

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"

	"github.com/magnetar/magnetar/internal/base"
)

// Errors. Every error the decoders return wraps one of these; the ones that
// describe bad bytes also wrap base.ErrCorruption, and ErrFrameTooLarge wraps
// base.ErrTooLarge.
var (
	// ErrMalformed: the bytes are not valid protobuf or not a valid frame
	// (a varint that does not end, a length past the end, an invalid wire
	// type or field number, sizes that do not add up).
	ErrMalformed = fmt.Errorf("pulsar: malformed input (%w)", base.ErrCorruption)
	// ErrMissingField: a proto2 required field is absent.
	ErrMissingField = fmt.Errorf("pulsar: required field missing (%w)", base.ErrCorruption)
	// ErrChecksum: the CRC32C of a payload frame does not match its bytes.
	ErrChecksum = fmt.Errorf("pulsar: checksum mismatch (%w)", base.ErrCorruption)
	// ErrBadMagic: a stored entry does not start with the 0x0e01 magic.
	ErrBadMagic = fmt.Errorf("pulsar: missing 0x0e01 magic (%w)", base.ErrCorruption)
	// ErrFrameTooLarge: a frame's total_size exceeds the reader's maximum.
	ErrFrameTooLarge = fmt.Errorf("pulsar: frame too large (%w)", base.ErrTooLarge)
)

// Protobuf wire types.
const (
	wtVarint     = 0
	wtFixed64    = 1
	wtBytes      = 2
	wtStartGroup = 3
	wtEndGroup   = 4
	wtFixed32    = 5
)

// maxFieldNumber is the largest field number protobuf allows.
const maxFieldNumber = 1<<29 - 1

// maxGroupDepth bounds nested groups while skipping them, so hostile input
// cannot make the skipper loop for long.
const maxGroupDepth = 100

// ---- encoding ----

func appendVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func varintLen(v uint64) int {
	// 1 + floor((bitlen-1)/7), with 0 taking one byte.
	return int(9*uint32(bits.Len64(v))+64) / 64
}

func appendTag(dst []byte, num int, wt int) []byte {
	return appendVarint(dst, uint64(num)<<3|uint64(wt))
}

func appendUint64(dst []byte, num int, v uint64) []byte {
	return appendVarint(appendTag(dst, num, wtVarint), v)
}

// appendInt32 encodes an int32 (or enum) the protobuf way: negative values
// are sign-extended to ten bytes.
func appendInt32(dst []byte, num int, v int32) []byte {
	return appendUint64(dst, num, uint64(int64(v)))
}

func appendInt64(dst []byte, num int, v int64) []byte {
	return appendUint64(dst, num, uint64(v))
}

func appendBool(dst []byte, num int, v bool) []byte {
	b := uint64(0)
	if v {
		b = 1
	}
	return appendUint64(dst, num, b)
}

func appendString(dst []byte, num int, s string) []byte {
	dst = appendVarint(appendTag(dst, num, wtBytes), uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst []byte, num int, b []byte) []byte {
	dst = appendVarint(appendTag(dst, num, wtBytes), uint64(len(b)))
	return append(dst, b...)
}

func appendDouble(dst []byte, num int, f float64) []byte {
	return binary.LittleEndian.AppendUint64(appendTag(dst, num, wtFixed64), math.Float64bits(f))
}

// beginMessage writes the tag of an embedded message and reserves one byte
// for its length; endMessage fixes the length once the body is written. Most
// embedded messages are shorter than 128 bytes, so the body rarely moves.
func beginMessage(dst []byte, num int) ([]byte, int) {
	dst = appendTag(dst, num, wtBytes)
	return append(dst, 0), len(dst)
}

func endMessage(dst []byte, start int) []byte {
	n := len(dst) - start - 1
	if n < 0x80 {
		dst[start] = byte(n)
		return dst
	}
	k := varintLen(uint64(n))
	for i := 1; i < k; i++ {
		dst = append(dst, 0)
	}
	copy(dst[start+k:], dst[start+1:start+1+n])
	var tmp [binary.MaxVarintLen64]byte
	copy(dst[start:], appendVarint(tmp[:0], uint64(n)))
	return dst
}

// ---- decoding ----

// decoder walks the fields of one protobuf message. It never allocates: byte
// fields are returned as subslices of the input. The first error stops the
// walk (b is dropped) and stays in err.
type decoder struct {
	b   []byte
	i   int    // read offset in b
	msg string // message name, for errors
	err error
	num int // current field number
	wt  int // current wire type
}

func newDecoder(b []byte, msg string) decoder {
	return decoder{b: b, msg: msg}
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s: %s at offset %d", ErrMalformed, d.msg, what, d.i)
	}
	d.b, d.i = nil, 0
}

// uvarint decodes a varint at the start of b. n is 0 when b ends inside the
// varint, -1 when it is longer than ten bytes or overflows 64 bits.
func uvarint(b []byte) (v uint64, n int) {
	var shift uint
	for i, c := range b {
		if i == 9 {
			if c > 1 {
				return 0, -1
			}
			return v | uint64(c)<<63, 10
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}

// readVarint reads a varint, with a fast path for the one-byte case.
func (d *decoder) readVarint() (uint64, bool) {
	if d.i < len(d.b) && d.b[d.i] < 0x80 {
		d.i++
		return uint64(d.b[d.i-1]), true
	}
	return d.readVarintSlow()
}

func (d *decoder) readVarintSlow() (uint64, bool) {
	v, n := uvarint(d.b[d.i:])
	if n <= 0 {
		if n == 0 {
			d.fail("truncated varint")
		} else {
			d.fail("varint overflow")
		}
		return 0, false
	}
	d.i += n
	return v, true
}

// validWireTypes has bit wt set for each wire type that may start a field:
// 0, 1, 2, 3 and 5 (not end-group, not 6 or 7).
const validWireTypes = 1<<wtVarint | 1<<wtFixed64 | 1<<wtBytes | 1<<wtStartGroup | 1<<wtFixed32

func validWireType(wt byte) bool { return validWireTypes>>wt&1 != 0 }

// next advances to the next field. It returns false at the end of the
// message or on an error (check d.err). The common one-byte tag (fields
// 1-15) takes the fast path.
func (d *decoder) next() bool {
	if d.i < len(d.b) {
		if c := d.b[d.i]; c < 0x80 && c >= 1<<3 && validWireType(c&7) {
			d.num, d.wt = int(c>>3), int(c&7)
			d.i++
			return true
		}
	}
	return d.nextSlow()
}

func (d *decoder) nextSlow() bool {
	if d.i >= len(d.b) || d.err != nil {
		return false
	}
	tag, ok := d.readVarintSlow()
	if !ok {
		return false
	}
	num, wt := tag>>3, int(tag&7)
	if num == 0 || num > maxFieldNumber {
		d.fail(fmt.Sprintf("invalid field number %d", num))
		return false
	}
	if !validWireType(byte(wt)) {
		d.fail(fmt.Sprintf("invalid wire type %d for field %d", wt, num))
		return false
	}
	d.num, d.wt = int(num), wt
	return true
}

// skip skips the current field's value.
func (d *decoder) skip() {
	if !d.skipValue(d.wt) {
		return
	}
	if d.wt == wtStartGroup {
		d.skipGroup(d.num)
	}
}

// skipValue skips a value of wire type wt (for a start-group tag, nothing).
func (d *decoder) skipValue(wt int) bool {
	switch wt {
	case wtVarint:
		_, ok := d.readVarint()
		return ok
	case wtFixed64:
		if len(d.b)-d.i < 8 {
			d.fail("truncated fixed64")
			return false
		}
		d.i += 8
	case wtFixed32:
		if len(d.b)-d.i < 4 {
			d.fail("truncated fixed32")
			return false
		}
		d.i += 4
	case wtBytes:
		_, ok := d.readBytes()
		return ok
	case wtStartGroup:
	default:
		d.fail(fmt.Sprintf("invalid wire type %d", wt))
		return false
	}
	return true
}

// skipGroup skips the body of a (deprecated) group up to its end tag.
func (d *decoder) skipGroup(num int) {
	stack := [maxGroupDepth]int{num}
	depth := 1
	for depth > 0 {
		tag, ok := d.readVarint()
		if !ok {
			return
		}
		n, wt := tag>>3, int(tag&7)
		if n == 0 || n > maxFieldNumber {
			d.fail("invalid field number in group")
			return
		}
		switch wt {
		case wtEndGroup:
			if int(n) != stack[depth-1] {
				d.fail("mismatched end group")
				return
			}
			depth--
		case wtStartGroup:
			if depth == maxGroupDepth {
				d.fail("groups nested too deeply")
				return
			}
			stack[depth] = int(n)
			depth++
		default:
			if !d.skipValue(wt) {
				return
			}
		}
	}
}

func (d *decoder) readBytes() ([]byte, bool) {
	l, ok := d.readVarint()
	if !ok {
		return nil, false
	}
	if l > uint64(len(d.b)-d.i) {
		d.fail("length past the end")
		return nil, false
	}
	// Cap the subslice so that a caller appending to it cannot overwrite
	// the bytes that follow in the frame.
	end := d.i + int(l)
	v := d.b[d.i:end:end]
	d.i = end
	return v, true
}

// uint64 reads the current field as a varint. A field of another wire type
// is skipped as unknown (as protobuf-go does) and ok is false.
func (d *decoder) uint64() (uint64, bool) {
	if d.wt != wtVarint {
		return d.skipMismatch()
	}
	return d.readVarint()
}

func (d *decoder) skipMismatch() (uint64, bool) {
	d.skip()
	return 0, false
}

func (d *decoder) bytes() ([]byte, bool) {
	if d.wt != wtBytes {
		d.skip()
		return nil, false
	}
	return d.readBytes()
}

func (d *decoder) string() (string, bool) {
	b, ok := d.bytes()
	return string(b), ok
}

func (d *decoder) double() (float64, bool) {
	if d.wt != wtFixed64 {
		d.skip()
		return 0, false
	}
	if len(d.b)-d.i < 8 {
		d.fail("truncated fixed64")
		return 0, false
	}
	v := binary.LittleEndian.Uint64(d.b[d.i:])
	d.i += 8
	return math.Float64frombits(v), true
}

// int64s appends a repeated int64 field, accepting both the unpacked form
// (one varint) and the packed form (a length-delimited run of varints).
func (d *decoder) int64s(dst []int64) []int64 {
	switch d.wt {
	case wtVarint:
		if v, ok := d.readVarint(); ok {
			dst = append(dst, int64(v))
		}
	case wtBytes:
		b, ok := d.readBytes()
		for ok && len(b) > 0 {
			v, n := uvarint(b)
			if n <= 0 {
				d.fail("bad varint in packed field")
				return dst
			}
			dst = append(dst, int64(v))
			b = b[n:]
		}
	default:
		d.skip()
	}
	return dst
}

// message reads an embedded message field and decodes it with decode.
func (d *decoder) message(decode func([]byte) error) bool {
	b, ok := d.bytes()
	if !ok {
		return false
	}
	if err := decode(b); err != nil {
		if d.err == nil {
			d.err = fmt.Errorf("%s field %d: %w", d.msg, d.num, err)
		}
		d.b, d.i = nil, 0
		return false
	}
	return true
}

// check returns the walk's error, or ErrMissingField when a required field
// (bit n of req = field n) was not seen.
func (d *decoder) check(seen, req uint64) error {
	if d.err != nil {
		return d.err
	}
	if miss := req &^ seen; miss != 0 {
		return fmt.Errorf("%w: %s field %d", ErrMissingField, d.msg, bits.TrailingZeros64(miss))
	}
	return nil
}

// grow extends s by one element, reusing the backing array (and the old
// element's own slices, which its decode resets) when there is room.
func grow[T any](s []T) ([]T, *T) {
	if len(s) < cap(s) {
		s = s[:len(s)+1]
	} else {
		var zero T
		s = append(s, zero)
	}
	return s, &s[len(s)-1]
}
