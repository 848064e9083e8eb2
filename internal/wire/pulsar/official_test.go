package pulsar

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode"

	// Linking the official client registers its generated protobuf types
	// (package pulsar.proto) in protobuf-go's global registry; the tests
	// below use them, through reflection, as the reference encoder and a
	// strict reference decoder. We cannot import its internal package.
	_ "github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

func officialType(t testing.TB, name string) protoreflect.MessageType {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("pulsar.proto." + name))
	if err != nil {
		t.Fatalf("official type %s: %v", name, err)
	}
	return mt
}

// officialMarshal builds an official message from protojson and marshals it
// with protobuf-go (deterministic, required fields checked).
func officialMarshal(t testing.TB, name, js string) (protoreflect.Message, []byte) {
	t.Helper()
	m := officialType(t, name).New()
	if err := protojson.Unmarshal([]byte(js), m.Interface()); err != nil {
		t.Fatalf("protojson %s: %v\n%s", name, err, js)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m.Interface())
	if err != nil {
		t.Fatalf("official marshal %s: %v", name, err)
	}
	return m, b
}

// officialUnmarshal decodes b strictly with the official type, as the Go
// client does (a missing required field is an error).
func officialUnmarshal(name string, b []byte) (protoreflect.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName("pulsar.proto." + name))
	if err != nil {
		return nil, err
	}
	m := mt.New()
	return m, proto.Unmarshal(b, m.Interface())
}

func toJSON(m protoreflect.Message) string {
	return protojson.MarshalOptions{UseProtoNames: true}.Format(m.Interface())
}

// TestCommandsMatchOfficialEncoding is the main proof of the codec: for each
// fixture, the official encoder's bytes decode with our codec to the same
// values (compared field by field through reflection, defaults and presence
// included) and re-encode to exactly the same bytes.
func TestCommandsMatchOfficialEncoding(t *testing.T) {
	for _, fx := range commandFixtures {
		t.Run(fx.name, func(t *testing.T) {
			om, want := officialMarshal(t, "BaseCommand", fx.json)
			var c Command
			if err := c.Decode(want); err != nil {
				t.Fatalf("decode: %v", err)
			}
			compareBaseCommand(t, om, &c)
			got := AppendBaseCommand(nil, &c)
			if !bytes.Equal(got, want) {
				back, err := officialUnmarshal("BaseCommand", got)
				t.Fatalf("re-encoded bytes differ\n got %x\nwant %x\n got as official: %v (err %v)",
					got, want, toJSON(back), err)
			}
		})
	}
}

// TestCommandDefaultsMatchOfficial decodes fixtures that leave fields at
// their defaults or carry the Go client's explicit empty values.
func TestCommandDefaultsMatchOfficial(t *testing.T) {
	for _, fx := range decodeOnlyFixtures {
		t.Run(fx.name, func(t *testing.T) {
			om, b := officialMarshal(t, "BaseCommand", fx.json)
			var c Command
			if err := c.Decode(b); err != nil {
				t.Fatalf("decode: %v", err)
			}
			compareBaseCommand(t, om, &c)
			if _, err := officialUnmarshal("BaseCommand", AppendBaseCommand(nil, &c)); err != nil {
				t.Fatalf("official decode of our re-encoding: %v", err)
			}
		})
	}
}

func TestMetadataMatchesOfficialEncoding(t *testing.T) {
	for _, fx := range metadataFixtures {
		t.Run(fx.name, func(t *testing.T) {
			om, want := officialMarshal(t, "MessageMetadata", fx.json)
			var m MessageMetadata
			if err := m.Decode(want); err != nil {
				t.Fatalf("decode: %v", err)
			}
			compareMessage(t, "MessageMetadata", om, reflect.ValueOf(&m).Elem())
			if got := m.AppendTo(nil); !bytes.Equal(got, want) {
				t.Fatalf("re-encoded bytes differ\n got %x\nwant %x", got, want)
			}
		})
	}
	for _, fx := range singleMetadataFixtures {
		t.Run(fx.name, func(t *testing.T) {
			om, want := officialMarshal(t, "SingleMessageMetadata", fx.json)
			var m SingleMessageMetadata
			if err := m.Decode(want); err != nil {
				t.Fatalf("decode: %v", err)
			}
			compareMessage(t, "SingleMessageMetadata", om, reflect.ValueOf(&m).Elem())
			if got := m.AppendTo(nil); !bytes.Equal(got, want) {
				t.Fatalf("re-encoded bytes differ\n got %x\nwant %x", got, want)
			}
		})
	}
	for _, fx := range brokerEntryFixtures {
		t.Run(fx.name, func(t *testing.T) {
			om, want := officialMarshal(t, "BrokerEntryMetadata", fx.json)
			var m BrokerEntryMetadata
			if err := m.Decode(want); err != nil {
				t.Fatalf("decode: %v", err)
			}
			compareMessage(t, "BrokerEntryMetadata", om, reflect.ValueOf(&m).Elem())
			if got := m.AppendTo(nil); !bytes.Equal(got, want) {
				t.Fatalf("re-encoded bytes differ\n got %x\nwant %x", got, want)
			}
		})
	}
}

