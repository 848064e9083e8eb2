package ledgerstore

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/vfs"
)

// TestDirectWrites writes entry logs through O_DIRECT handles (the MemFS
// checks every write's alignment) with records that straddle the write
// buffer's end and payloads larger than the buffer, in several flushes,
// then reads everything back, before and after a reopen. Each flush ends
// on an aligned offset (padded); the same run through the page cache packs
// the records.
func TestDirectWrites(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(map[bool]string{true: "direct", false: "buffered"}[direct], func(t *testing.T) {
			fs := vfs.NewMem()
			opts := testOptions(fs, "/d")
			opts.DisableDirectIO = !direct
			opts.WriteCacheMaxBytes = 4 * 8 << 20
			opts.EntryLogSizeLimit = 64 << 20
			s := mustOpen(t, opts)
			size := func(l base.LedgerID, e base.EntryID) int {
				if e%97 == 50 {
					return writeBufferBytes + int(e)*13 // larger than the buffer
				}
				return 1 + int((uint64(l)*7919+uint64(e)*104729)%9000)
			}
			const ledgers, entries = 3, 300
			for e := base.EntryID(0); e < entries; e++ {
				for l := base.LedgerID(1); l <= ledgers; l++ {
					add(t, s, l, e, size(l, e))
				}
				if e%100 == 99 {
					flush(t, s)
					s.state.RLock()
					for _, lf := range s.state.logs {
						if aligned := lf.size%vfs.DefaultAlignment == 0; aligned != direct && lf.size > 64 {
							t.Errorf("log %d: size %d after a flush (direct %v)", lf.id, lf.size, direct)
						}
					}
					s.state.RUnlock()
				}
			}
			check := func(s *Store) {
				t.Helper()
				for e := base.EntryID(0); e < entries; e++ {
					for l := base.LedgerID(1); l <= ledgers; l++ {
						checkEntry(t, s, l, e, size(l, e))
					}
				}
			}
			check(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			fs.Crash()
			s = mustOpen(t, opts)
			defer s.Close()
			check(s)
		})
	}
}

// recordingReader serves ReadAt from data and records each call's length.
type recordingReader struct {
	data  []byte
	calls []int
}

func (r *recordingReader) ReadAt(b []byte, off int64) (int, error) {
	r.calls = append(r.calls, len(b))
	if off >= int64(len(r.data)) {
		return 0, io.EOF
	}
	n := copy(b, r.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// TestReadLogPieces: reads of entry logs reach the file in pieces of at
// most the piece size, in order, and stop at the end of the file.
func TestReadLogPieces(t *testing.T) {
	data := payload(1, 1, 3*readIOBytes+123)
	r := &recordingReader{data: data}
	b := make([]byte, len(data)-7)
	n, err := readLog(r, b, 7, readIOBytes)
	if err != nil || n != len(b) || !bytes.Equal(b, data[7:]) {
		t.Fatalf("readLog: %d bytes, %v", n, err)
	}
	for _, c := range r.calls {
		if c > readIOBytes {
			t.Fatalf("a read of %d bytes (calls %v)", c, r.calls)
		}
	}
	if len(r.calls) != 4 {
		t.Fatalf("%d calls, want 4: %v", len(r.calls), r.calls)
	}
	b = make([]byte, 2*readIOBytes)
	n, err = readLog(r, b, int64(len(data)-100), readIOBytes)
	if n != 100 || !errors.Is(err, io.EOF) {
		t.Fatalf("read past the end: %d bytes, %v", n, err)
	}
}
