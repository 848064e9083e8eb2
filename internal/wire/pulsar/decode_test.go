package pulsar

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// unknownFields is one unknown field of every wire type, groups included,
// with field numbers no Pulsar message uses.
func unknownFields() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1000, protowire.VarintType)
	b = protowire.AppendVarint(b, 1<<63)
	b = protowire.AppendTag(b, 1001, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 7)
	b = protowire.AppendTag(b, 1002, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("unknown"))
	b = protowire.AppendTag(b, 1003, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 9)
	b = protowire.AppendTag(b, 1004, protowire.StartGroupType)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 5)
	b = protowire.AppendTag(b, 2, protowire.StartGroupType)
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("nested"))
	b = protowire.AppendTag(b, 2, protowire.EndGroupType)
	b = protowire.AppendTag(b, 1004, protowire.EndGroupType)
	return b
}

// TestUnknownFieldsAreSkipped adds unknown fields of every wire type to the
// BaseCommand, to the command's sub-message and to every nested message, and
// checks that we decode the same values as without them (and that the
// official decoder agrees the input is valid).
func TestUnknownFieldsAreSkipped(t *testing.T) {
	unk := unknownFields()
	var addUnknown func(m protoreflect.Message)
	addUnknown = func(m protoreflect.Message) {
		m.SetUnknown(append(m.GetUnknown(), unk...))
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.Name() == "first_chunk_message_id" || fd.Name() == "encryption_keys":
				// Kept raw by us: their bytes, unknown fields included,
				// are preserved rather than decoded.
			case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
				for i := 0; i < v.List().Len(); i++ {
					addUnknown(v.List().Get(i).Message())
				}
			case fd.Kind() == protoreflect.MessageKind:
				addUnknown(v.Message())
			}
			return true
		})
	}
	for _, fx := range commandFixtures {
		om, clean := officialMarshal(t, "BaseCommand", fx.json)
		addUnknown(om)
		noisy, err := proto.MarshalOptions{Deterministic: true}.Marshal(om.Interface())
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(noisy, clean) {
			t.Fatalf("%s: unknown fields were not added", fx.name)
		}
		var c Command
		if err := c.Decode(noisy); err != nil {
			t.Errorf("%s: decode with unknown fields: %v", fx.name, err)
			continue
		}
		if got := AppendBaseCommand(nil, &c); !bytes.Equal(got, clean) {
			t.Errorf("%s: unknown fields changed the decoded values\n got %x\nwant %x", fx.name, got, clean)
		}
	}
	for _, fx := range metadataFixtures {
		om, clean := officialMarshal(t, "MessageMetadata", fx.json)
		addUnknown(om)
		noisy, _ := proto.MarshalOptions{Deterministic: true}.Marshal(om.Interface())
		var m MessageMetadata
		if err := m.Decode(noisy); err != nil {
			t.Errorf("%s: %v", fx.name, err)
			continue
		}
		if !bytes.Equal(m.AppendTo(nil), clean) {
			t.Errorf("%s: unknown fields changed the decoded metadata", fx.name)
		}
	}
}

// TestWireTypeMismatchIsSkipped: a known field number with an unexpected
// wire type is treated as unknown, as protobuf-go does.
func TestWireTypeMismatchIsSkipped(t *testing.T) {
	var sub []byte
	sub = protowire.AppendTag(sub, 1, protowire.BytesType) // consumer_id as bytes
	sub = protowire.AppendBytes(sub, []byte("x"))
	sub = protowire.AppendTag(sub, 1, protowire.VarintType)
	sub = protowire.AppendVarint(sub, 42)
	sub = protowire.AppendTag(sub, 2, protowire.Fixed32Type) // messagePermits as fixed32
	sub = protowire.AppendFixed32(sub, 1)
	sub = protowire.AppendTag(sub, 2, protowire.VarintType)
	sub = protowire.AppendVarint(sub, 7)
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(TypeFlow))
	b = protowire.AppendTag(b, protowire.Number(TypeFlow), protowire.BytesType)
	b = protowire.AppendBytes(b, sub)
	var c Command
	if err := c.Decode(b); err != nil {
		t.Fatal(err)
	}
	if c.Flow.ConsumerID != 42 || c.Flow.MessagePermits != 7 {
		t.Fatalf("flow = %+v", c.Flow)
	}
	// With only the mismatched forms, the required fields are missing.
	only := protowire.AppendTag(nil, 1, protowire.BytesType)
	only = protowire.AppendBytes(only, []byte("x"))
	b = protowire.AppendTag(nil, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(TypeFlow))
	b = protowire.AppendTag(b, protowire.Number(TypeFlow), protowire.BytesType)
	b = protowire.AppendBytes(b, only)
	if err := c.Decode(b); !errors.Is(err, ErrMissingField) {
		t.Fatalf("got %v, want ErrMissingField", err)
	}
}

