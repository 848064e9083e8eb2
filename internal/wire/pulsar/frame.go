package pulsar

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Format constants. They are part of the wire protocol.
const (
	// MagicChecksum starts the checksummed part of a payload frame.
	MagicChecksum uint16 = 0x0e01
	// MagicBrokerEntryMetadata starts the optional broker entry metadata
	// that a broker may put before MagicChecksum in a MESSAGE frame.
	MagicBrokerEntryMetadata uint16 = 0x0e02

	// DefaultMaxMessageSize is Pulsar's default maxMessageSize (5 MiB), and
	// what the Go client assumes when CONNECTED does not say.
	DefaultMaxMessageSize = 5 << 20
	// FramePadding is the room a frame may take beyond the maximum message
	// size for its command and headers (Pulsar's MESSAGE_SIZE_FRAME_PADDING).
	FramePadding = 10 << 10
	// DefaultMaxFrameSize bounds a frame's total_size by default.
	DefaultMaxFrameSize = DefaultMaxMessageSize + FramePadding

	// EntryHeaderSize is the fixed part of an entry: magic, checksum and
	// metadata size.
	EntryHeaderSize = 2 + 4 + 4
)

// The magics as bytes.
const (
	magicChecksumHi = byte(MagicChecksum >> 8)
	magicChecksumLo = byte(MagicChecksum & 0xff)
	magicBEMHi      = byte(MagicBrokerEntryMetadata >> 8)
	magicBEMLo      = byte(MagicBrokerEntryMetadata & 0xff)
)

// castagnoli is the CRC32C table (read-only after package initialisation).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the CRC32C (Castagnoli) Pulsar puts after the 0x0e01 magic,
// computed over b = metadata_size | metadata | payload.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Frame is one frame split into its parts. Every slice aliases the buffer
// given to FrameReader.Next.
type Frame struct {
	// Command is the encoded BaseCommand; decode it with Command.Decode.
	Command []byte
	// Payload is everything after the command (nil for a simple command):
	// the optional broker entry metadata, then the entry.
	Payload []byte
	// BrokerEntryMetadata is the encoded BrokerEntryMetadata found after a
	// 0x0e02 magic, nil when absent.
	BrokerEntryMetadata []byte
	// Entry runs from the 0x0e01 magic to the end of the frame: the bytes
	// a broker stores and delivers unchanged. Nil when the payload has no
	// checksum magic (clients older than protocol v6).
	Entry []byte
	// Checksum is the CRC32C the frame carries; HasChecksum says whether
	// it carries one.
	Checksum    uint32
	HasChecksum bool
	// Metadata is the encoded MessageMetadata; decode it with
	// MessageMetadata.Decode.
	Metadata []byte
	// Body is the message payload after the metadata: one message, a batch
	// or a chunk, possibly compressed or encrypted.
	Body []byte
}

// FrameReader splits a byte stream into frames. The zero value is ready to
// use with the defaults.
type FrameReader struct {
	// MaxFrameSize bounds a frame's total_size field (the bytes after it).
	// Zero means DefaultMaxFrameSize. Set it to the advertised maximum
	// message size plus FramePadding.
	MaxFrameSize int
	// SkipChecksum turns off CRC32C verification of payload frames (for a
	// proxy that forwards them untouched).
	SkipChecksum bool
}

func (r *FrameReader) maxFrameSize() int {
	if r.MaxFrameSize <= 0 {
		return DefaultMaxFrameSize
	}
	return r.MaxFrameSize
}

// FrameLen returns the number of bytes of the frame that starts buf, as far
// as buf tells: 4 + total_size once the size field is in buf, and 4 before.
// A reader that got (0, nil) from Next needs at least this many bytes.
func FrameLen(buf []byte) int {
	if len(buf) < 4 {
		return 4
	}
	return 4 + int(binary.BigEndian.Uint32(buf))
}

