package journal

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/vfs"
)

// checkpointMagic starts a checkpoint file. Part of the format.
var checkpointMagic = [8]byte{'M', 'G', 'J', 'C', 'K', 'P', 'T', '1'}

const checkpointEntrySize = 16

// SaveCheckpoint writes cp to path atomically and durably: a temporary file
// in the same directory, fdatasync, rename over path, directory sync. After
// it returns, a crash leaves either the old or the new checkpoint, never a
// mix. The format (little-endian) is:
//
//	magic "MGJCKPT1" (8) | count u32 | crc32c u32 over everything after it |
//	count × (dir u32 | file u32 | offset i64)
func SaveCheckpoint(fs vfs.FS, path string, cp Checkpoint) error {
	buf := make([]byte, 16+checkpointEntrySize*len(cp))
	copy(buf, checkpointMagic[:])
	binary.LittleEndian.PutUint32(buf[8:], uint32(len(cp)))
	for i, p := range cp {
		e := buf[16+checkpointEntrySize*i:]
		binary.LittleEndian.PutUint32(e[0:], uint32(p.Dir))
		binary.LittleEndian.PutUint32(e[4:], p.File)
		binary.LittleEndian.PutUint64(e[8:], uint64(p.Offset))
	}
	binary.LittleEndian.PutUint32(buf[12:], crc32.Checksum(buf[16:], crc32.MakeTable(crc32.Castagnoli)))

	if err := vfs.WriteFileAtomic(fs, path, buf); err != nil {
		return fmt.Errorf("journal: save checkpoint: %w", err)
	}
	return nil
}

// LoadCheckpoint reads a checkpoint written by SaveCheckpoint. A missing file
// is the empty checkpoint (replay from the beginning; Replay then refuses to
// start if old segments were already deleted). A damaged file is an error
// wrapping base.ErrCorruption.
func LoadCheckpoint(fs vfs.FS, path string) (Checkpoint, error) {
	f, err := fs.Open(path)
	if vfs.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: load checkpoint: %w", err)
	}
	defer f.Close()
	buf, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("journal: load checkpoint %s: %w", path, err)
	}
	bad := func(why string) error {
		return fmt.Errorf("journal: checkpoint %s: %w: %s", path, base.ErrCorruption, why)
	}
	if len(buf) < 16 || [8]byte(buf[:8]) != checkpointMagic {
		return nil, bad("bad magic or short file")
	}
	n := int(binary.LittleEndian.Uint32(buf[8:]))
	if n > 1<<16 || len(buf) != 16+checkpointEntrySize*n {
		return nil, bad(fmt.Sprintf("%d bytes for %d positions", len(buf), n))
	}
	if crc32.Checksum(buf[16:], crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(buf[12:]) {
		return nil, bad("checksum mismatch")
	}
	cp := make(Checkpoint, n)
	for i := range cp {
		e := buf[16+checkpointEntrySize*i:]
		cp[i] = Pos{
			Dir:    int(binary.LittleEndian.Uint32(e[0:])),
			File:   binary.LittleEndian.Uint32(e[4:]),
			Offset: int64(binary.LittleEndian.Uint64(e[8:])),
		}
		if cp[i].Dir != i || cp[i].Offset < 0 {
			return nil, bad(fmt.Sprintf("position %d is %v", i, cp[i]))
		}
	}
	return cp, nil
}
