package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/journal"
)

func TestJournalDump(t *testing.T) {
	dir := t.TempDir()
	j, err := journal.Open(journal.Options{Dirs: []string{dir}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for e := int64(0); e < 3; e++ {
		if _, err := j.AppendSync(record.KindEntry, 42, e, []byte("payload")); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := invoke(t, nil, "journal", "dump", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "42") || strings.Count(out, "\n") < 3 {
		t.Fatalf("dump does not show the records:\n%s", out)
	}
	code, _, errOut = invoke(t, nil, "journal", "dump")
	if code != exitUsage {
		t.Fatalf("dump without DIR: exit %d (%s), want %d", code, errOut, exitUsage)
	}
}

func TestBenchJournal(t *testing.T) {
	code, out, errOut := invoke(t, nil, "bench", "journal", "--dir", t.TempDir(), "--duration", "200ms", "--warmup", "20ms", "--inflight", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"adds/s", "add latency p50", "device", "ratio"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, _, _ := invoke(t, nil, "bench", "journal", "--size", "0"); code != exitUsage {
		t.Errorf("--size 0: exit %d, want %d", code, exitUsage)
	}
}
