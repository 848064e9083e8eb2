package bufs

// Vec is a write vector: a list of byte slices to be written with one
// vectored write (writev), and the buffers whose references it holds until the
// write is done. bufs does not import net: the connection owner writes
// Slices() with net.Buffers, which uses writev on TCP connections, and then
// calls Reset.
type Vec struct {
	iov  [][]byte
	refs []*Buf
}

// Append adds b to the vector without copying. The caller keeps b alive until
// the vector is written.
func (v *Vec) Append(b []byte) { v.iov = append(v.iov, b) }

// AppendBuf adds buf's bytes to the vector and takes over one reference to
// it, released by Reset.
func (v *Vec) AppendBuf(buf *Buf) {
	v.iov = append(v.iov, buf.Bytes())
	v.refs = append(v.refs, buf)
}

// Slices is the vector's content, in order. net.Buffers(v.Slices()) writes
// it to a connection with writev.
func (v *Vec) Slices() [][]byte { return v.iov }

// Len is the number of bytes in the vector.
func (v *Vec) Len() int {
	n := 0
	for _, b := range v.iov {
		n += len(b)
	}
	return n
}

// Empty reports whether the vector holds nothing.
func (v *Vec) Empty() bool { return len(v.iov) == 0 }

// Reset releases the held references and empties the vector, keeping its
// capacity.
func (v *Vec) Reset() {
	for i, b := range v.refs {
		b.Release()
		v.refs[i] = nil
	}
	for i := range v.iov {
		v.iov[i] = nil
	}
	v.iov = v.iov[:0]
	v.refs = v.refs[:0]
}