// TestEveryTypeHasAFixture keeps the fixture list complete: every command
// type of the official protocol is round-tripped above, and our Type names
// equal the official enum names.
func TestEveryTypeHasAFixture(t *testing.T) {
	covered := map[string]bool{}
	for _, fx := range commandFixtures {
		om, _ := officialMarshal(t, "BaseCommand", fx.json)
		fd := om.Descriptor().Fields().ByName("type")
		covered[string(fd.Enum().Values().ByNumber(om.Get(fd).Enum()).Name())] = true
	}
	values := officialType(t, "BaseCommand").Descriptor().Fields().ByName("type").Enum().Values()
	for i := 0; i < values.Len(); i++ {
		v := values.Get(i)
		typ := Type(v.Number())
		if !typ.Known() || typ.String() != string(v.Name()) {
			t.Errorf("official type %s (%d): ours is %v known=%v", v.Name(), v.Number(), typ, typ.Known())
		}
		if !covered[string(v.Name())] {
			t.Errorf("no fixture for %s", v.Name())
		}
	}
	for i := range typeNames {
		if typeNames[i] != "" && values.ByNumber(protoreflect.EnumNumber(i)) == nil {
			t.Errorf("our type %d (%s) is not in the official enum", i, typeNames[i])
		}
	}
}

// TestEncodedZeroCommandsDecodeStrictly encodes every command type from a
// zero Command and decodes it with the official types, which enforce proto2
// required fields the way the Go client does. It proves our encoders never
// leave out a required field (the client closes the connection if they do).
func TestEncodedZeroCommandsDecodeStrictly(t *testing.T) {
	for i := range typeNames {
		if typeNames[i] == "" {
			continue
		}
		c := Command{Type: Type(i)}
		b := AppendBaseCommand(nil, &c)
		if _, err := officialUnmarshal("BaseCommand", b); err != nil {
			t.Errorf("%v: official decode of our encoding: %v (%x)", c.Type, err, b)
		}
		var back Command
		if err := back.Decode(b); err != nil {
			t.Errorf("%v: our decode of our encoding: %v", c.Type, err)
		}
		if back.Type != c.Type {
			t.Errorf("%v: decoded type %v", c.Type, back.Type)
		}
	}
	var md MessageMetadata
	if _, err := officialUnmarshal("MessageMetadata", md.AppendTo(nil)); err != nil {
		t.Errorf("MessageMetadata: %v", err)
	}
	var smm SingleMessageMetadata
	if _, err := officialUnmarshal("SingleMessageMetadata", smm.AppendTo(nil)); err != nil {
		t.Errorf("SingleMessageMetadata: %v", err)
	}
}

// TestOfficialDecoderRejectsWhatWeReject checks that our decoder's
// required-field checks agree with the official decoder's on commands with
// fields removed: for each fixture, dropping each top-level field of the
// sub-message in turn must make both decoders fail, or neither.
func TestOfficialDecoderRejectsWhatWeReject(t *testing.T) {
	for _, fx := range commandFixtures {
		om, _ := officialMarshal(t, "BaseCommand", fx.json)
		typ := om.Get(om.Descriptor().Fields().ByName("type")).Enum()
		sfd := om.Descriptor().Fields().ByNumber(protoreflect.FieldNumber(typ))
		if !om.Has(sfd) {
			continue
		}
		sub := om.Get(sfd).Message()
		fields := sub.Descriptor().Fields()
		for i := 0; i < fields.Len(); i++ {
			fd := fields.Get(i)
			if !sub.Has(fd) {
				continue
			}
			cp := proto.Clone(om.Interface()).ProtoReflect()
			cp.Mutable(sfd).Message().Clear(fd)
			b, err := proto.MarshalOptions{AllowPartial: true, Deterministic: true}.Marshal(cp.Interface())
			if err != nil {
				t.Fatal(err)
			}
			_, officialErr := officialUnmarshal("BaseCommand", b)
			var c Command
			ourErr := c.Decode(b)
			if (officialErr == nil) != (ourErr == nil) {
				t.Errorf("%s without %s: official err %v, ours %v", fx.name, fd.Name(), officialErr, ourErr)
			}
		}
	}
}

// ---- reflective comparison of official messages and our structs ----

// goFieldOverrides names our fields that do not follow from the proto names.
var goFieldOverrides = map[string]string{
	"BaseCommand.partitionMetadata":            "PartitionedMetadata",
	"BaseCommand.partitionMetadataResponse":    "PartitionedMetadataResponse",
	"BaseCommand.lookupTopic":                  "Lookup",
	"BaseCommand.lookupTopicResponse":          "LookupResponse",
	"CommandAck.message_id":                    "MessageIDs",
	"KeySharedMeta.keySharedMode":              "Mode",
	"CommandAddSubscriptionToTxn.subscription": "Subscriptions",
	"CommandWatchTopicListSuccess.topic":       "Topics",
}

