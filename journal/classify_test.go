package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// writeRecords appends n records of ledger 1, each in its own group, and
// closes the journal. It returns their positions.
func writeRecords(t *testing.T, opts Options, first, n int64) []Pos {
	t.Helper()
	j := mustOpen(t, opts)
	var out []Pos
	for e := first; e < first+n; e++ {
		pos, err := j.AppendSync(record.KindEntry, 1, e, payloadFor(1, e, 700))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pos)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

func readFile(t *testing.T, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, fs vfs.FS, path string, b []byte) {
	t.Helper()
	f, err := fs.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := fs.SyncDir(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
}

func mutateFile(t *testing.T, fs vfs.FS, path string, fn func([]byte) []byte) {
	t.Helper()
	writeFile(t, fs, path, fn(readFile(t, fs, path)))
}

func seg(n uint32) string { return filepath.Join("/j", SegmentName(n)) }

// wantCorruption checks err names corruption at path and offset.
func wantCorruption(t *testing.T, err error, path string, off int64) {
	t.Helper()
	if !errors.Is(err, base.ErrCorruption) {
		t.Fatalf("got %v, want corruption", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), fmt.Sprintf("offset %d", off)) {
		t.Fatalf("error %q does not name %s offset %d", err, path, off)
	}
}

// TestClassifyNewestSegment: damage in the newest segment is a torn tail
// only when nothing after it proves it had been synced.
func TestClassifyNewestSegment(t *testing.T) {
	const n = 10
	cases := []struct {
		name string
		// mutate damages segment 1 given the positions of its records.
		mutate func(b []byte, pos []Pos) []byte
		// torn: Open succeeds and replays the first `keep` records; else
		// Open fails with corruption at corruptAt(pos).
		torn      bool
		keep      int
		corruptAt func(pos []Pos) int64
		// size is the segment's size after Open cut the tail, given the
		// positions and the segment before damage.
		size func(pos []Pos, before []byte) int64
	}{
		{
			name:   "flipped byte in the last record",
			mutate: func(b []byte, pos []Pos) []byte { b[pos[n-1].Offset+100] ^= 1; return b },
			torn:   true, keep: n - 1,
			size: func(pos []Pos, _ []byte) int64 { return pos[n-1].Offset },
		},
		{
			name:   "truncated in the last record",
			mutate: func(b []byte, pos []Pos) []byte { return b[:pos[n-1].Offset+50] },
			torn:   true, keep: n - 1,
			size: func(pos []Pos, _ []byte) int64 { return pos[n-1].Offset },
		},
		{
			name: "zeroed last group",
			mutate: func(b []byte, pos []Pos) []byte {
				clear(b[pos[n-1].Offset:])
				return b
			},
			torn: true, keep: n - 1,
			size: func(pos []Pos, _ []byte) int64 { return pos[n-1].Offset },
		},
		{
			name: "stale record of an earlier file after the end",
			mutate: func(b []byte, pos []Pos) []byte {
				return append(b, padTo(record.Append(nil, record.Header{FileNum: 77, Kind: record.KindEntry, Ledger: 1, Entry: 99},
					payloadFor(1, 99, 700)), 4096)...)
			},
			torn: true, keep: n,
			size: func(_ []Pos, before []byte) int64 { return withoutZeroBlocks(before) },
		},
		{
			name: "garbage block after the end",
			mutate: func(b []byte, pos []Pos) []byte {
				return append(b, bytes.Repeat([]byte{0xab}, 4096)...)
			},
			torn: true, keep: n,
			size: func(_ []Pos, before []byte) int64 { return withoutZeroBlocks(before) },
		},
		{
			name:      "flipped byte in a middle record",
			mutate:    func(b []byte, pos []Pos) []byte { b[pos[3].Offset+200] ^= 0x10; return b },
			corruptAt: func(pos []Pos) int64 { return pos[3].Offset },
		},
		{
			name:      "flipped header byte of a middle record",
			mutate:    func(b []byte, pos []Pos) []byte { b[pos[5].Offset+17] ^= 0x01; return b },
			corruptAt: func(pos []Pos) int64 { return pos[5].Offset },
		},
		{
			name: "zeroed sector in the middle",
			mutate: func(b []byte, pos []Pos) []byte {
				clear(b[pos[4].Offset : pos[4].Offset+512])
				return b
			},
			corruptAt: func(pos []Pos) int64 { return pos[4].Offset },
		},
		{
			name: "zeroed block in the middle",
			mutate: func(b []byte, pos []Pos) []byte {
				at := vfs.AlignUp(pos[2].Offset, 4096)
				clear(b[at : at+4096])
				return b
			},
			corruptAt: func(pos []Pos) int64 { return vfs.AlignUp(pos[2].Offset, 4096) },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := vfs.NewMem()
			opts := testOptions(fs, "/j")
			pos := writeRecords(t, opts, 0, n)
			for _, p := range pos {
				if p.File != 1 {
					t.Fatalf("records spread over segments: %v", pos)
				}
			}
			before := readFile(t, fs, seg(1))
			mutateFile(t, fs, seg(1), func(b []byte) []byte { return c.mutate(b, pos) })
			j, err := Open(opts)
			if !c.torn {
				if err == nil {
					j.Close()
				}
				wantCorruption(t, err, seg(1), c.corruptAt(pos))
				return
			}
			if err != nil {
				t.Fatalf("torn tail refused: %v", err)
			}
			got, err := replayAll(t, j, nil)
			if err != nil || len(got) != c.keep {
				t.Fatalf("replayed %d records (%v), want %d", len(got), err, c.keep)
			}
			if size, want := int64(len(readFile(t, fs, seg(1)))), c.size(pos, before); size != want {
				t.Fatalf("segment 1 is %d bytes after Open, want %d: the tail was not cut", size, want)
			}
			// New appends go to a new segment and replay after the old ones.
			if _, err := j.AppendSync(record.KindEntry, 1, 500, payloadFor(1, 500, 10)); err != nil {
				t.Fatal(err)
			}
			j.Close()
			j = mustOpen(t, opts)
			defer j.Close()
			got, err = replayAll(t, j, nil)
			if err != nil || len(got) != c.keep+1 || got[c.keep].entry != 500 || got[c.keep].pos.File != 2 {
				t.Fatalf("after reopen: %d records, %v", len(got), err)
			}
		})
	}
}

func padTo(b []byte, align int) []byte {
	return append(b, make([]byte, int(vfs.AlignUp(int64(len(b)), align))-len(b))...)
}

// TestClassifyOlderSegment: an older segment was wholly synced before the
// next one was written, so any damage in it is corruption, reported by
// Replay with its file and offset.
func TestClassifyOlderSegment(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(b []byte, pos []Pos) []byte
		at     func(pos []Pos) int64
	}{
		{"flipped byte in the last record", func(b []byte, pos []Pos) []byte { b[pos[len(pos)-1].Offset+40] ^= 4; return b },
			func(pos []Pos) int64 { return pos[len(pos)-1].Offset }},
		{"truncated", func(b []byte, pos []Pos) []byte { return b[:pos[2].Offset+10] },
			func(pos []Pos) int64 { return pos[2].Offset }},
		{"zeroed tail", func(b []byte, pos []Pos) []byte { clear(b[pos[4].Offset:]); return b },
			func(pos []Pos) int64 { return pos[4].Offset }},
		{"bad file header", func(b []byte, pos []Pos) []byte { b[3] ^= 1; return b },
			func(pos []Pos) int64 { return 0 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := vfs.NewMem()
			opts := testOptions(fs, "/j")
			pos := writeRecords(t, opts, 0, 6)
			writeRecords(t, opts, 6, 3) // segment 2
			mutateFile(t, fs, seg(1), func(b []byte) []byte { return c.mutate(b, pos) })
			j, err := Open(opts)
			if err != nil {
				t.Fatalf("Open checks only the newest segment, but: %v", err)
			}
			defer j.Close()
			_, err = replayAll(t, j, nil)
			wantCorruption(t, err, seg(1), c.at(pos))
		})
	}
}

