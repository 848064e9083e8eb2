package ledgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
)

// File magics (part of the format).
var (
	entryLogMagic = [8]byte{'M', 'G', 'N', 'E', 'L', 'O', 'G', '1'}
	indexMagic    = [8]byte{'M', 'G', 'N', 'E', 'I', 'D', 'X', '1'}
	catalogMagic  = [8]byte{'M', 'G', 'N', 'C', 'A', 'T', 'L', '1'}
)

const (
	entryLogSuffix = ".log"
	indexSuffix    = ".idx"
	catalogPrefix  = "CATALOG-"
	// maxPartIndexBytes bounds one part's index record, well under
	// record.MaxPayload: a part that would need more is committed early.
	maxPartIndexBytes = 16 << 20
	// entryOverhead is what the write cache charges per entry beyond its
	// payload's capacity (map slot, key, header to come).
	entryOverhead = 64
)

func entryLogName(dir string, id uint32) string {
	return path.Join(dir, fmt.Sprintf("%08x%s", id, entryLogSuffix))
}

func indexName(dir string, id uint32) string {
	return path.Join(dir, fmt.Sprintf("%08x%s", id, indexSuffix))
}

func catalogName(dir string, num uint32) string {
	return path.Join(dir, fmt.Sprintf("%s%08x", catalogPrefix, num))
}

// parseFileID returns the id of an entry log or index file name.
func parseFileID(name, suffix string) (uint32, bool) {
	if !strings.HasSuffix(name, suffix) || len(name) != 8+len(suffix) {
		return 0, false
	}
	v, err := strconv.ParseUint(name[:8], 16, 32)
	if err != nil || v == 0 {
		return 0, false
	}
	return uint32(v), true
}

func parseCatalogNum(name string) (uint32, bool) {
	if !strings.HasPrefix(name, catalogPrefix) || len(name) != len(catalogPrefix)+8 {
		return 0, false
	}
	v, err := strconv.ParseUint(name[len(catalogPrefix):], 16, 32)
	if err != nil {
		return 0, false
	}
	return uint32(v), true
}

// writtenEntry is one record a part wrote: what the index and the part's
// index record need.
type writtenEntry struct {
	seq    uint64
	ledger base.LedgerID
	entry  base.EntryID
	off    uint32 // record offset in the log
	size   uint32 // record size: header plus payload
	log    uint32 // the log written to (not encoded)
}

// appendPartIndex encodes a part's index record payload (format in doc.go).
// Entries must be in write order; consecutive records of one ledger and one
// sequence with increasing entry ids form a run.
func appendPartIndex(dst []byte, dataEnd int64, entries []writtenEntry) []byte {
	dst = binary.AppendUvarint(dst, uint64(dataEnd))
	nRuns := 0
	for i := range entries {
		if i == 0 || !sameRun(entries[i-1], entries[i]) {
			nRuns++
		}
	}
	dst = binary.AppendUvarint(dst, uint64(nRuns))
	for i := 0; i < len(entries); {
		j := i + 1
		for j < len(entries) && sameRun(entries[j-1], entries[j]) {
			j++
		}
		e := entries[i]
		dst = binary.AppendUvarint(dst, e.seq)
		dst = binary.AppendVarint(dst, int64(e.ledger))
		dst = binary.AppendUvarint(dst, uint64(e.off))
		dst = binary.AppendUvarint(dst, uint64(j-i))
		prev := base.EntryID(-1)
		for _, x := range entries[i:j] {
			dst = binary.AppendUvarint(dst, uint64(x.entry-prev))
			dst = binary.AppendUvarint(dst, uint64(x.size-record.HeaderSize))
			prev = x.entry
		}
		i = j
	}
	return dst
}

func sameRun(a, b writtenEntry) bool {
	return a.ledger == b.ledger && a.seq == b.seq && b.entry > a.entry && b.off == a.off+a.size
}

// partIndexSize estimates the encoded size of one more entry.
const partIndexEntryMax = 2 * binary.MaxVarintLen64

var errBadIndex = errors.New("ledgerstore: malformed index record")

