package ledgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// Catalog records (part of the format; see doc.go). The record header's
// Flags say what the record is:
const (
	opBatch       = 1 // payload: a sequence of sub-records
	opSnapshotEnd = 2 // the snapshot that opens the file is complete
)

// Sub-record operations inside a batch.
const (
	subLedger        = 1 // aux unused; payload: the ledger's whole metadata
	subDelete        = 2 // aux: highest entry log id allocated at deletion
	subDropTombstone = 3 // no entry log holds the ledger's data any more
)

const (
	metaFenced = 1 << 0
	metaHasLAC = 1 << 1
)

const (
	// catalogGrowth: a catalog file is rewritten as a fresh snapshot once
	// its appended records exceed this many bytes and twice its snapshot.
	catalogGrowth = 1 << 20
	// catalogBatchBytes bounds one batch record.
	catalogBatchBytes = 4 << 20
	// catalogReserve is the space preallocated after a catalog snapshot.
	catalogReserve = 256 << 10
)

// ledgerMeta is the bookie-side metadata of one ledger.
type ledgerMeta struct {
	fenced    bool
	masterKey []byte
	lac       []byte // explicit LAC; nil when none was written
}

// metaTable holds every ledger's metadata and the tombstones of deleted
// ledgers. It is the innermost lock of the store.
type metaTable struct {
	mu struct {
		sync.RWMutex
		ledgers map[base.LedgerID]*ledgerMeta
		deleted map[base.LedgerID]uint32 // tombstone: highest log id allocated at deletion
		dirty   map[base.LedgerID]struct{}
	}
}

func (m *metaTable) init() {
	m.mu.ledgers = map[base.LedgerID]*ledgerMeta{}
	m.mu.deleted = map[base.LedgerID]uint32{}
	m.mu.dirty = map[base.LedgerID]struct{}{}
}

func (m *metaTable) isDeleted(l base.LedgerID) bool {
	m.mu.RLock()
	_, ok := m.mu.deleted[l]
	m.mu.RUnlock()
	return ok
}

// ensure makes the ledger exist and reports whether it is deleted.
func (m *metaTable) ensure(l base.LedgerID) error {
	m.mu.RLock()
	_, ok := m.mu.ledgers[l]
	del := false
	if !ok {
		_, del = m.mu.deleted[l]
	}
	m.mu.RUnlock()
	if ok {
		return nil
	}
	if del {
		return fmt.Errorf("ledgerstore: ledger %d: %w (deleted)", l, base.ErrNoLedger)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, del := m.mu.deleted[l]; del {
		return fmt.Errorf("ledgerstore: ledger %d: %w (deleted)", l, base.ErrNoLedger)
	}
	if _, ok := m.mu.ledgers[l]; !ok {
		m.mu.ledgers[l] = &ledgerMeta{}
		m.mu.dirty[l] = struct{}{}
	}
	return nil
}

// appendSubLocked appends l's sub-record (its metadata, its tombstone, or
// the drop of its tombstone) to dst.
func (m *metaTable) appendSubLocked(dst []byte, l base.LedgerID) []byte {
	if maxLog, ok := m.mu.deleted[l]; ok {
		dst = append(dst, subDelete)
		dst = binary.AppendVarint(dst, int64(l))
		dst = binary.AppendUvarint(dst, uint64(maxLog))
		return binary.AppendUvarint(dst, 0)
	}
	lm, ok := m.mu.ledgers[l]
	if !ok {
		dst = append(dst, subDropTombstone)
		dst = binary.AppendVarint(dst, int64(l))
		dst = binary.AppendUvarint(dst, 0)
		return binary.AppendUvarint(dst, 0)
	}
	var flags byte
	if lm.fenced {
		flags |= metaFenced
	}
	if lm.lac != nil {
		flags |= metaHasLAC
	}
	dst = append(dst, subLedger)
	dst = binary.AppendVarint(dst, int64(l))
	dst = binary.AppendUvarint(dst, 0)
	n := 1 + uvarintLen(len(lm.masterKey)) + len(lm.masterKey) + uvarintLen(len(lm.lac)) + len(lm.lac)
	dst = binary.AppendUvarint(dst, uint64(n))
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(lm.masterKey)))
	dst = append(dst, lm.masterKey...)
	dst = binary.AppendUvarint(dst, uint64(len(lm.lac)))
	return append(dst, lm.lac...)
}

