package vfs

import "unsafe"

// AlignedBuffer returns a zeroed slice of n bytes whose first byte is aligned to
// align (a power of two). Use it for O_DIRECT writes and reads.
func AlignedBuffer(n, align int) []byte {
	if align <= 1 {
		return make([]byte, n)
	}
	buf := make([]byte, n+align)
	off := AlignmentOffset(buf, align)
	return buf[off : off+n : off+n]
}

// AlignmentOffset is how many bytes to skip from the start of b to reach an
// address aligned to align.
func AlignmentOffset(b []byte, align int) int {
	if len(b) == 0 && cap(b) == 0 {
		return 0
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	rem := int(addr & uintptr(align-1))
	if rem == 0 {
		return 0
	}
	return align - rem
}

// IsAligned reports whether b starts at an address aligned to align and has a
// length that is a multiple of align.
func IsAligned(b []byte, align int) bool {
	if len(b)%align != 0 {
		return false
	}
	if len(b) == 0 {
		return true
	}
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))&uintptr(align-1) == 0
}

// AlignUp rounds n up to a multiple of align (a power of two).
func AlignUp(n int64, align int) int64 {
	a := int64(align)
	return (n + a - 1) &^ (a - 1)
}
