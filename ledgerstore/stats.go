package ledgerstore

import "sync/atomic"

// Stats is a snapshot of the store's counters and gauges.
type Stats struct {
	Mode Mode

	// Adds and the write cache.
	EntriesAdded      int64 // adds accepted
	BytesAdded        int64 // payload bytes accepted
	AddWaits          int64 // adds that had to wait for a free segment
	AddsWaiting       int   // adds waiting now
	WriteCacheBytes   int64 // charged bytes held (payload capacity plus overhead)
	WriteCacheEntries int

	// Flushes.
	Flushes        int64 // segments flushed
	FlushErrors    int64 // failed flush attempts
	FlushedEntries int64
	FlushedBytes   int64 // record bytes written to entry logs by flushes
	FlushNanos     int64 // time spent in successful segment flushes

	// Reads.
	ReadsWriteCache  int64
	ReadsReadCache   int64
	ReadsLog         int64 // entries read from entry logs by readers
	ReadAheads       int64
	ReadAheadEntries int64
	ReadCacheBytes   int64
	Corruptions      int64 // records that failed a check on read
	IndexRebuilds    int64 // damaged index files rebuilt from their logs at Open

	// Garbage collection.
	GCRuns         int64
	LedgersDeleted int64
	LogsDeleted    int64
	LogsCompacted  int64
	CompactedBytes int64
	ReclaimedBytes int64

	// Storage.
	EntryLogs     int
	EntryLogBytes int64 // sum of the logs' sizes
	LiveBytes     int64 // record bytes the index points to
	Ledgers       int
	IndexEntries  int64
	IndexBytes    int64 // memory held by the location index
}

type counters struct {
	entriesAdded, bytesAdded, addWaits            atomic.Int64
	flushes, flushErrors, flushedEntries          atomic.Int64
	flushedBytes, flushNanos                      atomic.Int64
	readsWriteCache, readsReadCache, readsLog     atomic.Int64
	readAheads, readAheadEntries, corruptions     atomic.Int64
	gcRuns, ledgersDeleted, logsDeleted           atomic.Int64
	logsCompacted, compactedBytes, reclaimedBytes atomic.Int64
	indexRebuilds                                 atomic.Int64
}

// Stats returns the current counters. It walks the index, so it is meant
// for a metrics scrape, not for a hot path.
func (s *Store) Stats() Stats {
	c := &s.stats
	st := Stats{
		Mode:             s.Mode(),
		EntriesAdded:     c.entriesAdded.Load(),
		BytesAdded:       c.bytesAdded.Load(),
		AddWaits:         c.addWaits.Load(),
		Flushes:          c.flushes.Load(),
		FlushErrors:      c.flushErrors.Load(),
		FlushedEntries:   c.flushedEntries.Load(),
		FlushedBytes:     c.flushedBytes.Load(),
		FlushNanos:       c.flushNanos.Load(),
		ReadsWriteCache:  c.readsWriteCache.Load(),
		ReadsReadCache:   c.readsReadCache.Load(),
		ReadsLog:         c.readsLog.Load(),
		ReadAheads:       c.readAheads.Load(),
		ReadAheadEntries: c.readAheadEntries.Load(),
		Corruptions:      c.corruptions.Load(),
		IndexRebuilds:    c.indexRebuilds.Load(),
		GCRuns:           c.gcRuns.Load(),
		LedgersDeleted:   c.ledgersDeleted.Load(),
		LogsDeleted:      c.logsDeleted.Load(),
		LogsCompacted:    c.logsCompacted.Load(),
		CompactedBytes:   c.compactedBytes.Load(),
		ReclaimedBytes:   c.reclaimedBytes.Load(),
	}
	st.WriteCacheBytes, st.WriteCacheEntries, st.AddsWaiting = s.wc.usage()
	st.ReadCacheBytes = s.rc.usage()
	s.state.RLock()
	st.EntryLogs = len(s.state.logs)
	for _, lf := range s.state.logs {
		st.EntryLogBytes += lf.size
		st.LiveBytes += lf.live
	}
	for _, li := range s.state.ledgers {
		st.IndexEntries += int64(li.count)
		st.IndexBytes += li.memBytes()
	}
	s.state.RUnlock()
	s.meta.mu.RLock()
	st.Ledgers = len(s.meta.mu.ledgers)
	s.meta.mu.RUnlock()
	return st
}
