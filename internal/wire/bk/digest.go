package bk

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"sync"

	"github.com/magnetar/magnetar/internal/base"
)

// DigestType names how entries are checksummed. The values are those of
// LedgerMetadataFormat.DigestType in BookKeeper's ledger metadata; part of
// the metadata format.
type DigestType int32

// Digest types.
const (
	DigestCRC32  DigestType = 1 // CRC32 (IEEE), 8-byte field: 4 zero bytes, then the CRC
	DigestHMAC   DigestType = 2 // HMAC-SHA1 keyed by SHA-1("mac" ‖ password), 20 bytes
	DigestCRC32C DigestType = 3 // CRC32C (Castagnoli), 4 bytes; Pulsar's default
	DigestDummy  DigestType = 4 // no digest
)

func (t DigestType) String() string {
	switch t {
	case DigestCRC32:
		return "CRC32"
	case DigestHMAC:
		return "HMAC"
	case DigestCRC32C:
		return "CRC32C"
	case DigestDummy:
		return "DUMMY"
	}
	return fmt.Sprintf("DigestType(%d)", int32(t))
}

// Size is the size of the digest field, 0 for an unknown type.
func (t DigestType) Size() int {
	switch t {
	case DigestCRC32:
		return 8
	case DigestHMAC:
		return sha1.Size
	case DigestCRC32C:
		return 4
	}
	return 0
}

// Entry format constants; part of the wire (and storage) format.
const (
	// EntryHeaderLen is the header the client puts in front of every entry
	// (DigestManager.METADATA_LENGTH): ledger id, entry id, last add
	// confirmed and ledger length, each a big-endian int64.
	EntryHeaderLen = 32
	// LACHeaderLen is the header of an explicit-LAC blob
	// (LAC_METADATA_LENGTH): ledger id and LAC.
	LACHeaderLen = 16
)

// Errors of entry verification; both wrap base.ErrCorruption.
var (
	ErrDigestMismatch = fmt.Errorf("bk: digest mismatch: %w", base.ErrCorruption)
	ErrWrongEntry     = fmt.Errorf("bk: entry names another ledger or entry: %w", base.ErrCorruption)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EntryHeader is the 32-byte header of an entry.
type EntryHeader struct {
	LedgerID base.LedgerID
	EntryID  base.EntryID
	// LAC is the writer's last add confirmed when it sent the entry
	// (piggybacked: bookies and readers learn the LAC from it).
	LAC base.EntryID
	// Length is the ledger's length in bytes including this entry's
	// payload.
	Length int64
}

// ParseEntryHeader reads the header of an entry without verifying
// anything; a bookie uses it to learn the piggybacked LAC.
func ParseEntryHeader(entry []byte) (EntryHeader, error) {
	if len(entry) < EntryHeaderLen {
		return EntryHeader{}, fmt.Errorf("%w: entry of %d bytes has no header", ErrMalformed, len(entry))
	}
	return EntryHeader{
		LedgerID: base.LedgerID(binary.BigEndian.Uint64(entry)),
		EntryID:  base.EntryID(binary.BigEndian.Uint64(entry[8:])),
		LAC:      base.EntryID(binary.BigEndian.Uint64(entry[16:])),
		Length:   int64(binary.BigEndian.Uint64(entry[24:])),
	}, nil
}

func appendEntryHeaderFields(dst []byte, h EntryHeader) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.LedgerID))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.EntryID))
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.LAC))
	return binary.BigEndian.AppendUint64(dst, uint64(h.Length))
}

// Digester computes and checks the digests of one ledger's entries, as
// BookKeeper's DigestManager does. It is safe for concurrent use. CRC32C,
// CRC32 and DUMMY never allocate; HMAC reuses pooled MAC states.
type Digester struct {
	typ  DigestType
	macs *sync.Pool // HMAC only: hash.Hash keyed by SHA-1("mac" ‖ password)
}

// NewDigester makes a Digester of type t. password matters for HMAC only.
func NewDigester(t DigestType, password []byte) (*Digester, error) {
	d := &Digester{typ: t}
	switch t {
	case DigestCRC32, DigestCRC32C, DigestDummy:
	case DigestHMAC:
		key := saltedSHA1("mac", password)
		d.macs = &sync.Pool{New: func() any { return hmac.New(sha1.New, key[:]) }}
	default:
		return nil, fmt.Errorf("bk: unknown digest type %d", int32(t))
	}
	return d, nil
}

// Type is the digest type.
func (d *Digester) Type() DigestType { return d.typ }

// Size is the size of the digest field.
func (d *Digester) Size() int { return d.typ.Size() }

// HeaderLen is the number of bytes in front of an entry's payload: the
// entry header and the digest.
func (d *Digester) HeaderLen() int { return EntryHeaderLen + d.typ.Size() }

// AppendDigest appends the digest of the concatenation of parts (which may
// be separate slices: header and payload need not be contiguous).
func (d *Digester) AppendDigest(dst []byte, parts ...[]byte) []byte {
	return d.appendDigest(dst, nil, parts)
}