func TestMalformedInputIsAnError(t *testing.T) {
	flowType := []byte{0x08, 0x0b} // type = FLOW
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"truncated varint", []byte{0x08, 0x80}, ErrMalformed},
		{"eleven-byte varint", append([]byte{0x08}, bytes.Repeat([]byte{0xff}, 10)...), ErrMalformed},
		{"varint overflow in tenth byte", append(append([]byte{0x08}, bytes.Repeat([]byte{0xff}, 9)...), 0x02), ErrMalformed},
		{"field number zero", []byte{0x00, 0x01}, ErrMalformed},
		{"wire type 6", []byte{0x0e}, ErrMalformed},
		{"wire type 7", []byte{0x0f}, ErrMalformed},
		{"end group without start", []byte{0x0c}, ErrMalformed},
		{"length past the end", append(append([]byte{}, flowType...), 0x5a, 0x05, 0x08), ErrMalformed},
		{"huge length", append(append([]byte{}, flowType...), 0x5a, 0xff, 0xff, 0xff, 0xff, 0x0f), ErrMalformed},
		{"truncated fixed64", []byte{0x09, 1, 2}, ErrMalformed},
		{"truncated fixed32", []byte{0x0d, 1}, ErrMalformed},
		{"unterminated group", []byte{0xa3, 0x3e, 0x08, 0x01}, ErrMalformed},
		{"mismatched end group", []byte{0xa3, 0x3e, 0xac, 0x3e}, ErrMalformed},
		{"bad varint inside sub-message", append(append([]byte{}, flowType...), 0x5a, 0x02, 0x08, 0x80), ErrMalformed},
		{"no type", []byte{}, ErrMissingField},
		{"no sub-message", flowType, ErrMissingField},
		{"empty sub-message", append(append([]byte{}, flowType...), 0x5a, 0x00), ErrMissingField},
	}
	for _, tc := range cases {
		var c Command
		err := c.Decode(tc.in)
		if !errors.Is(err, tc.want) || !errors.Is(err, base.ErrCorruption) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	// Groups nested deeper than the skipper allows.
	deep := []byte{0x08, 0x12} // type = PING
	for i := 0; i < maxGroupDepth+1; i++ {
		deep = protowire.AppendTag(deep, 1000, protowire.StartGroupType)
	}
	var c Command
	if err := c.Decode(deep); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "deeply") {
		t.Errorf("deep groups: %v", err)
	}
	// Packed ack_set with a broken varint.
	var id []byte
	id = protowire.AppendTag(id, 1, protowire.VarintType)
	id = protowire.AppendVarint(id, 1)
	id = protowire.AppendTag(id, 2, protowire.VarintType)
	id = protowire.AppendVarint(id, 1)
	id = protowire.AppendTag(id, 5, protowire.BytesType)
	id = protowire.AppendBytes(id, []byte{0x80})
	var m MessageIDData
	if err := DecodeMessageID(&m, id); !errors.Is(err, ErrMalformed) {
		t.Errorf("packed ack_set: %v", err)
	}
}

// TestEveryPrefixIsSafe decodes every prefix of every fixture: each must
// either decode or fail with one of our errors (a panic fails the test).
func TestEveryPrefixIsSafe(t *testing.T) {
	for _, fx := range commandFixtures {
		_, b := officialMarshal(t, "BaseCommand", fx.json)
		var c Command
		for i := 0; i < len(b); i++ {
			if err := c.Decode(b[:i]); err != nil && !errors.Is(err, base.ErrCorruption) {
				t.Fatalf("%s[:%d]: unclassified error %v", fx.name, i, err)
			}
		}
	}
}

