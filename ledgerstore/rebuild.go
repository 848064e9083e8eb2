package ledgerstore

import (
	"errors"
	"fmt"
	"io"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// damagedSuffix names the copy of an index file that Open found damaged
// and rebuilt (kept for inspection; nothing reads it).
const damagedSuffix = ".damaged"

// rebuildIndex recovers the index of entry log lf from the log itself when
// its index file is damaged or its only record invalid (cause), as
// BookKeeper scans an entry log whose ledger map is unreadable: every
// record names its ledger and entry and carries its checksum. It returns
// the runs found and replaces the index file with one that holds them,
// keeping a copy of the damaged one beside it; a crash at any point leaves
// the damaged file or the rebuilt one, whole.
//
// Every valid entry record is kept, as if the index had listed it: Open
// applies the runs as it applies an index file's, so a deleted ledger's
// tombstone keeps its records out (and stays while the log exists). A
// record the damaged index had left out (a part committed after its
// ledger was deleted) may come back after its tombstone was dropped;
// ledger ids are never reused and garbage collection deletes the ledger
// again, as it does any ledger the metadata store no longer has. Records
// that fail their checks are skipped and counted: if the damage reaches
// the log too, those entries are lost on this bookie and only other
// replicas have them. Every version of an entry holds the same bytes, so
// the rebuilt runs take the lowest flush sequence (any other copy wins).
func (s *Store) rebuildIndex(lf *logFile, cause error) ([]indexRun, error) {
	f, err := s.fs.Open(lf.path)
	if err != nil {
		return nil, fmt.Errorf("%w (rebuilding from the log: %w)", cause, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%w (rebuilding from the log: %w)", cause, err)
	}
	var hb [record.FileHeaderSize]byte
	if _, err := f.ReadAt(hb[:], 0); err != nil {
		return nil, fmt.Errorf("%w (rebuilding from the log: read %s: %w)", cause, lf.path, err)
	}
	if _, err := record.DecodeFileHeader(hb[:], entryLogMagic); err != nil {
		return nil, fmt.Errorf("%w; the index cannot be rebuilt: %s has a bad file header too (%w)", cause, lf.path, err)
	}
	size := fi.Size()
	rd := record.NewReader(f, size, lf.id, record.FileHeaderSize)
	var found []writtenEntry
	var damagedBytes, skipped int64
	scratch := make([]byte, 256<<10)
	end := int64(record.FileHeaderSize)
	for {
		off := rd.Offset()
		h, _, err := rd.Next()
		if err == nil {
			end = rd.Offset()
			if h.Kind != record.KindEntry || h.Entry < 0 {
				skipped++
				continue
			}
			found = append(found, writtenEntry{ledger: base.LedgerID(h.Ledger), entry: base.EntryID(h.Entry), off: uint32(off), size: uint32(h.Size()), log: lf.id})
			continue
		}
		torn := errors.Is(err, record.ErrTorn)
		if !torn && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w (rebuilding from the log: %w)", cause, err)
		}
		// Zeros (the padding after a part, or space never written) or
		// damaged bytes: go on at the next valid record, if any.
		from := off
		if !torn {
			q, err := nextNonZero(f, scratch, off, size)
			if err != nil {
				return nil, fmt.Errorf("%w (rebuilding from the log: %w)", cause, err)
			}
			if q >= size {
				break
			}
			// A record's first bytes (its checksum) may be zeros.
			from = max(off, q-record.HeaderSize)
		}
		p, ok := rd.NextValidAfter(from-1, 1)
		if torn {
			if ok {
				damagedBytes += p - off
			} else if tail, err := nextNonZero(f, scratch, off, size); err != nil {
				return nil, fmt.Errorf("%w (rebuilding from the log: %w)", cause, err)
			} else if tail < size {
				damagedBytes += size - off
			}
		}
		if !ok {
			break
		}
		rd.SeekTo(p)
	}
	data, err := encodeIndexFile(lf.id, end, found)
	if err != nil {
		return nil, fmt.Errorf("%w (rebuilding from the log: %w)", cause, err)
	}
	if old, err := readWhole(s.fs, lf.idxPath); err == nil {
		if err := vfs.WriteFileAtomic(s.fs, lf.idxPath+damagedSuffix, old); err != nil {
			return nil, fmt.Errorf("%w (keeping a copy of the damaged index: %w)", cause, err)
		}
	}
	if err := vfs.WriteFileAtomic(s.fs, lf.idxPath, data); err != nil {
		return nil, fmt.Errorf("%w (writing the rebuilt index: %w)", cause, err)
	}
	runs, _, err := readIndexFile(s.fs, lf.idxPath, lf.id, nil)
	if err != nil {
		return nil, fmt.Errorf("ledgerstore: the index rebuilt from %s does not read back: %w", lf.path, err)
	}
	s.stats.indexRebuilds.Add(1)
	s.log.Warn("rebuilt a damaged index file from its entry log",
		"index", lf.idxPath, "damage", cause, "kept", lf.idxPath+damagedSuffix,
		"entries", len(found), "recordsLeftOut", skipped, "damagedLogBytes", damagedBytes)
	return runs, nil
}

// encodeIndexFile is an index file holding entries (in log order) in as
// many index records as the part size bound needs.
func encodeIndexFile(id uint32, dataEnd int64, entries []writtenEntry) ([]byte, error) {
	buf := make([]byte, record.FileHeaderSize)
	record.PutFileHeader(buf, record.FileHeader{Magic: indexMagic, Version: record.FormatVersion, FileNum: id})
	perPart := maxPartIndexBytes / partIndexEntryMax
	var payload []byte
	for len(entries) > 0 {
		n := min(len(entries), perPart)
		payload = appendPartIndex(payload[:0], dataEnd, entries[:n])
		if len(payload) > record.MaxPayload {
			return nil, fmt.Errorf("index record of %d bytes", len(payload))
		}
		buf = record.Append(buf, record.Header{FileNum: id, Kind: record.KindMeta}, payload)
		entries = entries[n:]
	}
	return buf, nil
}

// nextNonZero returns the offset of the first byte at or after off that is
// not zero, or size when there is none, reading through buf.
func nextNonZero(f io.ReaderAt, buf []byte, off, size int64) (int64, error) {
	for off < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		for i, c := range buf[:n] {
			if c != 0 {
				return off + int64(i), nil
			}
		}
		off += int64(n)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read at %d: %w", off, err)
		}
		if n == 0 {
			break
		}
	}
	return size, nil
}

// readWhole returns the contents of a small file.
func readWhole(fs vfs.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
