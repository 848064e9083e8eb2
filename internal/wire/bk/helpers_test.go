package bk

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// hx turns a hand-written fixture into bytes. A fixture is hex digits,
// with whitespace ignored, "//" comments to the end of the line, "x20"-style
// repeat counts after a byte ("11 x20" is twenty 0x11 bytes), and
// double-quoted ASCII text.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	var out []byte
	var digits strings.Builder
	flush := func() {
		if digits.Len() == 0 {
			return
		}
		b, err := hex.DecodeString(digits.String())
		if err != nil {
			t.Fatalf("bad fixture hex %q: %v", digits.String(), err)
		}
		out = append(out, b...)
		digits.Reset()
	}
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		for len(line) > 0 {
			line = strings.TrimLeft(line, " \t")
			if line == "" {
				break
			}
			switch {
			case line[0] == '"':
				flush()
				end := strings.IndexByte(line[1:], '"')
				if end < 0 {
					t.Fatalf("unterminated string in fixture: %q", line)
				}
				out = append(out, line[1:1+end]...)
				line = line[2+end:]
			case line[0] == 'x':
				flush()
				j := 1
				n := 0
				for j < len(line) && line[j] >= '0' && line[j] <= '9' {
					n = n*10 + int(line[j]-'0')
					j++
				}
				if len(out) == 0 || n < 1 {
					t.Fatalf("bad repeat in fixture: %q", line)
				}
				last := out[len(out)-1]
				out = append(out, bytes.Repeat([]byte{last}, n-1)...)
				line = line[j:]
			default:
				j := strings.IndexAny(line, " \t\"")
				if j < 0 {
					j = len(line)
				}
				digits.WriteString(line[:j])
				if digits.Len()%2 != 0 {
					t.Fatalf("odd hex group %q in fixture", line[:j])
				}
				flush()
				line = line[j:]
			}
		}
	}
	flush()
	return out
}

func TestHexFixtureHelper(t *testing.T) {
	got := hx(t, `
		00 01 // comment 02
		ff x3 "ab"
		0a0b`)
	want := []byte{0, 1, 0xff, 0xff, 0xff, 'a', 'b', 0x0a, 0x0b}
	if !bytes.Equal(got, want) {
		t.Fatalf("hx = % x, want % x", got, want)
	}
}

// body strips the 4-byte length word of a single frame, checking it.
func body(t testing.TB, frame []byte) []byte {
	t.Helper()
	b, n, err := SplitFrame(frame, 0)
	if err != nil || b == nil || n != len(frame) {
		t.Fatalf("not exactly one frame (n=%d of %d, err %v): % x", n, len(frame), err, frame)
	}
	return b
}

// masterKey0to19 is the master key 00 01 02 ... 13 used by the fixtures.
func masterKey0to19() MasterKey {
	var k MasterKey
	for i := range k {
		k[i] = byte(i)
	}
	return k
}

const key0to19Hex = "00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13"
