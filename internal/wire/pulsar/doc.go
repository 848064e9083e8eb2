// Package pulsar is Magnetar's codec for the Apache Pulsar binary protocol:
// frames, every BaseCommand the broker and the clients exchange, message
// metadata and batches. It is hand-written protobuf (proto2, field numbers
// from PulsarApi.proto), with no generated code and no reflection, and it
// does no I/O.
//
// # Frames
//
// All integers are big-endian. A simple command:
//
//	+------------+--------------+-------------+
//	| total_size | command_size | BaseCommand |
//	| u32        | u32          | protobuf    |
//	+------------+--------------+-------------+
//	total_size = 4 + command_size
//
// A payload command (SEND from a producer, MESSAGE to a consumer):
//
//	+------------+--------------+-------------+ - - - - - - - - - - - - - - - - - - -+
//	| total_size | command_size | BaseCommand | 0x0e02 | size | BrokerEntryMetadata  |
//	| u32        | u32          | protobuf    | u16    | u32  | (MESSAGE, optional)  |
//	+------------+--------------+-------------+ - - - - - - - - - - - - - - - - - - -+
//	+--------+--------+---------------+-----------------+---------+
//	| 0x0e01 | crc32c | metadata_size | MessageMetadata | payload |   <- the entry
//	| u16    | u32    | u32           | protobuf        | bytes   |
//	+--------+--------+---------------+-----------------+---------+
//	crc32c (Castagnoli) covers metadata_size | MessageMetadata | payload.
//
// The part from the 0x0e01 magic to the end is the entry. A broker stores the
// entry exactly as the producer sent it and delivers it unchanged: it never
// re-encodes MessageMetadata (that would drop fields it does not know and
// change the bytes under the checksum). The Go client verifies the magic and
// the CRC of every MESSAGE over the same bytes as the producer computed it
// (pulsar-client-go internal/commands.go, MessageReader.ReadMessageMetadata,
// after skipping an optional 0x0e02 prefix), so a delivery is
// AppendMessageHeader followed by the stored entry in one vectored write.
//
// A batch payload, once uncompressed, is a run of
//
//	| size u32 | SingleMessageMetadata | payload (payload_size bytes) |
//
// read with BatchReader. Compressed batches pass through the broker as they
// are; the per-entry message count is MessageMetadata.num_messages_in_batch.
//
// # Decoding
//
// FrameReader.Next splits a buffer into frames, incrementally: it says when
// it needs more bytes, refuses a frame larger than its maximum as soon as the
// size is known, and verifies the CRC32C of payload frames. Command.Decode
// decodes a BaseCommand into a Command that a connection reuses for every
// frame; MessageMetadata.Decode does the same for metadata. Unknown fields
// are skipped; malformed input returns an error wrapping ErrMalformed (or
// ErrMissingField for an absent required field), never a panic. Strings are
// copied into Go strings (they are on the control path only); byte fields
// alias the input; slices are reused. Decoding SEND, MESSAGE, FLOW and ACK,
// and the metadata of an entry, does not allocate in steady state.
//
// # Encoding
//
// Encoders append to a caller's buffer (AppendFrame, AppendSendFrame,
// AppendMessageHeader, AppendSendReceiptFrame, AppendFlowFrame,
// AppendAckFrame, ...) and do not allocate when it has room. Fields are
// written in field-number order, so the bytes equal protobuf-go's for the
// same fields. Every required field is written; see commands.go for when
// optional ones are. The Go client decodes strictly: a missing required field
// makes it close the connection, which is why the encoders never leave one
// out.
package pulsar