// Next parses the frame at the start of buf into f and returns its length.
//
// If buf does not hold the whole frame yet, Next returns 0 and a nil error
// (FrameLen tells how much it needs). A total_size above MaxFrameSize is
// refused as soon as the size field is in buf, with ErrFrameTooLarge, so an
// oversize frame is never buffered. Sizes that do not add up give
// ErrMalformed. After any of these the stream cannot be resynchronised.
//
// A payload frame whose checksum does not match gives an error wrapping
// ErrChecksum together with the frame's full length and a filled f, so that
// the caller can decode f.Command and answer (SEND_ERROR ChecksumError)
// before closing.
func (r *FrameReader) Next(buf []byte, f *Frame) (int, error) {
	if len(buf) < 4 {
		return 0, nil
	}
	total := binary.BigEndian.Uint32(buf)
	if max := r.maxFrameSize(); uint64(total) > uint64(max) {
		return 0, fmt.Errorf("%w: total_size %d exceeds the maximum %d", ErrFrameTooLarge, total, max)
	}
	if total < 4 {
		return 0, fmt.Errorf("%w: frame total_size %d cannot hold a command size", ErrMalformed, total)
	}
	n := 4 + int(total)
	if len(buf) < n {
		return 0, nil
	}
	frame := buf[4:n:n]
	cmdSize := binary.BigEndian.Uint32(frame)
	if uint64(cmdSize) > uint64(len(frame)-4) {
		return 0, fmt.Errorf("%w: command_size %d exceeds total_size %d - 4", ErrMalformed, cmdSize, total)
	}
	*f = Frame{Command: frame[4 : 4+cmdSize : 4+cmdSize]}
	if rest := frame[4+cmdSize:]; len(rest) > 0 {
		f.Payload = rest
		if err := parsePayload(rest, !r.SkipChecksum, f); err != nil {
			if _, ok := err.(*checksumError); ok {
				return n, err
			}
			return 0, err
		}
	}
	return n, nil
}

// checksumError is the concrete error for a checksum mismatch, so Next can
// tell it from the fatal ones without errors.Is.
type checksumError struct{ got, want uint32 }

func (e *checksumError) Error() string {
	return fmt.Sprintf("%v: frame carries 0x%08x, bytes give 0x%08x", ErrChecksum, e.got, e.want)
}

func (e *checksumError) Unwrap() error { return ErrChecksum }

// parsePayload splits a frame's payload:
// [0x0e02 | size | BrokerEntryMetadata] [0x0e01 | crc32c | size | MessageMetadata | body],
// or, without the checksum magic, [size | MessageMetadata | body].
func parsePayload(p []byte, verify bool, f *Frame) error {
	if len(p) >= 2 && binary.BigEndian.Uint16(p) == MagicBrokerEntryMetadata {
		if len(p) < 6 {
			return fmt.Errorf("%w: truncated broker entry metadata header", ErrMalformed)
		}
		size := binary.BigEndian.Uint32(p[2:])
		if uint64(size) > uint64(len(p)-6) {
			return fmt.Errorf("%w: broker entry metadata size %d past the end", ErrMalformed, size)
		}
		f.BrokerEntryMetadata = p[6 : 6+size : 6+size]
		p = p[6+size:]
	}
	if len(p) >= 2 && binary.BigEndian.Uint16(p) == MagicChecksum {
		f.Entry = p
		md, body, crc, err := splitEntry(p, verify)
		f.Metadata, f.Body, f.Checksum, f.HasChecksum = md, body, crc, true
		return err
	}
	// No checksum magic: [metadata_size | metadata | body].
	if len(p) < 4 {
		return fmt.Errorf("%w: payload of %d bytes has neither magic nor metadata size", ErrMalformed, len(p))
	}
	size := binary.BigEndian.Uint32(p)
	if uint64(size) > uint64(len(p)-4) {
		return fmt.Errorf("%w: metadata size %d past the end", ErrMalformed, size)
	}
	f.Metadata, f.Body = p[4:4+size:4+size], p[4+size:]
	return nil
}