// goName converts a proto field name (snake_case or lowerCamel) to ours.
func goName(msg string, fd protoreflect.FieldDescriptor) string {
	if n, ok := goFieldOverrides[msg+"."+string(fd.Name())]; ok {
		return n
	}
	var words []string
	cur := []rune{}
	for _, r := range string(fd.Name()) {
		switch {
		case r == '_':
			words = append(words, string(cur))
			cur = cur[:0]
		case unicode.IsUpper(r) && len(cur) > 0:
			words = append(words, string(cur))
			cur = append(cur[:0], unicode.ToLower(r))
		default:
			cur = append(cur, r)
		}
	}
	words = append(words, string(cur))
	var sb strings.Builder
	for _, w := range words {
		switch w {
		case "id", "url", "tls", "uuid", "ttl":
			sb.WriteString(strings.ToUpper(w))
		case "ids":
			sb.WriteString("IDs")
		default:
			sb.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return sb.String()
}

func compareBaseCommand(t *testing.T, om protoreflect.Message, c *Command) {
	t.Helper()
	fields := om.Descriptor().Fields()
	typ := om.Get(fields.ByName("type")).Enum()
	if int32(c.Type) != int32(typ) {
		t.Fatalf("type: got %v want %d", c.Type, typ)
	}
	sfd := fields.ByNumber(protoreflect.FieldNumber(typ))
	if typ == protoreflect.EnumNumber(TypePing) || typ == protoreflect.EnumNumber(TypePong) {
		return
	}
	name := goName("BaseCommand", sfd)
	fv := reflect.ValueOf(c).Elem().FieldByName(name)
	if !fv.IsValid() {
		t.Fatalf("Command has no field %s for %s", name, sfd.Name())
	}
	compareMessage(t, string(sfd.Message().Name()), om.Get(sfd).Message(), fv)
}

// compareMessage compares every field of the official message om (its value,
// or its declared default when unset) with the matching field of our struct
// ours, and a HasX flag, where we have one, with om.Has.
func compareMessage(t *testing.T, path string, om protoreflect.Message, ours reflect.Value) {
	t.Helper()
	msg := string(om.Descriptor().Name())
	fields := om.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		name := goName(msg, fd)
		p := path + "." + name
		fv := ours.FieldByName(name)
		if !fv.IsValid() {
			t.Errorf("%s: our %s has no field %s (proto %s)", p, ours.Type(), name, fd.Name())
			continue
		}
		if has := ours.FieldByName("Has" + name); has.IsValid() && has.Bool() != om.Has(fd) {
			t.Errorf("%s: Has%s = %v, official has = %v", p, name, has.Bool(), om.Has(fd))
		}
		if fd.IsList() {
			list := om.Get(fd).List()
			if list.Len() != fv.Len() {
				t.Errorf("%s: %d elements, official %d", p, fv.Len(), list.Len())
				continue
			}
			for j := 0; j < list.Len(); j++ {
				compareValue(t, fmt.Sprintf("%s[%d]", p, j), fd, list.Get(j), fv.Index(j))
			}
			continue
		}
		compareValue(t, p, fd, om.Get(fd), fv)
	}
}

func compareValue(t *testing.T, p string, fd protoreflect.FieldDescriptor, v protoreflect.Value, fv reflect.Value) {
	t.Helper()
	switch fd.Kind() {
	case protoreflect.MessageKind:
		if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Uint8 {
			// We keep this sub-message encoded.
			var want []byte
			if v.Message().IsValid() {
				var err error
				want, err = proto.MarshalOptions{Deterministic: true}.Marshal(v.Message().Interface())
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(fv.Bytes(), want) {
				t.Errorf("%s: raw %x, official %x", p, fv.Bytes(), want)
			}
			return
		}
		compareMessage(t, p, v.Message(), fv)
	case protoreflect.EnumKind:
		if fv.Int() != int64(v.Enum()) {
			t.Errorf("%s: %d, official %d", p, fv.Int(), v.Enum())
		}
	case protoreflect.BoolKind:
		if fv.Bool() != v.Bool() {
			t.Errorf("%s: %v, official %v", p, fv.Bool(), v.Bool())
		}
	case protoreflect.StringKind, protoreflect.BytesKind:
		var got, want string
		if fv.Kind() == reflect.String {
			got = fv.String()
		} else {
			got = string(fv.Bytes())
		}
		if fd.Kind() == protoreflect.StringKind {
			want = v.String()
		} else {
			want = string(v.Bytes())
		}
		if got != want {
			t.Errorf("%s: %q, official %q", p, got, want)
		}
	case protoreflect.Int32Kind, protoreflect.Int64Kind, protoreflect.Sint32Kind, protoreflect.Sint64Kind:
		if fv.Int() != v.Int() {
			t.Errorf("%s: %d, official %d", p, fv.Int(), v.Int())
		}
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind:
		if fv.Uint() != v.Uint() {
			t.Errorf("%s: %d, official %d", p, fv.Uint(), v.Uint())
		}
	case protoreflect.DoubleKind:
		if fv.Float() != v.Float() {
			t.Errorf("%s: %v, official %v", p, fv.Float(), v.Float())
		}
	default:
		t.Errorf("%s: unhandled kind %v", p, fd.Kind())
	}
}
