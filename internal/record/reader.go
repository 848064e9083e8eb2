package record

import (
	"errors"
	"fmt"
	"io"
)

// Reader iterates over the records of one file from a starting offset. It
// reads through a buffer of its own and never allocates per record unless a
// payload is larger than the buffer.
type Reader struct {
	r       io.ReaderAt
	size    int64
	fileNum uint32
	off     int64 // offset of the next record

	buf      []byte
	bufStart int64 // file offset of buf[0]
	bufLen   int
}

// NewReader reads records of file fileNum (size bytes long) starting at off,
// typically FileHeaderSize.
func NewReader(r io.ReaderAt, size int64, fileNum uint32, off int64) *Reader {
	return &Reader{r: r, size: size, fileNum: fileNum, off: off, buf: make([]byte, 256<<10)}
}

// Offset is the offset of the record Next will return (or of the end, or of
// the invalid bytes, after Next returned an error).
func (rd *Reader) Offset() int64 { return rd.off }

// SeekTo makes Next read the record at off (after a gap its owner skipped).
func (rd *Reader) SeekTo(off int64) { rd.off = off }

// Next returns the next record's header and payload. The payload aliases the
// reader's buffer and is valid until the following call. It returns io.EOF at
// a clean end and an error wrapping ErrTorn (with the offset) for invalid
// bytes.
func (rd *Reader) Next() (Header, []byte, error) {
	if rd.off >= rd.size {
		return Header{}, nil, io.EOF
	}
	hb, err := rd.window(rd.off, HeaderSize)
	if err != nil {
		return Header{}, nil, err
	}
	if len(hb) < HeaderSize {
		if allZero(hb) {
			return Header{}, nil, io.EOF
		}
		return Header{}, nil, fmt.Errorf("offset %d: %w: partial header", rd.off, ErrTorn)
	}
	if allZero(hb[:HeaderSize]) {
		return Header{}, nil, io.EOF
	}
	length := int64(uint32(hb[4]) | uint32(hb[5])<<8 | uint32(hb[6])<<16 | uint32(hb[7])<<24)
	if length > MaxPayload {
		return Header{}, nil, fmt.Errorf("offset %d: %w: length %d", rd.off, ErrTorn, length)
	}
	if rd.off+HeaderSize+length > rd.size {
		// Checked before reading so that a garbage length never makes the
		// reader allocate a window for bytes the file does not have.
		return Header{}, nil, fmt.Errorf("offset %d: %w: record of %d bytes cut by the end of the file at %d",
			rd.off, ErrTorn, HeaderSize+length, rd.size)
	}
	rec, err := rd.window(rd.off, int(HeaderSize+length))
	if err != nil {
		return Header{}, nil, err
	}
	h, err := DecodeHeader(rec, rd.fileNum)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Header{}, nil, io.EOF
		}
		return Header{}, nil, fmt.Errorf("offset %d: %w", rd.off, err)
	}
	rd.off += h.Size()
	return h, rec[HeaderSize:h.Size()], nil
}

// window returns up to n bytes of the file at off (fewer at the end of file).
func (rd *Reader) window(off int64, n int) ([]byte, error) {
	if off >= rd.bufStart && off+int64(n) <= rd.bufStart+int64(rd.bufLen) {
		s := int(off - rd.bufStart)
		return rd.buf[s : s+n], nil
	}
	if n > len(rd.buf) {
		rd.buf = make([]byte, n)
	}
	want := len(rd.buf)
	if rem := rd.size - off; int64(want) > rem {
		want = int(rem)
	}
	m, err := rd.r.ReadAt(rd.buf[:want], off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("record: read at %d: %w", off, err)
	}
	rd.bufStart, rd.bufLen = off, m
	if n > m {
		n = m
	}
	return rd.buf[:n], nil
}

// NextValidAfter reports whether a whole valid record of this file starts at
// a multiple of align strictly after off, and returns the first such offset.
// Owners use it after ErrTorn (or after a clean end short of the end of the
// file): invalid bytes followed by a valid record may mean corruption rather
// than a torn tail. It reads the rest of the file; align must be a power of
// two.
func (rd *Reader) NextValidAfter(off int64, align int) (int64, bool) {
	a := int64(align)
	if a <= 0 {
		a = 1
	}
	if off < 0 {
		off = -1
	}
	start := (off + a - 1) / a * a
	if start == off {
		start += a
	}
	for p := start; p+HeaderSize <= rd.size; p += a {
		hb, err := rd.window(p, HeaderSize)
		if err != nil || len(hb) < HeaderSize || allZero(hb) {
			continue
		}
		// Cheap checks on the header alone before reading the payload: on a
		// garbage region, reading a window of a bogus length at every
		// aligned offset would make this quadratic in the file size.
		length := int64(uint32(hb[4]) | uint32(hb[5])<<8 | uint32(hb[6])<<16 | uint32(hb[7])<<24)
		fileNum := uint32(hb[8]) | uint32(hb[9])<<8 | uint32(hb[10])<<16 | uint32(hb[11])<<24
		if fileNum != rd.fileNum || hb[12] == byte(KindInvalid) || hb[14] != 0 || hb[15] != 0 ||
			length > MaxPayload || p+HeaderSize+length > rd.size {
			continue
		}
		rec, err := rd.window(p, int(HeaderSize+length))
		if err != nil {
			continue
		}
		if _, err := DecodeHeader(rec, rd.fileNum); err == nil {
			return p, true
		}
	}
	return 0, false
}