// splitEntry splits an entry (from the 0x0e01 magic) into metadata and
// body. With verify, a checksum mismatch returns a *checksumError along with
// the split parts.
func splitEntry(e []byte, verify bool) (md, body []byte, crc uint32, err error) {
	if len(e) < 2 || binary.BigEndian.Uint16(e) != MagicChecksum {
		return nil, nil, 0, ErrBadMagic
	}
	if len(e) < EntryHeaderSize {
		return nil, nil, 0, fmt.Errorf("%w: entry of %d bytes is shorter than its header", ErrMalformed, len(e))
	}
	crc = binary.BigEndian.Uint32(e[2:])
	size := binary.BigEndian.Uint32(e[6:])
	if uint64(size) > uint64(len(e)-EntryHeaderSize) {
		return nil, nil, 0, fmt.Errorf("%w: metadata size %d past the end", ErrMalformed, size)
	}
	md = e[EntryHeaderSize : EntryHeaderSize+size : EntryHeaderSize+size]
	body = e[EntryHeaderSize+size:]
	if verify {
		if got := Checksum(e[6:]); got != crc {
			return md, body, crc, &checksumError{got: crc, want: got}
		}
	}
	return md, body, crc, nil
}

// ParseEntry splits a stored entry (0x0e01 | crc32c | metadata_size |
// metadata | body) into its metadata and body after verifying the checksum.
// It fails with ErrBadMagic, ErrMalformed or ErrChecksum.
func ParseEntry(entry []byte) (metadata, body []byte, err error) {
	md, body, _, err := splitEntry(entry, true)
	if err != nil {
		return nil, nil, err
	}
	return md, body, nil
}

// ---- encoding ----

// beginFrame reserves total_size and command_size, writes the BaseCommand
// type and opens the sub-message of type t.
func beginFrame(dst []byte, t Type) (out []byte, frame, sub int) {
	frame = len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = appendInt32(dst, 1, int32(t))
	dst, sub = beginMessage(dst, int(t))
	return dst, frame, sub
}

// endCommand closes the sub-message and fills in command_size, and
// total_size for a frame of the command plus extra bytes that the caller
// appends or sends separately.
func endCommand(dst []byte, frame, sub, extra int) []byte {
	dst = endMessage(dst, sub)
	cmdSize := len(dst) - frame - 8
	binary.BigEndian.PutUint32(dst[frame+4:], uint32(cmdSize))
	binary.BigEndian.PutUint32(dst[frame:], uint32(cmdSize+4+extra))
	return dst
}

// AppendFrame appends a simple command frame (total_size | command_size |
// BaseCommand) holding c's command of type c.Type.
func AppendFrame(dst []byte, c *Command) []byte {
	frame := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = AppendBaseCommand(dst, c)
	cmdSize := len(dst) - frame - 8
	binary.BigEndian.PutUint32(dst[frame+4:], uint32(cmdSize))
	binary.BigEndian.PutUint32(dst[frame:], uint32(cmdSize+4))
	return dst
}

// AppendEntry appends an entry: 0x0e01 | crc32c | metadata_size | metadata
// | payload, with the checksum computed over everything after it.
func AppendEntry(dst []byte, md *MessageMetadata, payload []byte) []byte {
	at := len(dst)
	dst = append(dst, magicChecksumHi, magicChecksumLo, 0, 0, 0, 0, 0, 0, 0, 0)
	dst = md.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[at+6:], uint32(len(dst)-at-EntryHeaderSize))
	dst = append(dst, payload...)
	binary.BigEndian.PutUint32(dst[at+2:], Checksum(dst[at+6:]))
	return dst
}

// AppendEntryRaw is AppendEntry for metadata that is already encoded (for
// example to add a checksum to a payload that arrived without one).
func AppendEntryRaw(dst []byte, metadata, payload []byte) []byte {
	at := len(dst)
	dst = append(dst, magicChecksumHi, magicChecksumLo, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(metadata)))
	dst = append(dst, metadata...)
	dst = append(dst, payload...)
	binary.BigEndian.PutUint32(dst[at+2:], Checksum(dst[at+6:]))
	return dst
}

// AppendSendFrame appends a whole SEND frame: the command, then the entry
// built from md and payload.
func AppendSendFrame(dst []byte, s *CommandSend, md *MessageMetadata, payload []byte) []byte {
	dst, frame, sub := beginFrame(dst, TypeSend)
	dst = endCommand(s.appendTo(dst), frame, sub, 0)
	dst = AppendEntry(dst, md, payload)
	binary.BigEndian.PutUint32(dst[frame:], uint32(len(dst)-frame-4))
	return dst
}

