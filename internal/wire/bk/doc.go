// Package bk is Magnetar's codec for Apache BookKeeper's client-bookie wire
// protocol, so that a BookKeeper client (the Java one Pulsar uses, in v2 or
// v3 mode) can talk to a Magnetar bookie, and Magnetar's ledger client to
// either. It owns framing, the v2 binary protocol, the v3 protobuf protocol
// (hand-written: no generated code), the return codes and their mapping to
// Magnetar's error classes, and the entry format with its digests. It does no
// I/O beyond reading frames from an io.Reader it is given, and imports
// neither net nor the engine.
//
// Promises: decoders never panic and never allocate on the hot path (they
// fill reusable structs whose byte slices alias the frame); bad bytes give
// an error wrapping ErrMalformed (or ErrFrameTooLarge); encoders append to
// the caller's buffer, and the frames that carry an entry (ADD requests,
// READ responses, both protocols) are encoded as a head to which the caller
// adds the entry as a separate write vector, so entries are never copied.
//
// # Framing
//
// Every frame of both protocols is a big-endian length and a body:
//
//	+-----------+--------------------+
//	| length n  | body               |
//	| u32 BE    | n bytes            |
//	+-----------+--------------------+
//
// 4+n may not exceed the maximum frame size (DefaultMaxFrameSize =
// 5 MiB + 10 KiB, Pulsar's nettyMaxFrameSizeBytes); a longer or negative
// length is ErrFrameTooLarge and the connection must be closed.
//
// # v2 protocol (BookieProtocol), all integers big-endian
//
// Packet header, the first word of every v2 body (version 0 is the opcode
// alone):
//
//	 31      24 23      16 15                 0
//	+----------+----------+--------------------+
//	| version  | opcode   | flags              |
//	+----------+----------+--------------------+
//	version 2; opcodes 1 ADD, 2 READ, 3 AUTH, 7 BATCH_READ (4-6 exist, unused)
//	flags 0x1 DO_FENCING, 0x2 RECOVERY_ADD, 0x4 HIGH_PRIORITY
//
// Requests (after the length word):
//
//	ADD         | header 4 | master key 20 | entry ...                        |
//	READ        | header 4 | ledger 8 | entry 8 | [master key 20 if fencing]   |
//	BATCH_READ  | header 4 | ledger 8 | entry 8 | request id 8 | max count 4 |
//	            | max size 8 | [master key 20 if fencing]                      |
//	AUTH        | header 4 | AuthMessage (protobuf) ...                        |
//
// The ADD entry is the client's entry (below); the bookie reads its ledger
// and entry ids from the entry's first 16 bytes. The master key of a read is
// present when DO_FENCING is set (and the version is at least 2).
//
// Responses (flags 0; the version echoes the request's):
//
//	ADD         | header 4 | rc 4 | ledger 8 | entry 8 |                 (24 bytes)
//	READ        | header 4 | rc 4 | ledger 8 | entry 8 | entry bytes ... |
//	BATCH_READ  | header 4 | rc 4 | ledger 8 | entry 8 | request id 8 |
//	            | { size 4 | entry bytes } ...                             |
//	AUTH        | header 4 | AuthMessage (protobuf) ...                   |
//
// Return codes (v2 / v3): EOK 0/0, ENOLEDGER 1/402, ENOENTRY 2/403, EBADREQ
// 100/404, EIO 101/501, EUA 102/502, EBADVERSION 103/503, EFENCED 104/504,
// EREADONLY 105/505, ETOOMANYREQUESTS 106/506, EUNKNOWNLEDGERSTATE 107/507.
//
// # v3 protocol (BookkeeperProtocol.proto)
//
// A v3 body is one protobuf message, Request or Response: a BKPacketHeader
// {version 3, operation, txnId, priority} and one sub-message per operation
// (READ_ENTRY, ADD_ENTRY, AUTH, WRITE_LAC, READ_LAC, GET_BOOKIE_INFO,
// START_TLS, FORCE_LEDGER, GET_LIST_OF_ENTRIES_OF_LEDGER); responses carry
// an overall status and a status per sub-response. Decoding follows proto2:
// unknown fields (and known field numbers with an unexpected wire type) are
// skipped, repeated sub-messages merge, required fields must be present.
//
// A server tells the protocols apart per connection as BookKeeper does (see
// RequestDecoder): v3 until a frame fails to parse as a v3 Request, v2 from
// then on. A v2 body starts with its version byte (0-2), which as a protobuf
// tag is field 0, always invalid, so a v2 frame never passes for v3.
//
// # Entries and digests
//
// The entry a BookKeeper client writes (and a bookie stores opaquely):
//
//	+-----------+----------+-------------------+----------------+--------+---------+
//	| ledger 8  | entry 8  | last add confirm. | ledger length  | digest | payload |
//	| i64 BE    | i64 BE   | 8, i64 BE         | 8, i64 BE      | 0-20   | ...     |
//	+-----------+----------+-------------------+----------------+--------+---------+
//
// The digest covers the 32-byte header and the payload (not itself): CRC32C
// as a 4-byte big-endian value (the standard Castagnoli CRC of header ‖
// payload), CRC32 as 8 bytes (4 zero bytes, then the IEEE CRC), HMAC-SHA1 as
// 20 bytes keyed by SHA-1("mac" ‖ password), DUMMY as nothing. An explicit
// LAC blob is | ledger 8 | lac 8 | digest of those 16 bytes |. The master
// key is SHA-1("ledger" ‖ password).
//
// # Deviations from BookKeeper
//
//   - v3 encoding order: fields go in field-number order except that the add
//     request (in a Request) and the read response (in a Response) are
//     written last, with their body field last inside them, so the entry can
//     be a separate write vector. Protobuf parsers accept any order; the
//     bytes differ from protobuf-java's only when an add carries flag or
//     writeFlags, a read response carries maxLAC or lacUpdateTimestamp, or an
//     add request carries context pairs (the fixtures in v3_test.go show
//     both orders, checked against a reference protobuf implementation).
//   - v3 enums: an unknown enum number (operation, status, flag) is kept as
//     a number rather than dropped into unknown fields; protobuf-java would
//     then find a required enum missing and fail the parse. The server can
//     thus answer an unknown operation with EBADREQ, as BookKeeper's newer
//     (LightProto) decoder does.
//   - Strings (auth plugin name, context pairs) are kept as bytes, not
//     checked for UTF-8.
//   - Varints longer than 10 bytes or overflowing 64 bits are errors
//     (protobuf-java reads some of them).
//   - Like BookKeeper, a v2 READ or BATCH_READ with trailing bytes is
//     accepted (they are ignored), and so is an ADD response with trailing
//     bytes; anything shorter than its layout is an error (BookKeeper throws
//     and closes the connection).
//   - The Java client maps v2 return codes to its own statuses and fails on
//     EUNKNOWNLEDGERSTATE (107) over v2; a server should not send it to a v2
//     client.
package bk
