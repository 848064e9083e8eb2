package itest

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The fixtures below are written from BookKeeper's protocol definition
// (BookieProtocol.java and the PreV3 codec for v2; BookkeeperProtocol.proto
// for v3) and from what its ReadEntryProcessor and WriteEntryProcessor
// answer, not from our codec: the bytes a Java client would send, and the
// bytes a Java bookie would send back.
//
// v2 frame: 4-byte length, then the packet header
// version<<24 | opcode<<16 | flags (ADD 1, READ 2; flags DO_FENCING 1,
// RECOVERY_ADD 2).
//
//	ADD request:   header | master key (20) | entry
//	ADD response:  header | rc (4) | ledger (8) | entry (8)
//	READ request:  header | ledger (8) | entry (8) [| master key (20) when fencing]
//	READ response: header | rc (4) | ledger (8) | entry (8) [| entry bytes when rc is EOK]
//
// Responses carry flags 0 and echo the request's ledger and entry ids, so
// a read of entry -1 (the last entry) is answered with entry id -1.
// Return codes: EOK 0, ENOLEDGER 1, ENOENTRY 2, EUA 102 (0x66), EFENCED 104
// (0x68).

// hexBytes decodes hex with spaces and "|" allowed as separators.
func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	s = strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad fixture %q: %v", s, err)
	}
	return b
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v int64) []byte  { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func frameOf(parts ...[]byte) []byte {
	body := bytes.Join(parts, nil)
	return append(be32(uint32(len(body))), body...)
}

// fixtureEntry is an entry as BookKeeper's DigestManager builds it with
// CRC32C: ledger | entry | LAC | length | crc32c(those 32 bytes and the
// payload) | payload.
func fixtureEntry(l, e, lac, length int64, data string) []byte {
	b := bytes.Join([][]byte{be64(l), be64(e), be64(lac), be64(length)}, nil)
	crc := crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), b)
	crc = crc32.Update(crc, crc32.MakeTable(crc32.Castagnoli), []byte(data))
	return append(append(b, be32(crc)...), data...)
}

