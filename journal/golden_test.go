package journal

import (
	"encoding/hex"
	"testing"

	"github.com/magnetar/magnetar/internal/vfs"
)

// TestFormatGolden pins the journal's own bytes: the first bytes of a
// segment's header block and a checkpoint file. A change here is a format
// change.
func TestFormatGolden(t *testing.T) {
	hb := headerBlock(0x0102, 4096)
	if got := hex.EncodeToString(hb[:16]); got != "4d474a4f55524e4c0100000002010000" {
		t.Fatalf("file header: %s", got)
	}
	// The padding record after the 64-byte file header: length 4000, file
	// number, kind 2, flags 0, ledger 0 (no durability claim), entry 4096.
	if got := hex.EncodeToString(hb[64+4 : 64+32]); got != "a00f0000"+"02010000"+"02"+"00"+"0000"+"0000000000000000"+"0010000000000000" {
		t.Fatalf("header padding record: %s", got)
	}

	fs := vfs.NewMem()
	if err := SaveCheckpoint(fs, "/c", Checkpoint{{Dir: 0, File: 7, Offset: 8192}}); err != nil {
		t.Fatal(err)
	}
	b := readFile(t, fs, "/c")
	want := "4d474a434b505431" + "01000000" + hex.EncodeToString(b[12:16]) + "00000000" + "07000000" + "0020000000000000"
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("checkpoint file:\n got %s\nwant %s", got, want)
	}
}
