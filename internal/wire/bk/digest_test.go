package bk

import (
	"bytes"
	"errors"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

// The digest values below were computed with the JDK (17) the way
// BookKeeper does: CRC32C through java.util.zip.CRC32C's updateBytes with
// Java9IntHash's resume semantics (~update(~previous, bytes)), once over
// the header and once over the payload, written with writeInt; CRC32 with
// java.util.zip.CRC32, written with writeLong; HMAC with javax.crypto
// HmacSHA1 keyed by SHA-1("mac" ‖ password); master keys with SHA-1.

// The entry used by the fixtures: ledger 5, entry 3, LAC 2, length 10,
// payload "0123456789".
const entryHeader5x3Hex = `
	00 00 00 00 00 00 00 05 // ledger id 5
	00 00 00 00 00 00 00 03 // entry id 3
	00 00 00 00 00 00 00 02 // last add confirmed 2
	00 00 00 00 00 00 00 0a // ledger length 10`

var entryHeader5x3 = EntryHeader{LedgerID: 5, EntryID: 3, LAC: 2, Length: 10}

func TestDigestFixtures(t *testing.T) {
	payload := []byte("0123456789")
	cases := []struct {
		typ    DigestType
		pw     string
		digest string
	}{
		{DigestCRC32C, "", `13 76 53 fa // CRC32C of header ‖ payload, as a big-endian int`},
		{DigestCRC32, "", `00 00 00 00 c3 ea b0 97 // CRC32 as a big-endian long: 4 zero bytes, CRC`},
		{DigestHMAC, "secret", `ad 9a 2b 19 d9 d1 b7 be e3 9b cb 10 bb 4e ca 99 d9 9f 07 f2 // HMAC-SHA1`},
		{DigestDummy, "", ``},
	}
	for _, c := range cases {
		t.Run(c.typ.String(), func(t *testing.T) {
			d, err := NewDigester(c.typ, []byte(c.pw))
			if err != nil {
				t.Fatal(err)
			}
			want := hx(t, entryHeader5x3Hex+"\n"+c.digest+"\n\"0123456789\"")
			if d.Size() != len(hx(t, c.digest)) || d.HeaderLen() != 32+d.Size() {
				t.Fatalf("Size %d HeaderLen %d", d.Size(), d.HeaderLen())
			}
			if got := d.AppendEntry(nil, entryHeader5x3, payload); !bytes.Equal(got, want) {
				t.Fatalf("AppendEntry:\n got % x\nwant % x", got, want)
			}
			// Vectored: the payload in pieces, never copied.
			head := d.AppendEntryHeader([]byte("xx"), entryHeader5x3, payload[:3], payload[3:7], nil, payload[7:])
			if got := append(head[2:], payload...); !bytes.Equal(got, want) {
				t.Fatalf("AppendEntryHeader (vectored):\n got % x\nwant % x", got, want)
			}
			h, p, err := d.ParseEntry(want, 5, 3)
			if err != nil || h != entryHeader5x3 || !bytes.Equal(p, payload) {
				t.Fatalf("ParseEntry = %+v %q %v", h, p, err)
			}
			// A read of the last entry (-1) skips the entry id check only.
			if _, _, err := d.ParseEntry(want, 5, LastAddConfirmed); err != nil {
				t.Fatalf("ParseEntry(-1): %v", err)
			}
			if _, _, err := d.ParseEntry(want, 5, 4); !errors.Is(err, ErrWrongEntry) || !errors.Is(err, base.ErrCorruption) {
				t.Fatalf("wrong entry id: %v", err)
			}
			if _, _, err := d.ParseEntry(want, 6, 3); !errors.Is(err, ErrWrongEntry) {
				t.Fatalf("wrong ledger id: %v", err)
			}
			if c.typ == DigestDummy {
				return
			}
			// Every single-bit flip in header, digest or payload is caught.
			for i := range want {
				bad := bytes.Clone(want)
				bad[i] ^= 0x10
				if _, _, err := d.ParseEntry(bad, 5, 3); !errors.Is(err, ErrDigestMismatch) {
					t.Fatalf("flip at byte %d: err %v", i, err)
				}
			}
			if _, _, err := d.ParseEntry(want[:d.HeaderLen()-1], 5, 3); !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("short entry: %v", err)
			}
		})
	}
}

func TestCRC32CKnownValues(t *testing.T) {
	d, _ := NewDigester(DigestCRC32C, nil)
	cases := []struct {
		in   []byte
		want string
	}{
		{[]byte("123456789"), "e3 06 92 83"},            // the CRC-32C check value
		{make([]byte, 32), "8a 91 36 aa"},               // RFC 3720 B.4: 32 zero bytes
		{bytes.Repeat([]byte{0xff}, 32), "62 a8 ab 43"}, // RFC 3720 B.4: 32 0xff bytes
	}
	for _, c := range cases {
		if got := d.AppendDigest(nil, c.in); !bytes.Equal(got, hx(t, c.want)) {
			t.Errorf("CRC32C(% x) = % x, want %s", c.in[:4], got, c.want)
		}
		// Split anywhere, same value.
		for cut := range c.in {
			if got := d.AppendDigest(nil, c.in[:cut], c.in[cut:]); !bytes.Equal(got, hx(t, c.want)) {
				t.Fatalf("split at %d: % x", cut, got)
			}
		}
	}
	ieee, _ := NewDigester(DigestCRC32, nil)
	if got := ieee.AppendDigest(nil, []byte("123456789")); !bytes.Equal(got, hx(t, "00 00 00 00 cb f4 39 26")) {
		t.Errorf("CRC32(123456789) = % x", got)
	}
}

