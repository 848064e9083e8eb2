package record

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var testMagic = [8]byte{'M', 'G', 'T', 'E', 'S', 'T', '0', '1'}

// goldenFile builds a small file whose bytes pin the format: a file header,
// an entry record, a padding record and a fence record.
func goldenFile() []byte {
	buf := make([]byte, FileHeaderSize)
	PutFileHeader(buf, FileHeader{Magic: testMagic, Version: FormatVersion, FileNum: 7})
	buf = Append(buf, Header{FileNum: 7, Kind: KindEntry, Ledger: 0x0102030405060708, Entry: 9}, []byte("hello, journal"))
	buf = Append(buf, Header{FileNum: 7, Kind: KindPadding, Ledger: 4096}, make([]byte, 10))
	buf = Append(buf, Header{FileNum: 7, Kind: KindFence, Flags: 1, Ledger: -1, Entry: -2}, nil)
	return buf
}

func hexDump(b []byte) string {
	var sb strings.Builder
	for off := 0; off < len(b); off += 16 {
		end := min(off+16, len(b))
		fmt.Fprintf(&sb, "%04x  %s\n", off, hex.EncodeToString(b[off:end]))
	}
	return sb.String()
}

// TestGolden pins the byte layout of file headers and records. Run with
// -update to regenerate testdata/format.golden after a deliberate format
// change, and review the diff.
func TestGolden(t *testing.T) {
	got := hexDump(goldenFile())
	path := filepath.Join("testdata", "format.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("format changed:\n got:\n%s\nwant:\n%s", got, want)
	}
}

// TestLayout checks the documented field offsets independently of the
// golden file, so a wrong golden file cannot bless a wrong layout.
func TestLayout(t *testing.T) {
	payload := []byte("abc")
	rec := Append(nil, Header{FileNum: 0x11223344, Kind: KindLAC, Flags: 0x5a, Ledger: 0x0a0b0c0d0e0f1011, Entry: 0x2122232425262728}, payload)
	if len(rec) != HeaderSize+len(payload) {
		t.Fatalf("len %d", len(rec))
	}
	want := "03000000" + "44332211" + "04" + "5a" + "0000" + "11100f0e0d0c0b0a" + "2827262524232221" + hex.EncodeToString(payload)
	if got := hex.EncodeToString(rec[4:]); got != want {
		t.Fatalf("layout\n got %s\nwant %s", got, want)
	}
	crc := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), rec[4:])
	if got := uint32(rec[0]) | uint32(rec[1])<<8 | uint32(rec[2])<<16 | uint32(rec[3])<<24; got != crc {
		t.Fatalf("crc %08x, want CRC32C of bytes [4:] %08x", got, crc)
	}

	fh := make([]byte, FileHeaderSize)
	PutFileHeader(fh, FileHeader{Magic: testMagic, Version: FormatVersion, FileNum: 0x01020304})
	if !bytes.Equal(fh[:8], testMagic[:]) || hex.EncodeToString(fh[8:16]) != "0100000004030201" {
		t.Fatalf("file header layout: %x", fh[:20])
	}
	if !allZero(fh[20:]) {
		t.Fatalf("reserved bytes not zero: %x", fh[20:])
	}
	if _, err := DecodeFileHeader(fh, testMagic); err != nil {
		t.Fatal(err)
	}
}

func TestFileHeaderErrors(t *testing.T) {
	good := make([]byte, FileHeaderSize)
	PutFileHeader(good, FileHeader{Magic: testMagic, Version: FormatVersion, FileNum: 3})
	cases := map[string]func(b []byte) []byte{
		"short":     func(b []byte) []byte { return b[:FileHeaderSize-1] },
		"checksum":  func(b []byte) []byte { b[13] ^= 1; return b },
		"magic":     func(b []byte) []byte { return put(b, FileHeader{Magic: [8]byte{'X'}, Version: FormatVersion}) },
		"version":   func(b []byte) []byte { return put(b, FileHeader{Magic: testMagic, Version: 99}) },
		"all zeros": func(b []byte) []byte { clear(b); return b },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			b := mutate(bytes.Clone(good))
			if _, err := DecodeFileHeader(b, testMagic); !errors.Is(err, ErrBadHeader) {
				t.Fatalf("got %v, want ErrBadHeader", err)
			}
		})
	}
}