// TestWireFixtures sends hand-built BookKeeper requests to a real bookie
// process and compares its answers byte for byte with what the protocol
// defines: v2 adds and reads with their return codes, entry -1, fencing
// (with the right key, a wrong key, no key), recovery adds, and a v3
// fencing read without a master key.
func TestWireFixtures(t *testing.T) {
	c := newCluster(t, 1, testSettings)
	b := c.bookies[0]

	sum := sha1.Sum([]byte("ledger" + string(password))) // the master key: SHA-1("ledger" ‖ password)
	key := sum[:]
	wrong := bytes.Repeat([]byte{0xee}, 20)
	const (
		l11 = 0x11
		l22 = 0x22
		l99 = 0x99
	)
	e0 := fixtureEntry(l11, 0, -1, 5, "hello")
	e1 := fixtureEntry(l11, 1, 0, 11, " world")
	e2 := fixtureEntry(l11, 2, 1, 12, "!")
	v2 := func(op, flags uint32) []byte { return be32(2<<24 | op<<16 | flags) }
	const add, read = 1, 2
	addResp := func(rc uint32, l, e int64) []byte { return frameOf(v2(add, 0), be32(rc), be64(l), be64(e)) }
	readResp := func(rc uint32, l, e int64, entry []byte) []byte {
		return frameOf(v2(read, 0), be32(rc), be64(l), be64(e), entry)
	}

	steps := []struct {
		name      string
		req, resp []byte
	}{
		{"add 0x11:0", frameOf(v2(add, 0), key, e0), hexBytes(t, "00000018 02010000 00000000 0000000000000011 0000000000000000")},
		{"add 0x11:1", frameOf(v2(add, 0), key, e1), addResp(0, l11, 1)},
		{"read 0x11:-1 echoes -1 and returns entry 1",
			hexBytes(t, "00000014 02020000 0000000000000011 ffffffffffffffff"),
			append(hexBytes(t, "00000042 02020000 00000000 0000000000000011 ffffffffffffffff"), e1...)},
		{"read 0x11:0", frameOf(v2(read, 0), be64(l11), be64(0)), readResp(0, l11, 0, e0)},
		{"read 0x11:7 ENOENTRY", frameOf(v2(read, 0), be64(l11), be64(7)),
			hexBytes(t, "00000018 02020000 00000002 0000000000000011 0000000000000007")},
		{"read 0x99:0 ENOLEDGER", frameOf(v2(read, 0), be64(l99), be64(0)), readResp(1, l99, 0, nil)},
		{"read 0x99:-1 ENOLEDGER", frameOf(v2(read, 0), be64(l99), be64(-1)), readResp(1, l99, -1, nil)},
		{"add 0x11:2 with a wrong key EUA", frameOf(v2(add, 0), wrong, e2),
			hexBytes(t, "00000018 02010000 00000066 0000000000000011 0000000000000002")},
		{"fencing read 0x11:-1 with a wrong key EUA", frameOf(v2(read, 1), be64(l11), be64(-1), wrong),
			readResp(102, l11, -1, nil)},
		{"fencing read 0x11:-1", hexBytes(t, "00000028 02020001 0000000000000011 ffffffffffffffff "+hex.EncodeToString(key)),
			readResp(0, l11, -1, e1)},
		{"add 0x11:2 after the fence EFENCED", frameOf(v2(add, 0), key, e2),
			hexBytes(t, "00000018 02010000 00000068 0000000000000011 0000000000000002")},
		{"add 0x11:2 with a wrong key after the fence EUA", frameOf(v2(add, 0), wrong, e2), addResp(102, l11, 2)},
		{"recovery add 0x11:2 after the fence", frameOf(v2(add, 2), key, e2), addResp(0, l11, 2)},
		{"read 0x11:2", frameOf(v2(read, 0), be64(l11), be64(2)), readResp(0, l11, 2, e2)},
		{"fencing read of a new ledger 0x22:-1 ENOENTRY", frameOf(v2(read, 1), be64(l22), be64(-1), key),
			readResp(2, l22, -1, nil)},
		{"add 0x22:0 to the ledger fenced at creation EFENCED", frameOf(v2(add, 0), key, fixtureEntry(l22, 0, -1, 1, "x")),
			addResp(104, l22, 0)},
	}
	conn := dialBookie(t, b)
	for _, s := range steps {
		if err := conn.send(s.req); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got, err := conn.frame()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !bytes.Equal(got, s.resp) {
			t.Errorf("%s:\n got  %x\n want %x", s.name, got, s.resp)
		}
	}

	// Frames BookKeeper's decoder cannot take close the connection
	// without an answer: a fencing read without its master key, an
	// unknown v2 opcode. Other connections go on.
	for _, bad := range []struct {
		name  string
		frame []byte
	}{
		{"fencing read without a master key", frameOf(v2(read, 1), be64(l11), be64(-1))},
		{"unknown v2 opcode 9", frameOf(v2(9, 0), be64(l11), be64(0))},
	} {
		bc := dialBookie(t, b)
		if err := bc.send(bad.frame); err != nil {
			t.Fatalf("%s: %v", bad.name, err)
		}
		_ = bc.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := bc.frame()
		var ne net.Error
		switch {
		case err == nil:
			t.Errorf("%s: answered %x; want the connection closed", bad.name, got)
		case errors.As(err, &ne) && ne.Timeout():
			t.Errorf("%s: no answer, but the connection stayed open", bad.name)
		case !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET):
			t.Errorf("%s: %v; want the connection closed", bad.name, err)
		}
	}
	if err := conn.send(frameOf(v2(read, 0), be64(l11), be64(1))); err != nil {
		t.Fatal(err)
	}
	if got, err := conn.frame(); err != nil || !bytes.Equal(got, readResp(0, l11, 1, e1)) {
		t.Fatalf("the first connection after the bad ones: %x, %v", got, err)
	}

	// v3: a fencing read without a master key is answered EUA (502), as
	// ReadEntryProcessorV3 does. Request: BKPacketHeader{version 3,
	// READ_ENTRY, txn 7} (field 1), ReadRequest (field 100) {ledger 0x33,
	// entry -1, flag FENCE_LEDGER (field 100)}. Response: header, status
	// EUA (field 2), ReadResponse (field 100) {status EUA, ledger, entry}.
	v3 := dialBookie(t, b)
	req := hexBytes(t, `0a 06 08 03 10 01 18 07
		a2 06 10 | 08 33 | 10 ff ff ff ff ff ff ff ff ff 01 | a0 06 01`)
	if err := v3.send(frameOf(req)); err != nil {
		t.Fatal(err)
	}
	want := frameOf(hexBytes(t, `0a 06 08 03 10 01 18 07 | 10 f6 03
		a2 06 10 | 08 f6 03 | 10 33 | 18 ff ff ff ff ff ff ff ff ff 01`))
	if got, err := v3.frame(); err != nil || !bytes.Equal(got, want) {
		t.Errorf("v3 fencing read without a master key:\n got  %x (%v)\n want %x", got, err, want)
	}
}
