package vfs

import (
	"fmt"
	"path/filepath"
	"testing"
)

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// benchSpan bounds the file a benchmark writes: offsets wrap around inside
// it, so a long run does not fill the disk or memory.
const benchSpan = 64 << 20

// BenchmarkDirectWrite measures one aligned write followed by fdatasync on
// the OS filesystem, with O_DIRECT and through the page cache, into a
// preallocated file (as the journal writes).
func BenchmarkDirectWrite(b *testing.B) {
	for _, mode := range []string{"direct", "buffered"} {
		for _, size := range []int{4 << 10, 64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("mode=%s/size=%s", mode, sizeName(size)), func(b *testing.B) {
				name := filepath.Join(b.TempDir(), "bench")
				f, err := Default.OpenFile(name, OpenOptions{Write: true, Create: true, Direct: mode == "direct"})
				if err != nil {
					b.Skip(err)
				}
				defer f.Close()
				if err := f.Preallocate(0, benchSpan); err != nil {
					b.Fatal(err)
				}
				buf := AlignedBuffer(size, DefaultAlignment)
				for i := range buf {
					buf[i] = byte(i)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				var off int64
				for b.Loop() {
					if _, err := f.WriteAt(buf, off); err != nil {
						b.Fatal(err)
					}
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
					off = (off + int64(size)) % benchSpan
				}
			})
		}
	}
}

// BenchmarkMemFSWrite measures appends to a MemFS file, synced after every
// write or every 16.
func BenchmarkMemFSWrite(b *testing.B) {
	for _, every := range []int{1, 16} {
		for _, size := range []int{4 << 10, 64 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("size=%s/sync=%d", sizeName(size), every), func(b *testing.B) {
				fs := NewMem()
				f, err := fs.Create("/bench")
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				var off int64
				n := 0
				for b.Loop() {
					if _, err := f.WriteAt(buf, off); err != nil {
						b.Fatal(err)
					}
					n++
					if n%every == 0 {
						if err := f.Sync(); err != nil {
							b.Fatal(err)
						}
					}
					off = (off + int64(size)) % benchSpan
				}
			})
		}
	}
}

// BenchmarkInjectorOverhead measures a WriteAt through an Injector with no
// rules and with one rule that never matches, against MemFS.
func BenchmarkInjectorOverhead(b *testing.B) {
	for _, rules := range []int{0, 1} {
		b.Run(fmt.Sprintf("rules=%d", rules), func(b *testing.B) {
			in := NewInjector(NewMem())
			if rules > 0 {
				in.Add(Rule{Ops: []Op{OpSyncDir}})
			}
			f, err := in.Create("/bench")
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 512)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if _, err := f.WriteAt(buf, 0); err != nil {
					b.Fatal(err)
				}
				// MemFS keeps unsynced writes for its crash model.
				if n++; n%1024 == 0 {
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