func put(b []byte, h FileHeader) []byte { PutFileHeader(b, h); return b }

type rec struct {
	h       Header
	payload string
}

func buildFile(fileNum uint32, recs ...rec) []byte {
	buf := make([]byte, FileHeaderSize)
	PutFileHeader(buf, FileHeader{Magic: testMagic, Version: FormatVersion, FileNum: fileNum})
	for _, r := range recs {
		h := r.h
		if h.FileNum == 0 {
			h.FileNum = fileNum
		}
		buf = Append(buf, h, []byte(r.payload))
	}
	return buf
}

func readAll(t *testing.T, file []byte, fileNum uint32) ([]rec, int64, error) {
	t.Helper()
	rd := NewReader(bytes.NewReader(file), int64(len(file)), fileNum, FileHeaderSize)
	var out []rec
	for i := 0; ; i++ {
		if i > len(file) {
			t.Fatal("reader does not advance")
		}
		h, p, err := rd.Next()
		if err != nil {
			return out, rd.Offset(), err
		}
		out = append(out, rec{h, string(p)})
	}
}

func TestRoundTrip(t *testing.T) {
	big := strings.Repeat("x", 300<<10) // larger than the reader's window
	recs := []rec{
		{Header{Kind: KindEntry, Ledger: 1, Entry: 0}, "first"},
		{Header{Kind: KindEntry, Ledger: 1, Entry: 1}, ""},
		{Header{Kind: KindEntry, Ledger: 2, Entry: 0}, big},
		{Header{Kind: KindMeta, Ledger: 3, Entry: -1}, "key"},
		{Header{Kind: KindDelete, Ledger: 3}, ""},
	}
	file := buildFile(5, recs...)
	got, off, err := readAll(t, file, 5)
	if err != io.EOF {
		t.Fatalf("end: %v", err)
	}
	if off != int64(len(file)) {
		t.Fatalf("end offset %d, want %d", off, len(file))
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		want := recs[i].h
		want.FileNum = 5
		want.Length = uint32(len(recs[i].payload))
		if got[i].h != want || got[i].payload != recs[i].payload {
			t.Fatalf("record %d: got %+v (%d bytes), want %+v", i, got[i].h, len(got[i].payload), want)
		}
	}
}