// AppendSendHeader appends the part of a SEND frame before an entry of
// entryLen bytes that the caller sends right after it (a resend of stored
// bytes, without copying them).
func AppendSendHeader(dst []byte, s *CommandSend, entryLen int) []byte {
	dst, frame, sub := beginFrame(dst, TypeSend)
	return endCommand(s.appendTo(dst), frame, sub, entryLen)
}

// AppendMessageHeader appends the part of a MESSAGE frame that precedes the
// stored entry: total_size | command_size | BaseCommand{MESSAGE}, then, when
// bem is not nil, 0x0e02 | size | BrokerEntryMetadata. total_size counts
// the entry's entryLen bytes, which the caller writes right after the header
// (a vectored write of the stored buffer, no copy). The entry is the SEND's
// bytes from the 0x0e01 magic to the end, unchanged: the checksum the
// producer computed still covers them, and the client verifies it.
func AppendMessageHeader(dst []byte, m *CommandMessage, bem *BrokerEntryMetadata, entryLen int) []byte {
	dst, frame, sub := beginFrame(dst, TypeMessage)
	dst = endCommand(m.appendTo(dst), frame, sub, 0)
	if bem != nil {
		at := len(dst)
		dst = append(dst, magicBEMHi, magicBEMLo, 0, 0, 0, 0)
		dst = bem.AppendTo(dst)
		binary.BigEndian.PutUint32(dst[at+2:], uint32(len(dst)-at-6))
	}
	binary.BigEndian.PutUint32(dst[frame:], uint32(len(dst)-frame-4+entryLen))
	return dst
}

// AppendMessageFrame appends a whole MESSAGE frame, copying entry. The
// broker's delivery path uses AppendMessageHeader instead.
func AppendMessageFrame(dst []byte, m *CommandMessage, bem *BrokerEntryMetadata, entry []byte) []byte {
	return append(AppendMessageHeader(dst, m, bem, len(entry)), entry...)
}

// AppendSendReceiptFrame appends a SEND_RECEIPT frame.
func AppendSendReceiptFrame(dst []byte, r *CommandSendReceipt) []byte {
	dst, frame, sub := beginFrame(dst, TypeSendReceipt)
	return endCommand(r.appendTo(dst), frame, sub, 0)
}

// AppendFlowFrame appends a FLOW frame.
func AppendFlowFrame(dst []byte, consumerID uint64, permits uint32) []byte {
	dst, frame, sub := beginFrame(dst, TypeFlow)
	dst = appendUint64(dst, 1, consumerID)
	dst = appendUint64(dst, 2, uint64(permits))
	return endCommand(dst, frame, sub, 0)
}

// AppendAckFrame appends an ACK frame.
func AppendAckFrame(dst []byte, a *CommandAck) []byte {
	dst, frame, sub := beginFrame(dst, TypeAck)
	return endCommand(a.appendTo(dst), frame, sub, 0)
}

// AppendPingFrame appends a PING frame.
func AppendPingFrame(dst []byte) []byte {
	dst, frame, sub := beginFrame(dst, TypePing)
	return endCommand(dst, frame, sub, 0)
}

// AppendPongFrame appends a PONG frame.
func AppendPongFrame(dst []byte) []byte {
	dst, frame, sub := beginFrame(dst, TypePong)
	return endCommand(dst, frame, sub, 0)
}

// AppendSuccessFrame appends a SUCCESS frame for requestID.
func AppendSuccessFrame(dst []byte, requestID uint64) []byte {
	dst, frame, sub := beginFrame(dst, TypeSuccess)
	dst = appendUint64(dst, 1, requestID)
	return endCommand(dst, frame, sub, 0)
}

// AppendErrorFrame appends an ERROR frame for requestID.
func AppendErrorFrame(dst []byte, requestID uint64, code ServerError, message string) []byte {
	dst, frame, sub := beginFrame(dst, TypeError)
	m := CommandError{RequestID: requestID, Error: code, Message: message}
	return endCommand(m.appendTo(dst), frame, sub, 0)
}