func TestClassifySegmentSet(t *testing.T) {
	t.Run("missing segment", func(t *testing.T) {
		fs := vfs.NewMem()
		opts := testOptions(fs, "/j")
		for i := int64(0); i < 3; i++ {
			writeRecords(t, opts, 3*i, 3)
		}
		if err := fs.Remove(seg(2)); err != nil {
			t.Fatal(err)
		}
		_, err := Open(opts)
		wantCorruption(t, err, seg(3), 0)
	})
	t.Run("unused newest segment with a garbage header", func(t *testing.T) {
		fs := vfs.NewMem()
		opts := testOptions(fs, "/j")
		writeRecords(t, opts, 0, 3)
		writeFile(t, fs, seg(2), bytes.Repeat([]byte{0x5c}, 8192))
		j := mustOpen(t, opts)
		defer j.Close()
		if got, err := replayAll(t, j, nil); err != nil || len(got) != 3 {
			t.Fatalf("replay: %d, %v", len(got), err)
		}
		if m := j.Mark(); m[0].File != 2 {
			t.Fatalf("new segment is %d, want 2 (the unused one replaced)", m[0].File)
		}
	})
	t.Run("newest segment with a bad header but records", func(t *testing.T) {
		fs := vfs.NewMem()
		opts := testOptions(fs, "/j")
		writeRecords(t, opts, 0, 3)
		mutateFile(t, fs, seg(1), func(b []byte) []byte { b[9] ^= 1; return b })
		_, err := Open(opts)
		wantCorruption(t, err, seg(1), 0)
	})
	t.Run("checkpoint inside a record", func(t *testing.T) {
		fs := vfs.NewMem()
		opts := testOptions(fs, "/j")
		pos := writeRecords(t, opts, 0, 3)
		j := mustOpen(t, opts)
		defer j.Close()
		_, err := replayAll(t, j, Checkpoint{{Dir: 0, File: 1, Offset: pos[1].Offset + 8}})
		wantCorruption(t, err, seg(1), pos[1].Offset+8)
		got, err := replayAll(t, j, Checkpoint{pos[1]})
		if err != nil || len(got) != 2 {
			t.Fatalf("from %v: %d records, %v", pos[1], len(got), err)
		}
	})
}