// appendDigest appends the digest of first ‖ rest[0] ‖ rest[1] ‖ ...
//
// BookKeeper computes the CRC32C digest by resuming from 0 over each piece
// (Crc32cIntChecksum.resumeChecksum); each resume undoes the previous
// post-inversion, so the result is the standard CRC32C of the
// concatenation, which is what chained crc32.Update calls give. The 4-byte
// field is that value as a big-endian int. CRC32 uses java.util.zip.CRC32,
// whose value is a long: the field is 4 zero bytes, then the CRC.
func (d *Digester) appendDigest(dst, first []byte, rest [][]byte) []byte {
	switch d.typ {
	case DigestCRC32C, DigestCRC32:
		tab := crc32.IEEETable
		if d.typ == DigestCRC32C {
			tab = castagnoli
		}
		c := crc32.Update(0, tab, first)
		for _, p := range rest {
			c = crc32.Update(c, tab, p)
		}
		if d.typ == DigestCRC32C {
			return binary.BigEndian.AppendUint32(dst, c)
		}
		return binary.BigEndian.AppendUint64(dst, uint64(c))
	case DigestHMAC:
		m := d.macs.Get().(hash.Hash)
		m.Reset()
		m.Write(first)
		for _, p := range rest {
			m.Write(p)
		}
		dst = m.Sum(dst)
		d.macs.Put(m)
	}
	return dst
}

// AppendEntryHeader appends the 32-byte entry header h and the digest
// computed over that header and the payload, which the caller sends (or
// stores) right after: the payload, given as one or several slices, is
// never copied.
func (d *Digester) AppendEntryHeader(dst []byte, h EntryHeader, payload ...[]byte) []byte {
	start := len(dst)
	dst = appendEntryHeaderFields(dst, h)
	return d.appendDigest(dst, dst[start:], payload)
}

// AppendEntry appends a whole entry: header, digest, payload (copied).
func (d *Digester) AppendEntry(dst []byte, h EntryHeader, payload []byte) []byte {
	return append(d.AppendEntryHeader(dst, h, payload), payload...)
}

// ParseEntry verifies an entry as a BookKeeper reader does and returns its
// header and payload (a subslice of entry). It checks the digest over the
// header and the payload, then that the entry belongs to ledger and is
// entry entryID; entryID LastAddConfirmed (-1) skips the entry id check, for
// the answer to a read of the last entry. A short entry or a digest that
// does not match is ErrDigestMismatch; other ids are ErrWrongEntry.
func (d *Digester) ParseEntry(entry []byte, ledger base.LedgerID, entryID base.EntryID) (EntryHeader, []byte, error) {
	hl := d.HeaderLen()
	if len(entry) < hl {
		return EntryHeader{}, nil, fmt.Errorf("%w: %v entry of %d bytes is shorter than its %d-byte header (ledger %d, entry %d)",
			ErrDigestMismatch, d.typ, len(entry), hl, ledger, entryID)
	}
	if !d.verify(entry[EntryHeaderLen:hl], entry[:EntryHeaderLen], entry[hl:]) {
		return EntryHeader{}, nil, fmt.Errorf("%w: %v (ledger %d, entry %d)", ErrDigestMismatch, d.typ, ledger, entryID)
	}
	h, _ := ParseEntryHeader(entry)
	if h.LedgerID != ledger || (entryID != LastAddConfirmed && h.EntryID != entryID) {
		return EntryHeader{}, nil, fmt.Errorf("%w: got ledger %d entry %d, want ledger %d entry %d",
			ErrWrongEntry, h.LedgerID, h.EntryID, ledger, entryID)
	}
	return h, entry[hl:], nil
}

// verify reports whether got is the digest of a ‖ b.
func (d *Digester) verify(got, a, b []byte) bool {
	switch d.typ {
	case DigestCRC32C:
		return binary.BigEndian.Uint32(got) == crc32.Update(crc32.Update(0, castagnoli, a), castagnoli, b)
	case DigestCRC32:
		c := crc32.Update(crc32.Update(0, crc32.IEEETable, a), crc32.IEEETable, b)
		return binary.BigEndian.Uint64(got) == uint64(c)
	case DigestHMAC:
		var buf [sha1.Size]byte
		return hmac.Equal(got, d.appendDigest(buf[:0], a, [][]byte{b}))
	}
	return true
}

// AppendLAC appends an explicit-LAC blob (the WRITE_LAC body): ledger id,
// LAC, and the digest of those 16 bytes.
func (d *Digester) AppendLAC(dst []byte, ledger base.LedgerID, lac base.EntryID) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(ledger))
	dst = binary.BigEndian.AppendUint64(dst, uint64(lac))
	return d.AppendDigest(dst, dst[start:])
}

// ParseLAC verifies an explicit-LAC blob of ledger and returns the LAC.
func (d *Digester) ParseLAC(blob []byte, ledger base.LedgerID) (base.EntryID, error) {
	hl := LACHeaderLen + d.typ.Size()
	if len(blob) < hl {
		return 0, fmt.Errorf("%w: %v LAC blob of %d bytes (ledger %d)", ErrDigestMismatch, d.typ, len(blob), ledger)
	}
	if !d.verify(blob[LACHeaderLen:hl], blob[:LACHeaderLen], nil) {
		return 0, fmt.Errorf("%w: %v LAC blob (ledger %d)", ErrDigestMismatch, d.typ, ledger)
	}
	if got := base.LedgerID(binary.BigEndian.Uint64(blob)); got != ledger {
		return 0, fmt.Errorf("%w: LAC blob of ledger %d, want %d", ErrWrongEntry, got, ledger)
	}
	return base.EntryID(binary.BigEndian.Uint64(blob[8:])), nil
}

// GenerateMasterKey is the master key of a ledger with this password:
// SHA-1("ledger" ‖ password), whatever the digest type (an empty password
// gives SHA-1("ledger")).
func GenerateMasterKey(password []byte) MasterKey {
	return MasterKey(saltedSHA1("ledger", password))
}

func saltedSHA1(salt string, password []byte) [sha1.Size]byte {
	h := sha1.New()
	h.Write([]byte(salt))
	h.Write(password)
	var out [sha1.Size]byte
	h.Sum(out[:0])
	return out
}
