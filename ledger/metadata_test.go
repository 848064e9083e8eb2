package ledger

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

var update = flag.Bool("update", false, "rewrite golden files")

// bkVersion3 is the format-version-3 metadata in BookKeeper's own test
// (TestLedgerMetadataSerDe.version3, written by BookKeeper's Java
// serializer): E=3 W=2 A=1, OPEN, one segment of 192.0.2.{1,2,3}:3181,
// CRC32C, password "foobar", ctime -1, cToken 0.
const bkVersion3 = "Qm9va2llTWV0YWRhdGFGb3JtYXRWZXJzaW9uCTMKYAgCEAMYACD///////////8BKAEyMgoOMTkyL" +
	"jAuMi4xOjMxODEKDjE5Mi4wLjIuMjozMTgxCg4xOTIuMC4yLjM6MzE4MRAAOANCBmZvb2JhckgB" +
	"UP///////////wFgAA=="

func TestMetadataBookKeeperFixture(t *testing.T) {
	raw, err := base64.StdEncoding.DecodeString(bkVersion3)
	if err != nil {
		t.Fatal(err)
	}
	m, err := UnmarshalMetadata(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := &Metadata{
		EnsembleSize: 3, WriteQuorum: 2, AckQuorum: 1, State: StateOpen,
		LastEntry: base.InvalidEntry, Length: 0,
		Segments:   []Segment{{FirstEntry: 0, Bookies: []string{"192.0.2.1:3181", "192.0.2.2:3181", "192.0.2.3:3181"}}},
		DigestType: bk.DigestCRC32C, Password: []byte("foobar"),
		Ctime: -1, HasCtime: true,
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", m, want)
	}
	if got := m.Marshal(); !bytes.Equal(got, raw) {
		t.Fatalf("re-encoded differs from BookKeeper's bytes:\n got %x\nwant %x", got, raw)
	}
}

func sampleMetadata() *Metadata {
	return &Metadata{
		EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2, State: StateClosed,
		LastEntry: 1234, Length: 987654,
		Segments: []Segment{
			{FirstEntry: 0, Bookies: []string{"10.0.0.1:3181", "10.0.0.2:3181", "10.0.0.3:3181"}},
			{FirstEntry: 700, Bookies: []string{"10.0.0.1:3181", "10.0.0.4:3181", "10.0.0.3:3181"}},
		},
		DigestType: bk.DigestCRC32C, Password: []byte("secret"),
		Ctime: 1700000000123, HasCtime: true,
		Custom: map[string][]byte{
			"component":             []byte("managed-ledger"),
			"pulsar/managed-ledger": []byte("public/default/persistent/t"),
			"application":           []byte("pulsar"),
		},
	}
}

// The golden file pins our encoding byte for byte; regenerate with
// go test ./ledger -run TestMetadataGolden -update and review the diff.
func TestMetadataGolden(t *testing.T) {
	path := filepath.Join("testdata", "metadata-v3.golden")
	got := sampleMetadata().Marshal()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding changed:\n got %x\nwant %x", got, want)
	}
	m, err := UnmarshalMetadata(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, sampleMetadata()) {
		t.Fatalf("golden decodes to %+v", m)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	f := func(name string, m *Metadata) {
		t.Helper()
		got, err := UnmarshalMetadata(m.Marshal())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", name, got, m)
		}
	}
	f("sample", sampleMetadata())
	open := sampleMetadata()
	open.State, open.LastEntry, open.Length, open.Custom, open.HasCtime, open.Ctime = StateOpen, -1, 0, nil, false, 0
	open.Password = []byte{}
	f("open", open)
	rec := sampleMetadata()
	rec.State, rec.DigestType, rec.CToken = StateInRecovery, bk.DigestHMAC, 42
	f("in-recovery", rec)
	big := sampleMetadata()
	big.LastEntry, big.Length = 1<<40, 1<<50
	f("big", big)
}

func TestMetadataRejects(t *testing.T) {
	good := sampleMetadata().Marshal()
	body := good[len(metadataHeaderKey)+2:]
	cases := map[string][]byte{
		"empty":         nil,
		"junk":          []byte("hello world"),
		"version 2":     append([]byte(metadataHeaderKey+"2\n"), body...),
		"version junk":  append([]byte(metadataHeaderKey+"x\n"), body...),
		"long version":  []byte(metadataHeaderKey + "123456789123456789\nblah"),
		"truncated":     good[:len(good)-3],
		"no newline":    []byte(metadataHeaderKey + "3"),
		"bad length":    append([]byte(metadataHeaderKey+"3\n"), 0xff, 0xff, 0xff, 0xff, 0x0f),
		"empty message": append([]byte(metadataHeaderKey+"3\n"), 0),
	}
	// W > E is refused by Validate.
	bad := sampleMetadata()
	bad.WriteQuorum = 4
	cases["W>E"] = bad.Marshal()
	dup := sampleMetadata()
	dup.Segments[1].Bookies[1] = dup.Segments[1].Bookies[0]
	cases["repeated bookie"] = dup.Marshal()
	order := sampleMetadata()
	order.Segments[1].FirstEntry = 0
	cases["segments out of order"] = order.Marshal()
	for name, data := range cases {
		if _, err := UnmarshalMetadata(data); !errors.Is(err, ErrMetadata) || !errors.Is(err, base.ErrCorruption) {
			t.Errorf("%s: got %v, want ErrMetadata", name, err)
		}
	}
}

func FuzzUnmarshalMetadata(f *testing.F) {
	raw, _ := base64.StdEncoding.DecodeString(bkVersion3)
	f.Add(raw)
	f.Add(sampleMetadata().Marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := UnmarshalMetadata(data)
		if err != nil {
			return
		}
		again, err := UnmarshalMetadata(m.Marshal())
		if err != nil {
			t.Fatalf("re-encoding of valid metadata does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed %+v into %+v", m, again)
		}
	})
}
