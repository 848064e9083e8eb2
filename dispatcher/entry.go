package dispatcher

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// EntryMeta is what the dispatcher needs to know about an entry.
type EntryMeta struct {
	// NumMessages is the number of messages in the entry (a batch of N
	// takes N permits); at least 1.
	NumMessages int32
	// KeyHash is the entry's sticky key hash in 1..65535 (StickyKeyHash),
	// used by Key_Shared subscriptions.
	KeyHash uint32
	// ServerOnly marks an entry that is never delivered to consumers (a
	// marker written by the broker for itself): the dispatcher acknowledges
	// it when it reads it.
	ServerOnly bool
}

// EntryParser extracts an entry's EntryMeta from its bytes without keeping
// or copying them. A parser that fails returns an error; the dispatcher then
// delivers the entry as one message with the key "NONE_KEY".
type EntryParser func(entry []byte) (EntryMeta, error)

// noneKey is the sticky key of a message without ordering or partition key
// (Pulsar's NONE_KEY).
const noneKey = "NONE_KEY"

// ErrBadEntry: an entry's bytes do not start with a Pulsar entry header.
var ErrBadEntry = errors.New("dispatcher: entry is not a Pulsar message")

// NewPulsarEntryParser returns a parser of entries in the Pulsar format
// (0x0e01 | crc32c | metadata_size | MessageMetadata | payload): the message
// count is num_messages_in_batch, the sticky key is the ordering key if
// present, else the partition key (base64-decoded when flagged so), else
// "NONE_KEY", as Pulsar's Key_Shared dispatcher takes it. Marker messages
// (marker_type set) are server-only. The checksum is not verified: the
// broker checked it when the producer sent the entry.
//
// The parser keeps scratch space, so it is not safe for concurrent use; it
// does not allocate in steady state.
func NewPulsarEntryParser() EntryParser {
	p := &pulsarParser{}
	return p.parse
}

type pulsarParser struct {
	md  pulsar.MessageMetadata
	key []byte // base64-decoded partition key
}

func (p *pulsarParser) parse(entry []byte) (EntryMeta, error) {
	if len(entry) < pulsar.EntryHeaderSize || binary.BigEndian.Uint16(entry) != pulsar.MagicChecksum {
		return EntryMeta{}, ErrBadEntry
	}
	size := binary.BigEndian.Uint32(entry[6:])
	if uint64(size) > uint64(len(entry)-pulsar.EntryHeaderSize) {
		return EntryMeta{}, fmt.Errorf("%w: metadata size %d past the end of a %d-byte entry", ErrBadEntry, size, len(entry))
	}
	md := &p.md
	if err := md.Decode(entry[pulsar.EntryHeaderSize : pulsar.EntryHeaderSize+size]); err != nil && !errors.Is(err, pulsar.ErrMissingField) {
		return EntryMeta{}, err
	}
	m := EntryMeta{NumMessages: int32(md.NumMessages()), ServerOnly: md.HasMarkerType}
	var key []byte
	switch {
	case md.OrderingKey != nil:
		key = md.OrderingKey
	case md.PartitionKey != nil && md.PartitionKeyB64Encoded:
		n := base64.StdEncoding.DecodedLen(len(md.PartitionKey))
		if cap(p.key) < n {
			p.key = make([]byte, n)
		}
		n, err := base64.StdEncoding.Decode(p.key[:n], md.PartitionKey)
		if err == nil {
			key = p.key[:n]
		} else {
			key = md.PartitionKey
		}
	case md.PartitionKey != nil:
		key = md.PartitionKey
	default:
		key = []byte(noneKey)
	}
	m.KeyHash = StickyKeyHash(key)
	return m, nil
}

// KeyHashRange is the number of key hash slots of Key_Shared: hashes are in
// 0..KeyHashRange-1 (Pulsar's DEFAULT_RANGE_SIZE).
const KeyHashRange = 1 << 16

// StickyKeyHash is Pulsar's Key_Shared hash of a sticky key: Murmur3 32-bit
// (seed 0) with the sign bit cleared, modulo 65536, with 0 turned into 1
// (Pulsar keeps 0 for "no hash"). A sticky ranges consumer sees the same
// keys as it would on a Pulsar broker.
func StickyKeyHash(key []byte) uint32 {
	h := (Murmur3(key, 0) & 0x7fffffff) % KeyHashRange
	if h == 0 {
		h = 1
	}
	return h
}

// Murmur3 is MurmurHash3's 32-bit x86 variant.
func Murmur3(data []byte, seed uint32) uint32 {
	const c1, c2 = 0xcc9e2d51, 0x1b873593
	h := seed
	n := len(data)
	for len(data) >= 4 {
		k := binary.LittleEndian.Uint32(data)
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
		h = bits.RotateLeft32(h, 13)
		h = h*5 + 0xe6546b64
		data = data[4:]
	}
	var k uint32
	switch len(data) {
	case 3:
		k ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		k ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		k ^= uint32(data[0])
		k *= c1
		k = bits.RotateLeft32(k, 15)
		k *= c2
		h ^= k
	}
	h ^= uint32(n)
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}