// TestClassification: what the reader reports for every kind of damage.
func TestClassification(t *testing.T) {
	two := []rec{
		{Header{Kind: KindEntry, Ledger: 1, Entry: 0}, "aaaaaaaaaaaaaaaa"},
		{Header{Kind: KindEntry, Ledger: 1, Entry: 1}, "bbbbbbbbbbbbbbbb"},
	}
	clean := buildFile(9, two...)
	secondAt := int64(FileHeaderSize + HeaderSize + 16)
	cases := []struct {
		name    string
		file    []byte
		records int
		torn    bool  // ErrTorn, else io.EOF
		at      int64 // offset reported
	}{
		{"clean end", clean, 2, false, int64(len(clean))},
		{"zeros after", append(bytes.Clone(clean), make([]byte, 100)...), 2, false, int64(len(clean))},
		{"partial zero header", append(bytes.Clone(clean), make([]byte, 7)...), 2, false, int64(len(clean))},
		{"stale record from an earlier file", append(bytes.Clone(clean),
			Append(nil, Header{FileNum: 8, Kind: KindEntry, Ledger: 1, Entry: 2}, []byte("old"))...), 2, false, int64(len(clean))},
		{"flipped payload byte", flip(clean, int(secondAt)+HeaderSize+3), 1, true, secondAt},
		{"flipped crc byte", flip(clean, int(secondAt)), 1, true, secondAt},
		{"flipped kind", flip(clean, int(secondAt)+12), 1, true, secondAt},
		{"kind zero, rest not", set(clean, int(secondAt)+12, 0), 1, true, secondAt},
		{"reserved bytes set", set(clean, int(secondAt)+14, 1), 1, true, secondAt},
		{"truncated in header", clean[:secondAt+10], 1, true, secondAt},
		{"truncated in payload", clean[:len(clean)-1], 1, true, secondAt},
		{"huge length", setLen(clean, secondAt, MaxPayload+1), 1, true, secondAt},
		{"length past end", setLen(clean, secondAt, 1<<20), 1, true, secondAt},
		{"zeroed record", zero(clean, secondAt, int64(len(clean))), 1, false, secondAt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, off, err := readAll(t, c.file, 9)
			if len(got) != c.records {
				t.Fatalf("%d records, want %d", len(got), c.records)
			}
			if c.torn != errors.Is(err, ErrTorn) || (!c.torn && err != io.EOF) {
				t.Fatalf("err %v, want torn=%v", err, c.torn)
			}
			if off != c.at {
				t.Fatalf("offset %d, want %d", off, c.at)
			}
			if c.torn && !strings.Contains(err.Error(), fmt.Sprintf("offset %d", c.at)) {
				t.Fatalf("error %q does not name the offset %d", err, c.at)
			}
		})
	}
}

func flip(b []byte, i int) []byte          { c := bytes.Clone(b); c[i] ^= 0x40; return c }
func set(b []byte, i int, v byte) []byte   { c := bytes.Clone(b); c[i] = v; return c }
func zero(b []byte, from, to int64) []byte { c := bytes.Clone(b); clear(c[from:to]); return c }
func setLen(b []byte, at int64, n uint32) []byte {
	c := bytes.Clone(b)
	c[at+4], c[at+5], c[at+6], c[at+7] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	return c
}

// TestNextValidAfter: invalid bytes followed by a valid record of the same
// file are found; a stale record of another file is not.
func TestNextValidAfter(t *testing.T) {
	const align = 512
	file := buildFile(4, rec{Header{Kind: KindEntry, Ledger: 1}, "first"})
	badAt := int64(len(file))
	file = append(file, bytes.Repeat([]byte{0xee}, align*2-len(file))...) // garbage up to 1024
	file = Append(file, Header{FileNum: 4, Kind: KindEntry, Ledger: 1, Entry: 1}, []byte("later"))
	staleFile := bytes.Clone(file)
	// The same record but from file 3: stale.
	copy(staleFile[align*2:], Append(nil, Header{FileNum: 3, Kind: KindEntry, Ledger: 1, Entry: 1}, []byte("later")))

	rd := NewReader(bytes.NewReader(file), int64(len(file)), 4, FileHeaderSize)
	if _, _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rd.Next(); !errors.Is(err, ErrTorn) || rd.Offset() != badAt {
		t.Fatalf("got %v at %d", err, rd.Offset())
	}
	if p, ok := rd.NextValidAfter(rd.Offset(), align); !ok || p != 2*align {
		t.Fatalf("NextValidAfter = %d, %v; want %d, true", p, ok, 2*align)
	}
	// Strictly after: asking from the valid record's own offset skips it.
	if _, ok := rd.NextValidAfter(2*align, align); ok {
		t.Fatal("NextValidAfter found the record at its own offset")
	}
	srd := NewReader(bytes.NewReader(staleFile), int64(len(staleFile)), 4, FileHeaderSize)
	if _, ok := srd.NextValidAfter(badAt, align); ok {
		t.Fatal("a stale record of file 3 counted as valid in file 4")
	}
	// Odd arguments do not panic.
	rd.NextValidAfter(-5, 0)
	rd.NextValidAfter(1<<40, 4096)
}

