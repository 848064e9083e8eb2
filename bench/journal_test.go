package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRunJournal(t *testing.T) {
	res, err := RunJournal(context.Background(), JournalOptions{
		Dir: t.TempDir(), EntrySize: 512, InFlight: 8, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond,
		Limits: LimitsOptions{Disk: DiskOptions{Bytes: 8 << 20}, Fsync: FsyncOptions{Count: 20}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Adds <= 0 || res.AddsPerSec <= 0 || res.Syncs == 0 || res.Latency.Count != res.Adds {
		t.Fatalf("result %+v", res)
	}
	// An add completes only after an fdatasync: it cannot beat the
	// smallest add latency recorded being positive, and the latency
	// distribution must be ordered.
	if res.Latency.P50 <= 0 || res.Latency.P99 < res.Latency.P50 || res.Latency.Max < res.Latency.P99 {
		t.Fatalf("latency %+v", res.Latency)
	}
	if res.Disk.BytesPerSec <= 0 || res.Fsync.Latency.Count == 0 {
		t.Fatalf("device limits missing: %+v %+v", res.Disk, res.Fsync)
	}
	var b strings.Builder
	res.WriteSummary(&b)
	for _, want := range []string{"adds/s", "add latency", "device", "ratio"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}
