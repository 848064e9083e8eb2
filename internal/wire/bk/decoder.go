package bk

import "fmt"

// Protocol says which protocol a frame was in.
type Protocol uint8

// Protocols.
const (
	ProtocolV2 Protocol = 2 // BookieProtocol binary frames
	ProtocolV3 Protocol = 3 // BookkeeperProtocol.proto frames
)

func (p Protocol) String() string {
	switch p {
	case ProtocolV2:
		return "v2"
	case ProtocolV3:
		return "v3"
	}
	return fmt.Sprintf("Protocol(%d)", uint8(p))
}

// RequestDecoder decodes the request frames of one server connection,
// telling v2 from v3 the way BookKeeper's RequestDecoder does: a connection
// starts in v3; each frame is first parsed as a v3 Request, and the first
// frame that is not a valid one switches the connection to v2 for good (it
// is then decoded, and every later frame, as v2). A v2 frame can never pass
// for v3: its first byte is the header's version (0, 1 or 2), which as a
// protobuf tag names field 0, and field 0 is invalid.
//
// The decoded request is left in V2 or V3 (whichever Decode reported),
// reused by the next call; its slices alias the frame body. Not safe for
// concurrent use.
type RequestDecoder struct {
	V2 V2Request
	V3 Request

	v2 bool
}

// Decode decodes one frame body. An error means the frame was not a valid
// request in the connection's protocol; BookKeeper closes the connection
// then.
func (d *RequestDecoder) Decode(body []byte) (Protocol, error) {
	if !d.v2 {
		if err := d.V3.Decode(body); err == nil {
			return ProtocolV3, nil
		}
		d.v2 = true
	}
	if err := d.V2.Decode(body); err != nil {
		return ProtocolV2, err
	}
	return ProtocolV2, nil
}

// UsingV2 reports whether the connection has switched to v2.
func (d *RequestDecoder) UsingV2() bool { return d.v2 }