func TestPackedAckSetAccepted(t *testing.T) {
	var id []byte
	id = protowire.AppendTag(id, 1, protowire.VarintType)
	id = protowire.AppendVarint(id, 3)
	id = protowire.AppendTag(id, 2, protowire.VarintType)
	id = protowire.AppendVarint(id, 4)
	var packed []byte
	for _, w := range []int64{-1, 5, 1 << 40} {
		packed = protowire.AppendVarint(packed, uint64(w))
	}
	id = protowire.AppendTag(id, 5, protowire.BytesType)
	id = protowire.AppendBytes(id, packed)
	id = protowire.AppendTag(id, 5, protowire.VarintType) // and one unpacked
	id = protowire.AppendVarint(id, 9)
	var m MessageIDData
	if err := DecodeMessageID(&m, id); err != nil {
		t.Fatal(err)
	}
	if want := []int64{-1, 5, 1 << 40, 9}; len(m.AckSet) != 4 || m.AckSet[0] != want[0] ||
		m.AckSet[1] != want[1] || m.AckSet[2] != want[2] || m.AckSet[3] != want[3] {
		t.Fatalf("ack set %v, want %v", m.AckSet, want)
	}
}

// TestDecodeReuseForgetsPreviousValues decodes a large command and then a
// small one into the same Command: nothing of the first may show through.
func TestDecodeReuseForgetsPreviousValues(t *testing.T) {
	decode := func(c *Command, name string) {
		t.Helper()
		for _, fx := range append(append([]struct{ name, json string }{}, commandFixtures...), decodeOnlyFixtures...) {
			if fx.name == name {
				_, b := officialMarshal(t, "BaseCommand", fx.json)
				if err := c.Decode(b); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		t.Fatalf("no fixture %s", name)
	}
	pairs := [][2]string{
		{"ack", "ack_individual"},
		{"subscribe", "subscribe_min"},
		{"subscribe", "subscribe_defaults"},
		{"producer", "producer_defaults"},
		{"send", "send_min"},
		{"message", "message_min"},
		{"success", "success_min"},
		{"get_topics_of_namespace_response", "topics_response_defaults"},
		{"producer_success", "producer_success_defaults"},
		{"lookup_response", "lookup_response_defaults"},
	}
	for _, p := range pairs {
		var reused, fresh Command
		decode(&reused, p[0])
		decode(&reused, p[1])
		decode(&fresh, p[1])
		if a, b := AppendBaseCommand(nil, &reused), AppendBaseCommand(nil, &fresh); !bytes.Equal(a, b) {
			t.Errorf("%s after %s: %x, fresh %x", p[1], p[0], a, b)
		}
	}
	// Metadata too.
	var reused, fresh MessageMetadata
	_, full := officialMarshal(t, "MessageMetadata", metadataFixtures[2].json)
	_, single := officialMarshal(t, "MessageMetadata", metadataFixtures[0].json)
	if err := reused.Decode(full); err != nil {
		t.Fatal(err)
	}
	if err := reused.Decode(single); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Decode(single); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(reused.AppendTo(nil), fresh.AppendTo(nil)) {
		t.Errorf("metadata reuse leaks values")
	}
}

func TestUnknownCommandType(t *testing.T) {
	var c Command
	for _, typ := range []uint64{0, 1, 45, 69, 1 << 20} {
		b := protowire.AppendTag(nil, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, typ)
		b = protowire.AppendTag(b, 70, protowire.BytesType)
		b = protowire.AppendBytes(b, []byte{0x08, 0x01})
		if err := c.Decode(b); err != nil {
			t.Fatalf("type %d: %v", typ, err)
		}
		if c.Type.Known() || c.Type != Type(typ) {
			t.Fatalf("type %d decoded as %v known=%v", typ, c.Type, c.Type.Known())
		}
		if _, ok := c.RequestID(); ok {
			t.Fatalf("type %d has a request id", typ)
		}
		if got := AppendBaseCommand(nil, &c); !bytes.Equal(got, b[:len(protowire.AppendVarint([]byte{0x08}, typ))]) {
			t.Fatalf("type %d re-encoded as %x", typ, got)
		}
	}
	if Type(99).String() != "Type(99)" || ServerError(99).String() != "ServerError(99)" {
		t.Fatal("String of unknown values")
	}
	// PING and PONG may come without their empty sub-message.
	if err := c.Decode([]byte{0x08, 0x12}); err != nil || c.Type != TypePing {
		t.Fatalf("bare PING: %v", err)
	}
}

// TestRequestIDMatchesOfficial checks RequestID against the request_id field
// of every fixture's sub-message.
func TestRequestIDMatchesOfficial(t *testing.T) {
	for _, fx := range commandFixtures {
		om, b := officialMarshal(t, "BaseCommand", fx.json)
		var c Command
		if err := c.Decode(b); err != nil {
			t.Fatal(err)
		}
		sfd := om.Descriptor().Fields().ByNumber(protoreflect.FieldNumber(c.Type))
		sub := om.Get(sfd).Message()
		fd := sub.Descriptor().Fields().ByName("request_id")
		id, ok := c.RequestID()
		wantOK := fd != nil && sub.Has(fd)
		if ok != wantOK || (ok && id != sub.Get(fd).Uint()) {
			t.Errorf("%s: RequestID() = %d, %v; official has=%v", fx.name, id, ok, wantOK)
		}
	}
}

// TestLongNestedMessages exercises the length fix-up of embedded messages
// (one, two and three byte lengths) against the official encoder.
func TestLongNestedMessages(t *testing.T) {
	for _, n := range []int{0, 100, 127, 128, 300, 16383, 16384, 70000} {
		data := bytes.Repeat([]byte{'x'}, n)
		c := Command{Type: TypeSuccess, Success: CommandSuccess{
			RequestID: 1, HasSchema: true,
			Schema: Schema{Name: "s", SchemaData: data, Type: SchemaAvro},
		}}
		got := AppendBaseCommand(nil, &c)
		om, err := officialUnmarshal("BaseCommand", got)
		if err != nil {
			t.Fatalf("n=%d: official decode: %v", n, err)
		}
		want, _ := proto.MarshalOptions{Deterministic: true}.Marshal(om.Interface())
		if !bytes.Equal(got, want) {
			t.Fatalf("n=%d: differs from official", n)
		}
		var back Command
		if err := back.Decode(got); err != nil || !bytes.Equal(back.Success.Schema.SchemaData, data) {
			t.Fatalf("n=%d: round trip: %v", n, err)
		}
	}
	// A prefix already in dst is left alone.
	prefix := []byte("prefix")
	c := Command{Type: TypeGetTopicsOfNamespaceResponse}
	c.GetTopicsOfNamespaceResponse.Topics = []string{strings.Repeat("t", 200)}
	got := AppendBaseCommand(append([]byte(nil), prefix...), &c)
	if !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], AppendBaseCommand(nil, &c)) {
		t.Fatal("appending after a prefix changed the bytes")
	}
}

func TestNegativeEnumsAndInts(t *testing.T) {
	// Negative int32 and enum values are ten-byte varints, as in protobuf.
	c := Command{Type: TypeGetOrCreateSchema, GetOrCreateSchema: CommandGetOrCreateSchema{
		RequestID: 1, Topic: "t", Schema: Schema{Name: "n", SchemaData: []byte{}, Type: -3},
	}}
	b := AppendBaseCommand(nil, &c)
	var back Command
	if err := back.Decode(b); err != nil || back.GetOrCreateSchema.Schema.Type != -3 {
		t.Fatalf("negative schema type: %v %v", back.GetOrCreateSchema.Schema.Type, err)
	}
	id := MessageIDData{LedgerID: 1, EntryID: 2, Partition: -5, BatchIndex: -1, AckSet: []int64{-1}}
	var got MessageIDData
	if err := DecodeMessageID(&got, id.AppendTo(nil)); err != nil || got.Partition != -5 || got.AckSet[0] != -1 {
		t.Fatalf("negative ints: %+v %v", got, err)
	}
}
