package tree

import (
	"encoding/binary"
	"fmt"

	"github.com/magnetar/magnetar/metastore/internal/core"
)

// Op is the kind of a Mutation. The values are part of the embedded store's
// log format.
type Op uint8

const (
	OpCreate  Op = 1 // create Path (final name) with Data, owned by Owner (0: persistent)
	OpSet     Op = 2 // set Path's data to Data; the version goes up by one
	OpDelete  Op = 3 // delete Path, which has no children
	OpSession Op = 4 // start a session whose id is Zxid
)

func (o Op) String() string {
	switch o {
	case OpCreate:
		return "create"
	case OpSet:
		return "set"
	case OpDelete:
		return "delete"
	case OpSession:
		return "session"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Mutation is one change of the tree, as logged. Applying the same
// mutations to the same state gives the same state: everything a change
// depends on (its zxid, time, final path) is in the mutation.
type Mutation struct {
	Op    Op
	Zxid  int64
	Time  int64 // Unix milliseconds
	Owner int64
	Path  string
	Data  []byte
}

// AppendMutation encodes m after dst. The encoding (all integers varints):
//
//	op u8 | zxid uvarint | time varint | owner varint |
//	len(path) uvarint | path | len(data) uvarint | data
func AppendMutation(dst []byte, m *Mutation) []byte {
	dst = append(dst, byte(m.Op))
	dst = binary.AppendUvarint(dst, uint64(m.Zxid))
	dst = binary.AppendVarint(dst, m.Time)
	dst = binary.AppendVarint(dst, m.Owner)
	dst = binary.AppendUvarint(dst, uint64(len(m.Path)))
	dst = append(dst, m.Path...)
	dst = binary.AppendUvarint(dst, uint64(len(m.Data)))
	dst = append(dst, m.Data...)
	return dst
}

// DecodeMutation decodes a mutation. Data aliases b.
func DecodeMutation(b []byte) (Mutation, error) {
	d := decoder{b: b}
	var m Mutation
	m.Op = Op(d.byte())
	m.Zxid = int64(d.uvarint())
	m.Time = d.varint()
	m.Owner = d.varint()
	m.Path = string(d.bytes())
	m.Data = d.bytes()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err == nil && (m.Op < OpCreate || m.Op > OpSession) {
		d.err = fmt.Errorf("unknown op %d", m.Op)
	}
	if d.err != nil {
		return Mutation{}, fmt.Errorf("%w: mutation: %w", core.ErrCorruption, d.err)
	}
	return m, nil
}

// NodeImage is a node as a snapshot holds it.
type NodeImage struct {
	Path                string
	Data                []byte
	Czxid, Mzxid, Pzxid int64
	Ctime, Mtime        int64
	Version, Cversion   int64
	Owner               int64
}

// Snapshot is the whole tree at Zxid. Nodes are in an order where every
// parent comes before its children; the root comes first.
type Snapshot struct {
	Zxid  int64
	Nodes []NodeImage
}

// AppendNodeImage encodes n after dst:
//
//	len(path) uvarint | path | len(data) uvarint | data |
//	czxid mzxid pzxid uvarint | ctime mtime varint |
//	version cversion varint | owner varint
func AppendNodeImage(dst []byte, n *NodeImage) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(n.Path)))
	dst = append(dst, n.Path...)
	dst = binary.AppendUvarint(dst, uint64(len(n.Data)))
	dst = append(dst, n.Data...)
	dst = binary.AppendUvarint(dst, uint64(n.Czxid))
	dst = binary.AppendUvarint(dst, uint64(n.Mzxid))
	dst = binary.AppendUvarint(dst, uint64(n.Pzxid))
	dst = binary.AppendVarint(dst, n.Ctime)
	dst = binary.AppendVarint(dst, n.Mtime)
	dst = binary.AppendVarint(dst, n.Version)
	dst = binary.AppendVarint(dst, n.Cversion)
	dst = binary.AppendVarint(dst, n.Owner)
	return dst
}

// DecodeNodeImage decodes a node image. Data is copied.
func DecodeNodeImage(b []byte) (NodeImage, error) {
	d := decoder{b: b}
	var n NodeImage
	n.Path = string(d.bytes())
	n.Data = append([]byte{}, d.bytes()...)
	n.Czxid = int64(d.uvarint())
	n.Mzxid = int64(d.uvarint())
	n.Pzxid = int64(d.uvarint())
	n.Ctime = d.varint()
	n.Mtime = d.varint()
	n.Version = d.varint()
	n.Cversion = d.varint()
	n.Owner = d.varint()
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return NodeImage{}, fmt.Errorf("%w: node image: %w", core.ErrCorruption, d.err)
	}
	return n, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated %s", what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail("byte")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("bytes")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