// TestClassifyUnorderedUnsyncedWrites: O_DIRECT writes that were never
// synced may reach the disk in any order, so a missing group followed by a
// later one is a torn tail, unless the later group's durability marker says
// the missing one had been synced.
func TestClassifyUnorderedUnsyncedWrites(t *testing.T) {
	const align = 4096
	build := func(marker int64) []byte {
		b := headerBlock(1, align)
		group := func(entry int64, marker int64) []byte {
			g := record.Append(nil, record.Header{FileNum: 1, Kind: record.KindEntry, Ledger: 1, Entry: entry}, payloadFor(1, entry, 600))
			pad := int(vfs.AlignUp(int64(len(g))+record.HeaderSize, align)) - len(g)
			return record.Append(g, record.Header{FileNum: 1, Kind: record.KindPadding, Ledger: marker}, make([]byte, pad-record.HeaderSize))
		}
		b = append(b, group(0, align)...)     // [4096, 8192): synced
		b = append(b, make([]byte, align)...) // [8192, 12288): group 1 never reached the disk
		b = append(b, group(2, marker)...)    // [12288, 16384)
		return b
	}
	for _, c := range []struct {
		marker  int64
		corrupt bool
	}{
		{marker: 2 * align, corrupt: false}, // written when only group 0 was durable
		{marker: 3 * align, corrupt: true},  // written after group 1 was synced
	} {
		t.Run(fmt.Sprintf("marker=%d", c.marker), func(t *testing.T) {
			fs := vfs.NewMem()
			if err := fs.MkdirAll("/j", 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, fs, seg(1), build(c.marker))
			j, err := Open(testOptions(fs, "/j"))
			if c.corrupt {
				wantCorruption(t, err, seg(1), 2*align)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			got, err := replayAll(t, j, nil)
			if err != nil || len(got) != 1 || got[0].entry != 0 {
				t.Fatalf("replay: %+v, %v", got, err)
			}
		})
	}
}

// withoutZeroBlocks is the length of b without its trailing all-zero 4 KiB
// blocks: the space zero-filled ahead of the writer, which recovery cuts off
// with anything found after it.
func withoutZeroBlocks(b []byte) int64 {
	n := len(b) &^ 4095
	if n != len(b) {
		return int64(len(b))
	}
	for n > 0 && !slices.ContainsFunc(b[n-4096:n], func(c byte) bool { return c != 0 }) {
		n -= 4096
	}
	return int64(n)
}
