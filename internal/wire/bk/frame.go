package bk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/magnetar/magnetar/internal/base"
)

// Frame constants. They are part of the wire format.
const (
	// FrameLengthSize is the size of the big-endian length that precedes
	// every frame body.
	FrameLengthSize = 4

	// DefaultMaxFrameSize is the largest frame accepted by default, length
	// word included: Pulsar's nettyMaxFrameSizeBytes (5 MiB of message plus
	// 10 KiB of headroom for protocol headers). BookKeeper's own default is
	// 5 MiB flat.
	DefaultMaxFrameSize = 5<<20 + 10<<10
)

// Errors. Each wraps a base error class so callers can also test the class.
var (
	// ErrFrameTooLarge: a frame's length word announces more bytes than the
	// maximum frame size. The stream cannot be resynchronised; close it.
	ErrFrameTooLarge = fmt.Errorf("bk: frame too large: %w", base.ErrTooLarge)
	// ErrMalformed: bytes that are not a valid frame or message.
	ErrMalformed = fmt.Errorf("bk: malformed message: %w", base.ErrCorruption)
)

// SplitFrame looks for one whole frame at the start of buf, where a frame is
// a 4-byte big-endian length n followed by n body bytes, and the whole
// (4+n) may not exceed maxFrameSize (0 means DefaultMaxFrameSize), the rule
// of BookKeeper's LengthFieldBasedFrameDecoder(max, 0, 4, 0, 4).
//
// With a whole frame it returns the body (a subslice of buf, not a copy) and
// the number of bytes the frame occupies. Without one it returns a nil body
// and need: the number of bytes buf must hold before the call can succeed
// (FrameLengthSize while the length word is incomplete, then 4+n). A length
// that is negative or too large is an error wrapping ErrFrameTooLarge.
func SplitFrame(buf []byte, maxFrameSize int) (body []byte, n int, err error) {
	if maxFrameSize <= 0 {
		maxFrameSize = DefaultMaxFrameSize
	}
	if len(buf) < FrameLengthSize {
		return nil, FrameLengthSize, nil
	}
	length := int32(binary.BigEndian.Uint32(buf))
	if length < 0 {
		return nil, 0, fmt.Errorf("%w: negative length %d", ErrFrameTooLarge, length)
	}
	if int64(length)+FrameLengthSize > int64(maxFrameSize) {
		return nil, 0, fmt.Errorf("%w: %d bytes, maximum %d", ErrFrameTooLarge, int64(length)+FrameLengthSize, maxFrameSize)
	}
	total := FrameLengthSize + int(length)
	if len(buf) < total {
		return nil, total, nil
	}
	return buf[FrameLengthSize:total:total], total, nil
}

// AppendFrameLength appends the length word of a frame whose body is n bytes.
func AppendFrameLength(dst []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// FrameReader reads frames from a stream into a buffer it owns and reuses.
// A body returned by Next is valid until the following call to Next. It is
// not safe for concurrent use.
type FrameReader struct {
	r            io.Reader
	maxFrameSize int
	buf          []byte
	start, end   int // buf[start:end] holds bytes read but not yet returned
}

// DefaultFrameReaderBuffer is the initial buffer of a FrameReader. It grows
// (up to the maximum frame size) when a frame does not fit.
const DefaultFrameReaderBuffer = 64 << 10

// NewFrameReader makes a FrameReader over r. maxFrameSize 0 means
// DefaultMaxFrameSize; bufSize 0 means DefaultFrameReaderBuffer.
func NewFrameReader(r io.Reader, maxFrameSize, bufSize int) *FrameReader {
	if maxFrameSize <= 0 {
		maxFrameSize = DefaultMaxFrameSize
	}
	if bufSize <= 0 {
		bufSize = DefaultFrameReaderBuffer
	}
	bufSize = max(bufSize, FrameLengthSize)
	return &FrameReader{r: r, maxFrameSize: maxFrameSize, buf: make([]byte, bufSize)}
}

// Next returns the body of the next frame. At a clean end of the stream
// (between frames) it returns io.EOF; a stream that ends inside a frame gives
// io.ErrUnexpectedEOF; an oversized frame gives an error wrapping
// ErrFrameTooLarge, after which the stream is unusable.
func (fr *FrameReader) Next() ([]byte, error) {
	for {
		body, n, err := SplitFrame(fr.buf[fr.start:fr.end], fr.maxFrameSize)
		if err != nil {
			return nil, err
		}
		if body != nil {
			fr.start += n
			return body, nil
		}
		fr.makeRoom(n)
		m, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += m
		if m > 0 {
			continue
		}
		if err == nil {
			continue // a Reader may return 0, nil; try again
		}
		if errors.Is(err, io.EOF) {
			if fr.end == fr.start {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

// makeRoom ensures buf can hold need bytes from start, moving the unread
// bytes to the front or growing the buffer.
func (fr *FrameReader) makeRoom(need int) {
	if fr.start == fr.end {
		fr.start, fr.end = 0, 0
	}
	if fr.start+need <= len(fr.buf) && fr.end < len(fr.buf) {
		return
	}
	if need > len(fr.buf) {
		size := max(2*len(fr.buf), need)
		size = min(size, fr.maxFrameSize)
		size = max(size, need)
		nb := make([]byte, size)
		fr.end = copy(nb, fr.buf[fr.start:fr.end])
		fr.start = 0
		fr.buf = nb
		return
	}
	fr.end = copy(fr.buf, fr.buf[fr.start:fr.end])
	fr.start = 0
}

// Buffered is the number of bytes already read from the stream but not yet
// returned. A server can use it to tell whether another request is ready
// without blocking (and so whether to flush its responses now).
func (fr *FrameReader) Buffered() int { return fr.end - fr.start }