// FuzzReader feeds arbitrary bytes to the reader. It must never panic, must
// always advance, must classify every stop as io.EOF or ErrTorn, and every
// record it returns must re-encode to exactly the bytes it was read from.
func FuzzReader(f *testing.F) {
	f.Add(goldenFile(), uint32(7), int64(FileHeaderSize))
	f.Add(buildFile(1, rec{Header{Kind: KindEntry, Ledger: 1}, "x"}), uint32(1), int64(FileHeaderSize))
	f.Add(flip(goldenFile(), FileHeaderSize+40), uint32(7), int64(FileHeaderSize))
	f.Add(goldenFile()[:FileHeaderSize+20], uint32(7), int64(FileHeaderSize))
	f.Add([]byte{}, uint32(0), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, fileNum uint32, start int64) {
		if start < 0 || start > int64(len(data))+1 {
			start = 0
		}
		rd := NewReader(bytes.NewReader(data), int64(len(data)), fileNum, start)
		last := start
		for i := 0; ; i++ {
			if i > len(data)/HeaderSize+1 {
				t.Fatalf("more records than can fit in %d bytes", len(data))
			}
			off := rd.Offset()
			h, p, err := rd.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrTorn) {
					t.Fatalf("unclassified error %v", err)
				}
				if rd.Offset() != off {
					t.Fatalf("offset moved on error: %d -> %d", off, rd.Offset())
				}
				if p, ok := rd.NextValidAfter(off, 64); ok {
					if p <= off || p%64 != 0 {
						t.Fatalf("NextValidAfter(%d) = %d", off, p)
					}
					if _, err := DecodeHeader(data[p:], fileNum); err != nil {
						t.Fatalf("NextValidAfter(%d) = %d, but DecodeHeader there: %v", off, p, err)
					}
				}
				return
			}
			if off < last || rd.Offset() != off+h.Size() || h.FileNum != fileNum || int(h.Length) != len(p) {
				t.Fatalf("record at %d: %+v, next offset %d", off, h, rd.Offset())
			}
			if h.Kind == KindInvalid {
				t.Fatalf("record of kind 0 at %d", off)
			}
			if enc := Append(nil, h, p); !bytes.Equal(enc, data[off:off+h.Size()]) {
				t.Fatalf("record at %d does not re-encode to its bytes", off)
			}
			last = rd.Offset()
		}
	})
}

// BenchmarkChecksum compares the two candidate record checksums at the entry
// sizes that matter. The format uses CRC32C; this benchmark is the evidence.
func BenchmarkChecksum(b *testing.B) {
	table := crc32.MakeTable(crc32.Castagnoli)
	for _, size := range []int{100, 1 << 10, 64 << 10} {
		buf := bytes.Repeat([]byte{0x5a, 0xa5, 0x3c}, size/3+1)[:size]
		name := fmt.Sprintf("size=%s", sizeName(size))
		b.Run(name+"/alg=crc32c", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var sink uint32
			for b.Loop() {
				sink += crc32.Update(0, table, buf)
			}
			_ = sink
		})
		b.Run(name+"/alg=xxhash64", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			var sink uint64
			for b.Loop() {
				sink += xxhash.Sum64(buf)
			}
			_ = sink
		})
	}
}

// BenchmarkPutHeader measures framing a record whose payload is already in
// place (the journal's hot path).
func BenchmarkPutHeader(b *testing.B) {
	for _, size := range []int{100, 1 << 10, 64 << 10} {
		b.Run("size="+sizeName(size), func(b *testing.B) {
			buf := make([]byte, HeaderSize+size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				PutHeader(buf, Header{FileNum: 1, Kind: KindEntry, Ledger: 1, Entry: 2}, buf[HeaderSize:])
			}
		})
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}
