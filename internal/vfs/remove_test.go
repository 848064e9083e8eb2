package vfs

import (
	"strings"
	"testing"
	"time"
)

// TestRemoveGradually: the file is shrunk from its end in steps of at most
// the step, then unlinked; a missing file is reported as not existing.
func TestRemoveGradually(t *testing.T) {
	fs := NewMem()
	must(t, fs.MkdirAll("/d", 0o755))
	writeFile(t, fs, "/d/big", strings.Repeat("x", 10<<10))
	var ops []string
	fs.SetOpHook(func(_ int64, op Op, path string) {
		if op == OpTruncate || op == OpRemove {
			ops = append(ops, op.String()+" "+path)
		}
	})
	must(t, RemoveGradually(fs, "/d/big", 4<<10, time.Microsecond))
	fs.SetOpHook(nil)
	// 10 KiB in 4 KiB steps: 6, 2, 0 KiB, then the unlink.
	want := []string{"truncate /d/big", "truncate /d/big", "truncate /d/big", "remove /d/big"}
	if strings.Join(ops, ",") != strings.Join(want, ",") {
		t.Fatalf("operations %q, want %q", ops, want)
	}
	if _, err := fs.Stat("/d/big"); !IsNotExist(err) {
		t.Fatalf("file still there: %v", err)
	}
	if err := RemoveGradually(fs, "/d/big", 4<<10, time.Microsecond); !IsNotExist(err) {
		t.Fatalf("removing a missing file: %v, want a not-exist error", err)
	}
	// Without a step it is a plain remove.
	writeFile(t, fs, "/d/small", "abc")
	must(t, RemoveGradually(fs, "/d/small", 0, 0))
	if _, err := fs.Stat("/d/small"); !IsNotExist(err) {
		t.Fatalf("file still there: %v", err)
	}
}