func TestEmptyPayloadEntry(t *testing.T) {
	d, _ := NewDigester(DigestCRC32C, nil)
	h := EntryHeader{LedgerID: 7, EntryID: 0, LAC: -1, Length: 0}
	want := hx(t, `
		00 00 00 00 00 00 00 07 // ledger 7
		00 00 00 00 00 00 00 00 // entry 0
		ff ff ff ff ff ff ff ff // LAC -1: nothing confirmed yet
		00 00 00 00 00 00 00 00 // length 0
		29 0f 6b ce             // CRC32C (JDK)`)
	if got := d.AppendEntry(nil, h, nil); !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
	got, p, err := d.ParseEntry(want, 7, 0)
	if err != nil || got != h || len(p) != 0 {
		t.Fatalf("ParseEntry = %+v %q %v", got, p, err)
	}
}

func TestLACBlob(t *testing.T) {
	d, _ := NewDigester(DigestCRC32C, nil)
	want := hx(t, `
		00 00 00 00 00 00 00 05 // ledger id 5
		00 00 00 00 00 00 00 02 // LAC 2
		89 ba fe 66             // CRC32C of the 16 bytes (JDK)`)
	if got := d.AppendLAC(nil, 5, 2); !bytes.Equal(got, want) {
		t.Fatalf("AppendLAC:\n got % x\nwant % x", got, want)
	}
	lac, err := d.ParseLAC(want, 5)
	if err != nil || lac != 2 {
		t.Fatalf("ParseLAC = %d, %v", lac, err)
	}
	if _, err := d.ParseLAC(want, 6); !errors.Is(err, ErrWrongEntry) {
		t.Fatalf("wrong ledger: %v", err)
	}
	bad := bytes.Clone(want)
	bad[15] ^= 1
	if _, err := d.ParseLAC(bad, 5); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("bad digest: %v", err)
	}
	if _, err := d.ParseLAC(want[:19], 5); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("short blob: %v", err)
	}
	for _, typ := range []DigestType{DigestCRC32, DigestHMAC, DigestDummy} {
		d, _ := NewDigester(typ, []byte("pw"))
		blob := d.AppendLAC(nil, 9, -1)
		if len(blob) != LACHeaderLen+typ.Size() {
			t.Fatalf("%v blob of %d bytes", typ, len(blob))
		}
		if lac, err := d.ParseLAC(blob, 9); err != nil || lac != -1 {
			t.Fatalf("%v ParseLAC = %d, %v", typ, lac, err)
		}
	}
}

func TestMasterKey(t *testing.T) {
	if got := GenerateMasterKey([]byte("secret")); !bytes.Equal(got[:], hx(t,
		"e7 93 cb c3 79 10 76 48 53 71 83 60 5c d3 61 d3 bb 78 9a 39")) {
		t.Errorf("master key of \"secret\" = % x", got)
	}
	if got := GenerateMasterKey(nil); !bytes.Equal(got[:], hx(t,
		"85 0b f1 07 1c 5e 3d 8c 24 23 56 76 f8 81 6a e0 cb e2 f1 4f")) {
		t.Errorf("master key of the empty password = % x", got)
	}
}

func TestDigesterTypes(t *testing.T) {
	if _, err := NewDigester(0, nil); err == nil {
		t.Fatal("NewDigester(0) succeeded")
	}
	if DigestType(9).Size() != 0 || DigestType(9).String() != "DigestType(9)" {
		t.Fatal("unknown digest type")
	}
	// An HMAC digester keyed by another password rejects the entry.
	a, _ := NewDigester(DigestHMAC, []byte("a"))
	b, _ := NewDigester(DigestHMAC, []byte("b"))
	e := a.AppendEntry(nil, entryHeader5x3, []byte("x"))
	if _, _, err := b.ParseEntry(e, 5, 3); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("HMAC with the wrong password: %v", err)
	}
	// ParseEntryHeader reads the piggybacked LAC without checking.
	h, err := ParseEntryHeader(e)
	if err != nil || h != entryHeader5x3 {
		t.Fatalf("ParseEntryHeader = %+v, %v", h, err)
	}
	if _, err := ParseEntryHeader(e[:31]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short header: %v", err)
	}
}

func TestDigesterConcurrentHMAC(t *testing.T) {
	d, _ := NewDigester(DigestHMAC, []byte("secret"))
	want := d.AppendEntry(nil, entryHeader5x3, []byte("0123456789"))
	done := make(chan error, 4)
	for range 4 {
		go func() {
			for range 200 {
				if got := d.AppendEntry(nil, entryHeader5x3, []byte("0123456789")); !bytes.Equal(got, want) {
					done <- errors.New("concurrent HMAC differs")
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