func uvarintLen(n int) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], uint64(n))
}

// applyBatch applies the sub-records of one batch record read at start-up.
func (m *metaTable) applyBatch(p []byte) error {
	rd := varintReader{b: p}
	for rd.pos < len(p) && rd.err == nil {
		op := p[rd.pos]
		rd.pos++
		l := base.LedgerID(rd.varint())
		aux := rd.uvarint()
		payload := rd.bytes()
		if rd.err != nil {
			break
		}
		switch op {
		case subLedger:
			if len(payload) < 1 {
				return fmt.Errorf("ledgerstore: malformed ledger record for %d", l)
			}
			prd := varintReader{b: payload, pos: 1}
			key := prd.bytes()
			lac := prd.bytes()
			if prd.err != nil || prd.pos != len(payload) {
				return fmt.Errorf("ledgerstore: malformed ledger record for %d", l)
			}
			lm := &ledgerMeta{fenced: payload[0]&metaFenced != 0, masterKey: slices.Clone(key)}
			if payload[0]&metaHasLAC != 0 {
				lm.lac = append([]byte{}, lac...)
			}
			m.mu.ledgers[l] = lm
			delete(m.mu.deleted, l)
		case subDelete:
			delete(m.mu.ledgers, l)
			m.mu.deleted[l] = uint32(aux)
		case subDropTombstone:
			delete(m.mu.deleted, l)
		default:
			return fmt.Errorf("ledgerstore: unknown catalog operation %d", op)
		}
	}
	if rd.err != nil {
		return fmt.Errorf("ledgerstore: malformed catalog batch: %w", rd.err)
	}
	return nil
}

// catalog is the append-only file of metadata changes in MetaDir. Its mutex
// serializes catalog writers and is held across the catalog's own I/O; no
// add or read waits for it.
type catalog struct {
	fs  vfs.FS
	dir string
	mu  struct {
		sync.Mutex
		num       uint32
		f         vfs.File
		off       int64
		snapBytes int64
		broken    bool // the last append failed: the next write is a fresh snapshot
		buf       []byte
		sub       []byte
	}
}

// catalogFound says which catalog file Open loaded and where its valid
// records end.
type catalogFound struct {
	num      uint32
	validEnd int64
	snapEnd  int64
}

