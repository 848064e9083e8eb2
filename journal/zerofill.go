package journal

import (
	"fmt"
	"sync"

	"github.com/magnetar/magnetar/internal/vfs"
)

// zeroFillChunk is the size of one zero write of a prefill.
const zeroFillChunk = 1 << 20

// zeroFill writes zeros over the space reserved ahead of the writer, so that
// records land in blocks already written. Writing into space that was only
// reserved (fallocate) converts the filesystem's unwritten extents, a
// metadata change that every fdatasync then has to commit (on ext4, a
// journal transaction shared with every other file on the filesystem):
// with zeroed space a fresh segment behaves like a recycled one, whose
// fdatasync flushes data only. BenchmarkAppendFresh on this project's VM
// (go test ./journal -run XXX -bench BenchmarkAppendFresh -count 2): a
// lone 100 B add's p50 went from 171-188 us to 100-120 us, 100 B x 1024 in
// flight from 2.6-2.9M to 3.5-3.6M adds/s; the price is writing each fresh
// segment twice (64 KiB x 256 in flight: 25k -> 20-22k adds/s), until
// segments are recycled.
//
// The preparer zero-fills in chunks while the writer writes records; they
// must never overlap, or zeros could land over records. Under mu, the
// writer claims every range before writing it, and the preparer only
// fills a chunk wholly above the writer's claim, marked busy while its
// write runs; a writer whose range reaches a busy chunk waits for it.
type zeroFill struct {
	on   bool
	buf  []byte // zeros, aligned; read-only once made
	mu   sync.Mutex
	cond *sync.Cond
	file vfs.File // the writer's segment
	end  int64    // file offset up to which the writer has claimed file
	busy bool     // a zero write into file from offset from up is running
	from int64
}

func (z *zeroFill) init(on bool) {
	z.on = on
	z.cond = sync.NewCond(&z.mu)
	if on {
		z.buf = vfs.AlignedBuffer(zeroFillChunk, vfs.DefaultAlignment)
	}
}

// switchTo makes f the writer's segment (nothing of it claimed yet).
func (z *zeroFill) switchTo(f vfs.File) {
	if !z.on {
		return
	}
	z.mu.Lock()
	z.file, z.end = f, 0
	z.mu.Unlock()
}

// claim is the writer announcing that it will write f up to file offset
// end; it returns once no zero write overlaps that.
func (z *zeroFill) claim(f vfs.File, end int64) {
	if !z.on {
		return
	}
	z.mu.Lock()
	for z.busy && z.file == f && z.from < end {
		z.cond.Wait()
	}
	if z.file == f {
		z.end = max(z.end, end)
	}
	z.mu.Unlock()
}

// prefill reserves [off, off+n) of f and, when zero-filling, writes zeros
// over it chunk by chunk (never the first block, the segment header, and
// never at or below what the writer claimed), then syncs f. live says the
// writer may be writing f meanwhile.
func (d *dirLog) prefill(f vfs.File, off, n int64, live bool) error {
	if err := f.Preallocate(off, n); err != nil {
		return err
	}
	z := &d.fill
	if !z.on || !f.Direct() {
		return nil
	}
	wrote := false
	for p := max(off, d.align); p < off+n; {
		q := min(p+zeroFillChunk, off+n)
		if live {
			z.mu.Lock()
			if z.file != f {
				// The writer moved on: the file gets no more records.
				z.mu.Unlock()
				break
			}
			if p < z.end {
				p = min((z.end+d.align-1)&^(d.align-1), off+n)
				z.mu.Unlock()
				continue
			}
			z.busy, z.from = true, p
			z.mu.Unlock()
		}
		_, err := f.WriteAt(z.buf[:q-p], p)
		if live {
			z.mu.Lock()
			z.busy = false
			z.cond.Broadcast()
			z.mu.Unlock()
		}
		if err != nil {
			// Only a speed-up: the reserved space works without it.
			d.j.log.Debug("journal: zero-fill", "segment", f.Name(), "offset", p, "err", err)
			return nil
		}
		wrote = true
		p = q
	}
	if wrote && live {
		// The extent conversions commit here, off the add path (a new
		// segment is synced by createSegment). The syncer shares the file:
		// an error seen here might not be reported to it again, so it
		// fails the directory as the syncer's own would.
		if err := f.Sync(); err != nil {
			d.fail(d.ioErr(fmt.Sprintf("fdatasync segment %s after zero-fill", f.Name()), err))
			return err
		}
	}
	return nil
}
