package bk

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/magnetar/magnetar/internal/base"
)

func TestSplitFrame(t *testing.T) {
	frame := hx(t, `00 00 00 03 "abc"`)
	for i := range 4 {
		b, need, err := SplitFrame(frame[:i], 0)
		if b != nil || need != 4 || err != nil {
			t.Fatalf("%d bytes: %q %d %v, want need 4", i, b, need, err)
		}
	}
	for i := 4; i < len(frame); i++ {
		b, need, err := SplitFrame(frame[:i], 0)
		if b != nil || need != 7 || err != nil {
			t.Fatalf("%d bytes: %q %d %v, want need 7", i, b, need, err)
		}
	}
	// A whole frame followed by the start of the next one.
	buf := append(bytes.Clone(frame), 0, 0)
	b, n, err := SplitFrame(buf, 0)
	if string(b) != "abc" || n != 7 || err != nil {
		t.Fatalf("whole frame: %q %d %v", b, n, err)
	}
	if cap(b) != 3 {
		t.Fatalf("body capacity %d: appending to it would overwrite the next frame", cap(b))
	}
	// An empty frame is a frame.
	if b, n, err := SplitFrame([]byte{0, 0, 0, 0}, 0); b == nil || len(b) != 0 || n != 4 || err != nil {
		t.Fatalf("empty frame: %v %d %v", b, n, err)
	}
}

func TestSplitFrameLimits(t *testing.T) {
	at := func(total int) []byte { return AppendFrameLength(nil, total-FrameLengthSize) }
	// Exactly the maximum is accepted (more bytes needed), one more is not.
	if _, need, err := SplitFrame(at(100), 100); err != nil || need != 100 {
		t.Fatalf("frame of exactly max: need %d, %v", need, err)
	}
	_, _, err := SplitFrame(at(101), 100)
	if !errors.Is(err, ErrFrameTooLarge) || !errors.Is(err, base.ErrTooLarge) {
		t.Fatalf("frame of max+1: %v", err)
	}
	// The default is Pulsar's nettyMaxFrameSizeBytes, 5253120.
	if DefaultMaxFrameSize != 5253120 {
		t.Fatalf("DefaultMaxFrameSize = %d", DefaultMaxFrameSize)
	}
	if _, _, err := SplitFrame(at(DefaultMaxFrameSize), 0); err != nil {
		t.Fatalf("default max: %v", err)
	}
	if _, _, err := SplitFrame(at(DefaultMaxFrameSize+1), 0); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("default max+1: %v", err)
	}
	// A negative length (top bit set) is refused, not wrapped around.
	if _, _, err := SplitFrame([]byte{0x80, 0, 0, 0}, 0); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("negative length: %v", err)
	}
	if _, _, err := SplitFrame([]byte{0xff, 0xff, 0xff, 0xff}, 1<<62); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("length -1: %v", err)
	}
}

func frames(bodies ...string) []byte {
	var out []byte
	for _, b := range bodies {
		out = append(AppendFrameLength(out, len(b)), b...)
	}
	return out
}

func TestFrameReader(t *testing.T) {
	big := string(bytes.Repeat([]byte("x"), 100_000))
	bodies := []string{"a", "", "hello", big, "tail"}
	stream := frames(bodies...)
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(stream) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(stream)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(stream)) },
		"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(stream)) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			fr := NewFrameReader(mk(), 0, 16) // a tiny buffer, to exercise growth and compaction
			for i, want := range bodies {
				got, err := fr.Next()
				if err != nil || string(got) != want {
					t.Fatalf("frame %d: %d bytes, %v; want %d bytes", i, len(got), err, len(want))
				}
			}
			if _, err := fr.Next(); err != io.EOF {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
		})
	}
}

func TestFrameReaderBuffered(t *testing.T) {
	fr := NewFrameReader(bytes.NewReader(frames("ab", "cd")), 0, 0)
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	if fr.Buffered() != 6 {
		t.Fatalf("Buffered = %d, want 6 (the second frame)", fr.Buffered())
	}
	if _, err := fr.Next(); err != nil || fr.Buffered() != 0 {
		t.Fatalf("second frame: %v, Buffered %d", err, fr.Buffered())
	}
}

func TestFrameReaderErrors(t *testing.T) {
	// Ends inside a frame: body cut short, or length word cut short.
	for _, cut := range []int{2, 5} {
		fr := NewFrameReader(bytes.NewReader(frames("abc")[:cut]), 0, 0)
		if _, err := fr.Next(); err != io.ErrUnexpectedEOF {
			t.Fatalf("cut at %d: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
	// Oversized frame.
	fr := NewFrameReader(bytes.NewReader(frames("ok", "too long")), 10, 0)
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := fr.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	// Reader errors pass through.
	boom := errors.New("boom")
	fr = NewFrameReader(io.MultiReader(bytes.NewReader(frames("x")[:3]), iotest.ErrReader(boom)), 0, 0)
	if _, err := fr.Next(); !errors.Is(err, boom) {
		t.Fatalf("reader error: %v", err)
	}
}

// A frame larger than the initial buffer makes the reader grow, up to the
// frame size but not beyond the maximum.
func TestFrameReaderGrowth(t *testing.T) {
	body := bytes.Repeat([]byte{7}, 1000)
	fr := NewFrameReader(bytes.NewReader(frames(string(body))), 1004, 8)
	got, err := fr.Next()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
	if len(fr.buf) > 1004 {
		t.Fatalf("buffer grew to %d, beyond the maximum frame", len(fr.buf))
	}
}