// loadCatalog finds the newest complete catalog in dir and applies it to m.
// It returns the catalog numbers found (so that the caller can remove them
// after writing a new one) and the one loaded (nil when none).
func loadCatalog(fs vfs.FS, dir string, m *metaTable) (nums []uint32, found *catalogFound, err error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("ledgerstore: list %s: %w", dir, err)
	}
	for _, name := range names {
		if n, ok := parseCatalogNum(name); ok {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	for i := len(nums) - 1; i >= 0; i-- {
		cf, err := readCatalog(fs, catalogName(dir, nums[i]), nums[i], m)
		if err != nil {
			return nums, nil, err
		}
		if cf != nil {
			return nums, cf, nil
		}
		// An incomplete snapshot (a crash while writing it): the older
		// catalog, which is only removed after a newer one is durable, holds
		// the state.
		m.init()
	}
	return nums, nil, nil
}

// readCatalog applies a catalog file to m; it returns nil when the file's
// snapshot is incomplete. Before the snapshot's end any invalid record means the
// snapshot was never made durable; after it, records are appended one per
// sync, so an invalid record is allowed only as the last one.
func readCatalog(fs vfs.FS, name string, num uint32, m *metaTable) (*catalogFound, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, fmt.Errorf("ledgerstore: open %s: %w", name, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ledgerstore: stat %s: %w", name, err)
	}
	size := fi.Size()
	var hb [record.FileHeaderSize]byte
	if n, _ := f.ReadAt(hb[:], 0); n < len(hb) {
		return nil, nil
	}
	if _, err := record.DecodeFileHeader(hb[:], catalogMagic); err != nil {
		return nil, nil // the header of a snapshot never made durable
	}
	rd := record.NewReader(f, size, num, record.FileHeaderSize)
	var cf *catalogFound
	for {
		off := rd.Offset()
		h, payload, err := rd.Next()
		if errors.Is(err, io.EOF) {
			if cf != nil {
				cf.validEnd = off
			}
			return cf, nil
		}
		if err != nil {
			if cf == nil {
				return nil, nil
			}
			if !errors.Is(err, record.ErrTorn) {
				return nil, fmt.Errorf("ledgerstore: %s: %w", name, err)
			}
			if p, found := rd.NextValidAfter(off, 1); found {
				return nil, fmt.Errorf("ledgerstore: %s offset %d: %w: invalid record followed by a valid one at %d",
					name, off, base.ErrCorruption, p)
			}
			cf.validEnd = off // torn tail: the last append never completed
			return cf, nil
		}
		switch {
		case h.Kind != record.KindMeta:
			err = fmt.Errorf("record kind %d", h.Kind)
		case h.Flags == opSnapshotEnd:
			cf = &catalogFound{num: num, snapEnd: rd.Offset()}
		case h.Flags == opBatch:
			err = m.applyBatch(payload)
		default:
			err = fmt.Errorf("unknown catalog record %d", h.Flags)
		}
		if err != nil {
			if cf == nil {
				return nil, nil
			}
			return nil, fmt.Errorf("ledgerstore: %s offset %d: %w: %w", name, off, base.ErrCorruption, err)
		}
	}
}

// appendBatches frames sub-records (whole ones, as appendSubLocked made
// them) into batch records of at most catalogBatchBytes and appends them to
// dst. It returns the extended dst and the offsets in dst where each batch
// record ends.
func appendBatches(dst []byte, sub []byte, num uint32, ends []int) ([]byte, []int) {
	for len(sub) > 0 {
		n := 0
		for n < len(sub) {
			sz := subRecordLen(sub[n:])
			if n > 0 && n+sz > catalogBatchBytes {
				break
			}
			n += sz
		}
		dst = record.Append(dst, record.Header{Kind: record.KindMeta, Flags: opBatch, FileNum: num}, sub[:n])
		ends = append(ends, len(dst))
		sub = sub[n:]
	}
	return dst, ends
}

// subRecordLen is the length of the well-formed sub-record at the start of b.
func subRecordLen(b []byte) int {
	rd := varintReader{b: b, pos: 1}
	rd.varint()
	rd.uvarint()
	rd.bytes()
	return rd.pos
}

// writeSnapshotLocked starts catalog file num with the whole state of m,
// makes it durable, and makes it the file later records go to. The caller
// holds c.mu.
func (c *catalog) writeSnapshotLocked(num uint32, m *metaTable) error {
	name := catalogName(c.dir, num)
	f, err := c.fs.OpenFile(name, vfs.OpenOptions{Write: true, Create: true, Truncate: true})
	if err != nil {
		return fmt.Errorf("ledgerstore: create %s: %w", name, err)
	}
	sub := c.mu.sub[:0]
	m.mu.Lock()
	for _, l := range slices.Sorted(maps.Keys(m.mu.ledgers)) {
		sub = m.appendSubLocked(sub, l)
	}
	for _, l := range slices.Sorted(maps.Keys(m.mu.deleted)) {
		sub = m.appendSubLocked(sub, l)
	}
	saved := takeDirtyLocked(m)
	m.mu.Unlock()
	buf := append(c.mu.buf[:0], make([]byte, record.FileHeaderSize)...)
	record.PutFileHeader(buf, record.FileHeader{Magic: catalogMagic, Version: record.FormatVersion, FileNum: num})
	buf, _ = appendBatches(buf, sub, num, nil)
	buf = record.Append(buf, record.Header{Kind: record.KindMeta, Flags: opSnapshotEnd, FileNum: num}, nil)
	c.mu.buf, c.mu.sub = buf, sub
	fail := func(err error) error {
		f.Close()
		restoreDirty(m, saved)
		return err
	}
	// Reserve room for the records appended later, so that metadata
	// changes (a deletion above all) still land on a full disk. Best
	// effort: a disk too full for the reserve takes the snapshot anyway.
	reserved := f.Preallocate(0, int64(len(buf))+catalogReserve) == nil
	if _, err := f.WriteAt(buf, 0); err != nil {
		return fail(fmt.Errorf("ledgerstore: write %s: %w", name, err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("ledgerstore: sync %s: %w", name, err))
	}
	if err := c.fs.SyncDir(c.dir); err != nil {
		return fail(fmt.Errorf("ledgerstore: sync dir %s: %w", c.dir, err))
	}
	if c.mu.f != nil {
		c.mu.f.Close()
	}
	old := c.mu.num
	c.mu.num, c.mu.f, c.mu.off, c.mu.snapBytes, c.mu.broken = num, f, int64(len(buf)), int64(len(buf)), false
	if old != 0 && old != num {
		// The new snapshot is durable; the old file is garbage. A crash
		// before this removal is durable leaves it for the next Open.
		if err := c.fs.Remove(catalogName(c.dir, old)); err != nil && !vfs.IsNotExist(err) {
			return fmt.Errorf("ledgerstore: remove old catalog: %w", err)
		}
	}
	if !reserved {
		// The old file's reserve may be free now.
		_ = f.Preallocate(0, int64(len(buf))+catalogReserve)
	}
	return nil
}

// reserve retries the preallocation of the current file (after Open
// removed the older catalogs).
func (c *catalog) reserve() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.f != nil {
		_ = c.mu.f.Preallocate(0, c.mu.off+catalogReserve)
	}
}

// takeDirtyLocked empties the dirty set and returns what it held.
func takeDirtyLocked(m *metaTable) []base.LedgerID {
	saved := slices.Sorted(maps.Keys(m.mu.dirty))
	clear(m.mu.dirty)
	return saved
}

// restoreDirty marks ledgers dirty again after a write of them failed.
func restoreDirty(m *metaTable, saved []base.LedgerID) {
	m.mu.Lock()
	for _, l := range saved {
		m.mu.dirty[l] = struct{}{}
	}
	m.mu.Unlock()
}

// sync writes the records of every dirty ledger and makes them durable.
func (c *catalog) sync(m *metaTable) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.broken || c.mu.f == nil {
		return c.writeSnapshotLocked(c.mu.num+1, m)
	}
	sub := c.mu.sub[:0]
	m.mu.Lock()
	if len(m.mu.dirty) == 0 {
		m.mu.Unlock()
		return nil
	}
	saved := takeDirtyLocked(m)
	for _, l := range saved {
		sub = m.appendSubLocked(sub, l)
	}
	m.mu.Unlock()
	buf, ends := appendBatches(c.mu.buf[:0], sub, c.mu.num, nil)
	c.mu.buf, c.mu.sub = buf, sub
	// One record per write and sync: after a crash only the last record
	// can be torn.
	start := 0
	for _, end := range ends {
		if err := c.appendLocked(buf[start:end]); err != nil {
			restoreDirty(m, saved)
			if !vfs.IsNoSpace(err) {
				// After a failed sync the file's state is unknown: move
				// to a fresh snapshot. A write refused for space wrote
				// nothing that counts; the next append overwrites it.
				c.mu.broken = true
			}
			return err
		}
		start = end
	}
	if c.mu.off-c.mu.snapBytes > max(catalogGrowth, 2*c.mu.snapBytes) {
		// Compact into a new file. On failure the current one stays
		// complete and in use.
		_ = c.writeSnapshotLocked(c.mu.num+1, m)
	}
	return nil
}

// reuseLocked makes the loaded catalog file the one records go to, from
// the end of its valid records (for a start on a disk too full for a new
// snapshot). A torn record there is overwritten by the next append.
func (c *catalog) reuseLocked(cf *catalogFound) error {
	name := catalogName(c.dir, cf.num)
	f, err := c.fs.OpenFile(name, vfs.OpenOptions{Write: true})
	if err != nil {
		return fmt.Errorf("ledgerstore: open %s: %w", name, err)
	}
	c.mu.num, c.mu.f, c.mu.off, c.mu.snapBytes, c.mu.broken = cf.num, f, cf.validEnd, cf.snapEnd, false
	return nil
}

func (c *catalog) appendLocked(b []byte) error {
	name := catalogName(c.dir, c.mu.num)
	if _, err := c.mu.f.WriteAt(b, c.mu.off); err != nil {
		return fmt.Errorf("ledgerstore: write %s: %w", name, err)
	}
	if err := c.mu.f.Sync(); err != nil {
		return fmt.Errorf("ledgerstore: sync %s: %w", name, err)
	}
	c.mu.off += int64(len(b))
	return nil
}

func (c *catalog) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.f == nil {
		return nil
	}
	err := c.mu.f.Close()
	c.mu.f = nil
	return err
}
