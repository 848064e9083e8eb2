package journal

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/magnetar/magnetar/internal/record"
	"github.com/magnetar/magnetar/internal/vfs"
)

// KindName is the name Dump prints for a record kind.
func KindName(k record.Kind) string {
	switch k {
	case record.KindEntry:
		return "entry"
	case record.KindPadding:
		return "padding"
	case record.KindFence:
		return "fence"
	case record.KindLAC:
		return "lac"
	case record.KindMeta:
		return "meta"
	case record.KindDelete:
		return "delete"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Dump prints the segments of a journal directory and their records, one
// line each, for operators (`magnetar journal dump DIR`). It only reads; it
// works on a directory a journal has open, though the newest segment may then
// end in a partly written block. Each segment ends with a line saying how it
// ends: "clean end", "stops at OFFSET: REASON" (with "more valid records
// follow at OFFSET" when that is so), or a bad header. Dump returns an error
// only when it cannot read or write; damage is reported in the output.
func Dump(fs vfs.FS, dir string, w io.Writer) error {
	segs, others, err := listSegments(fs, dir)
	if err != nil {
		return err
	}
	pw := &errWriter{w: w}
	pw.printf("journal directory %s: %d segments\n", dir, len(segs))
	for _, name := range others {
		pw.printf("other file %s\n", name)
	}
	for _, seg := range segs {
		visit := func(off int64, h record.Header, p []byte) error {
			switch {
			case h.Kind == record.KindPadding && h.Flags&flagSegmentEnd != 0:
				pw.printf("  %12d padding len=%d marker=%d segment-end\n", off, h.Length, h.Ledger)
			case h.Kind == record.KindPadding:
				pw.printf("  %12d padding len=%d marker=%d\n", off, h.Length, h.Ledger)
			default:
				pw.printf("  %12d %-7s ledger=%d entry=%d len=%d flags=%#x\n", off, KindName(h.Kind), h.Ledger, h.Entry, h.Length, h.Flags)
			}
			if pw.err != nil {
				return errDumpStop
			}
			return nil
		}
		pw.printf("segment %s (file %d)\n", seg.path, seg.num)
		sc, rd, f, err := scanSegment(fs, seg.path, seg.num, record.FileHeaderSize, visit)
		if pw.err != nil {
			return pw.err
		}
		if err != nil {
			if errors.Is(err, errDumpStop) {
				return pw.err
			}
			pw.printf("  cannot read: %v\n", err)
			continue
		}
		zeroed := errors.Is(sc.stop, io.EOF) && sc.end < sc.size && zeroedFrom(f, sc.end, sc.size)
		switch {
		case !sc.headerOK:
			pw.printf("  bad file header: %v (size %d)\n", sc.stop, sc.size)
		case sc.end >= sc.size:
			pw.printf("  clean end at %d: %d records\n", sc.end, sc.records)
		case zeroed:
			pw.printf("  clean end at %d: %d records; zero-filled space follows up to %d\n", sc.end, sc.records, sc.size)
		case sc.ended:
			pw.printf("  segment end at %d: %d records; %d stale bytes of a recycled file follow\n", sc.end, sc.records, sc.size-sc.end)
		default:
			pw.printf("  stops at %d of %d: %v (%d records before)\n", sc.end, sc.size, sc.stop, sc.records)
		}
		if sc.end < sc.size && !sc.ended && !zeroed {
			if p, ok := rd.NextValidAfter(sc.end, scanAlign); ok {
				pw.printf("  more valid records follow at %d\n", p)
			}
		}
		_ = f.Close()
	}
	return pw.err
}

var errDumpStop = errors.New("journal: dump stopped")

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// zeroedFrom reports whether f holds only zeros in [from, to): space
// zero-filled ahead of the writer and never reached.
func zeroedFrom(f io.ReaderAt, from, to int64) bool {
	buf := make([]byte, 1<<20)
	for p := from; p < to; {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), to-p)], p)
		if slices.ContainsFunc(buf[:n], func(c byte) bool { return c != 0 }) {
			return false
		}
		if err != nil {
			return err == io.EOF
		}
		p += int64(n)
	}
	return true
}
