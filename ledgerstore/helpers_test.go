package ledgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/bufs"
	"github.com/magnetar/magnetar/internal/vfs"
)

func longTests() bool { return os.Getenv("MAGNETAR_LONG") != "" }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// testOptions are small, deterministic options: no background loops, no
// preallocation, unthrottled compaction.
func testOptions(fs vfs.FS, dirs ...string) Options {
	return Options{
		Dirs:                dirs,
		FS:                  fs,
		WriteCacheMaxBytes:  4 * minSegmentBytes,
		WriteCacheSegments:  4,
		ReadCacheMaxBytes:   1 << 20,
		ReadAheadBatchSize:  64,
		ReadAheadBatchBytes: 256 << 10,
		EntryLogSizeLimit:   256 << 10,
		PreallocateBytes:    -1,
		GCInterval:          -1,
		DiskCheckInterval:   -1,
		CompactionRateBytes: -1,
		FlushRetryInterval:  time.Hour,
		Logger:              discard,
	}
}

// payload is the deterministic content of (l, e): size bytes derived from
// both, so that a misplaced entry never passes for the right one.
func payload(l base.LedgerID, e base.EntryID, size int) []byte {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%d", l, e)
	seed := h.Sum64()
	b := make([]byte, size)
	for i := range b {
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		b[i] = byte(seed)
	}
	return b
}

// sizeFor gives entries a spread of sizes.
func sizeFor(l base.LedgerID, e base.EntryID) int {
	return 1 + int((uint64(l)*7919+uint64(e)*104729)%2000)
}

func mustOpen(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func add(t testing.TB, s *Store, l base.LedgerID, e base.EntryID, size int) {
	t.Helper()
	b := bufs.Wrap(payload(l, e, size))
	if err := s.AddEntry(context.Background(), l, e, b); err != nil {
		t.Fatalf("AddEntry(%d, %d): %v", l, e, err)
	}
	b.Release()
}

func flush(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Flush(context.Background()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func checkEntry(t testing.TB, s *Store, l base.LedgerID, e base.EntryID, size int) {
	t.Helper()
	b, err := s.ReadEntry(context.Background(), l, e)
	if err != nil {
		t.Fatalf("ReadEntry(%d, %d): %v", l, e, err)
	}
	defer b.Release()
	if want := payload(l, e, size); !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("ReadEntry(%d, %d): %d bytes, want %d (content differs: %v)", l, e, b.Len(), len(want), b.Len() == len(want))
	}
}

func checkMissing(t testing.TB, s *Store, l base.LedgerID, e base.EntryID, class error) {
	t.Helper()
	b, err := s.ReadEntry(context.Background(), l, e)
	if err == nil {
		b.Release()
		t.Fatalf("ReadEntry(%d, %d): found, want %v", l, e, class)
	}
	if !errors.Is(err, class) {
		t.Fatalf("ReadEntry(%d, %d): %v, want %v", l, e, err, class)
	}
}
