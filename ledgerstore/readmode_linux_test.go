//go:build linux

package ledgerstore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/testutil"
	"github.com/magnetar/magnetar/internal/vfs"
)

// TestReadModes reads cold entries back through every read path (single
// entries, batches, read-ahead, backwards) on the OS filesystem, with
// direct reads (the default) and through the page cache, and checks what
// each promises about the page cache: direct reads leave the entry logs
// out of it.
func TestReadModes(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "buffered"}[buffered], func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(vfs.Default, dir)
			opts.BufferedReads = buffered
			s := mustOpen(t, opts)
			const n = 300
			for e := base.EntryID(0); e < n; e++ {
				for l := base.LedgerID(1); l <= 3; l++ {
					add(t, s, l, e, sizeFor(l, e))
				}
				if e%100 == 99 {
					flush(t, s)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			logs := logFiles(t, dir)
			dropFromPageCache(t, logs)

			s = mustOpen(t, opts)
			defer s.Close()
			ctx := context.Background()
			for e := base.EntryID(0); e < n; e++ { // sequential: read-ahead fills the read cache
				checkEntry(t, s, 1, e, sizeFor(1, e))
			}
			for e := base.EntryID(0); e < n; {
				got, err := s.ReadRange(ctx, 2, e, 17, 1<<20)
				if err != nil || len(got) == 0 {
					t.Fatalf("ReadRange(2, %d): %d entries, %v", e, len(got), err)
				}
				for _, b := range got {
					if want := payload(2, e, sizeFor(2, e)); string(b.Bytes()) != string(want) {
						t.Fatalf("ReadRange(2): entry %d has the wrong bytes", e)
					}
					b.Release()
					e++
				}
			}
			for e := base.EntryID(n - 1); e >= 0; e-- { // backwards: no read-ahead
				checkEntry(t, s, 3, e, sizeFor(3, e))
			}
			if st := s.Stats(); st.ReadsLog == 0 || st.ReadAheadEntries == 0 {
				t.Fatalf("the reads did not go to the logs (%d) and read-ahead (%d)", st.ReadsLog, st.ReadAheadEntries)
			}
			share := testutil.PageCacheShare(t, logs)
			if !buffered && share != 0 {
				t.Errorf("direct reads left %.0f%% of the entry logs in the page cache", share*100)
			}
			if buffered && share == 0 {
				t.Errorf("buffered reads left nothing in the page cache: were they direct?")
			}
		})
	}
}

func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs []string
	for _, n := range names {
		if strings.HasSuffix(n.Name(), entryLogSuffix) {
			logs = append(logs, filepath.Join(dir, n.Name()))
		}
	}
	if len(logs) == 0 {
		t.Fatal("no entry logs")
	}
	return logs
}

func dropFromPageCache(t *testing.T, files []string) {
	t.Helper()
	testutil.DropPageCache(t, files)
	if share := testutil.PageCacheShare(t, files); share != 0 {
		t.Fatalf("%.0f%% of the entry logs still cached after FADV_DONTNEED", share*100)
	}
}