// indexRun is one decoded run header; its entries follow in buf.
type indexRun struct {
	seq    uint64
	ledger base.LedgerID
	log    uint32
	start  uint32
	count  int
	buf    []byte // the run's (delta, length) pairs and whatever follows
}

// decodePartIndex splits an index record payload into its data end and runs.
// It checks the structure (every varint, every run within the log's data).
func decodePartIndex(p []byte, log uint32, runs []indexRun) (int64, []indexRun, error) {
	rd := varintReader{b: p}
	dataEnd := int64(rd.uvarint())
	n := rd.uvarint()
	if rd.err != nil || n > uint64(len(p)) || dataEnd > MaxEntryLogSizeLimit {
		return 0, runs, errBadIndex
	}
	for range n {
		var r indexRun
		r.seq = rd.uvarint()
		r.ledger = base.LedgerID(rd.varint())
		start := rd.uvarint()
		count := rd.uvarint()
		if rd.err != nil || start > uint64(dataEnd) || count == 0 || count > uint64(len(p)) {
			return 0, runs, errBadIndex
		}
		r.log, r.start, r.count, r.buf = log, uint32(start), int(count), rd.b[rd.pos:]
		// Walk the entries to check them and find the next run.
		off := start
		entry := int64(-1)
		for range count {
			delta := rd.uvarint()
			length := rd.uvarint()
			if rd.err != nil || delta == 0 || length > record.MaxPayload {
				return 0, runs, errBadIndex
			}
			entry += int64(delta)
			off += record.HeaderSize + length
			if entry < 0 || off > uint64(dataEnd) {
				return 0, runs, errBadIndex
			}
		}
		runs = append(runs, r)
	}
	if rd.pos != len(p) {
		return 0, runs, errBadIndex
	}
	return dataEnd, runs, nil
}

// each calls fn for every entry of the run.
func (r *indexRun) each(fn func(e base.EntryID, off, size uint32)) {
	rd := varintReader{b: r.buf}
	off := r.start
	entry := base.EntryID(-1)
	for range r.count {
		entry += base.EntryID(rd.uvarint())
		size := uint32(record.HeaderSize + rd.uvarint())
		fn(entry, off, size)
		off += size
	}
}

type varintReader struct {
	b   []byte
	pos int
	err error
}

func (r *varintReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.pos:])
	if n <= 0 {
		r.err = errBadIndex
		return 0
	}
	r.pos += n
	return v
}

func (r *varintReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.pos:])
	if n <= 0 {
		r.err = errBadIndex
		return 0
	}
	r.pos += n
	return v
}

func (r *varintReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.pos) {
		r.err = errBadIndex
		return nil
	}
	b := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b
}

// checkEntryRecord checks the record in b (exactly one record: header and
// payload) read from entry log logID at off for (ledger, entry). It returns
// nil or an error wrapping base.ErrCorruption naming all four.
func checkEntryRecord(b []byte, logID uint32, file string, off int64, ledger base.LedgerID, entry base.EntryID) error {
	h, err := record.DecodeHeader(b, logID)
	if err == nil {
		switch {
		case h.Kind != record.KindEntry:
			err = fmt.Errorf("record kind %d, want entry", h.Kind)
		case base.LedgerID(h.Ledger) != ledger || base.EntryID(h.Entry) != entry:
			err = fmt.Errorf("record holds %d:%d", h.Ledger, h.Entry)
		case h.Size() != int64(len(b)):
			err = fmt.Errorf("record of %d bytes, index says %d", h.Size(), len(b))
		}
	} else if errors.Is(err, io.EOF) {
		err = errors.New("zeroed or stale record")
	}
	if err != nil {
		return &CorruptionError{Ledger: ledger, Entry: entry, File: file, Offset: off, Reason: err.Error()}
	}
	return nil
}

// CorruptionError reports an entry whose bytes on disk failed a check. It
// wraps base.ErrCorruption.
type CorruptionError struct {
	Ledger base.LedgerID
	Entry  base.EntryID
	File   string
	Offset int64
	Reason string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("ledgerstore: ledger %d entry %d: %s at offset %d: %v: %s",
		e.Ledger, e.Entry, e.File, e.Offset, base.ErrCorruption, e.Reason)
}

func (e *CorruptionError) Unwrap() error { return base.ErrCorruption }
