package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/vfs"
)

func TestResultRoundTrip(t *testing.T) {
	r := buildSampleResult(t) // built in memory, never through JSON
	var buf bytes.Buffer
	if err := Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	back, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, back) {
		a, _ := json.Marshal(r)
		b, _ := json.Marshal(back)
		t.Fatalf("round trip differs:\n%s\n%s", a, b)
	}
	// The histogram logs decode to the same counts and give the same
	// percentiles as the summaries written next to them.
	hs, err := back.Histograms.Decode()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds() {
		if got, want := Summarize(hs.Get(k)), back.Summary.Latency.Get(k); got != want {
			t.Errorf("%s: decoded cumulative histogram gives %+v, summary says %+v", k, got, want)
		}
	}
	// Interval histograms add up to the cumulative ones.
	perKind := map[Kind][]string{}
	for _, iv := range back.Intervals {
		for _, k := range Kinds() {
			perKind[k] = append(perKind[k], iv.Histograms.Get(k))
		}
	}
	for _, k := range Kinds() {
		m, err := MergeEncoded(perKind[k]...)
		if err != nil {
			t.Fatal(err)
		}
		if !m.Equals(hs.Get(k)) {
			t.Errorf("%s: merged interval histograms differ from the cumulative one", k)
		}
	}
}

func TestWriteFileReadFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "runs", BaseName(sampleResult(t))+".json")
	r := sampleResult(t)
	if err := WriteFile(vfs.Default, name, r); err != nil {
		t.Fatal(err)
	}
	back, err := ReadFile(vfs.Default, name)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r, back) {
		t.Fatal("file round trip differs")
	}
	entries, err := vfs.Default.List(filepath.Dir(name))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || strings.HasSuffix(entries[0], ".tmp") {
		t.Fatalf("directory holds %v, want only the result file", entries)
	}
}

func TestReadRejects(t *testing.T) {
	cases := []struct {
		name, doc string
		want      error
	}{
		{"future version", `{"formatVersion": 2, "scenario": "x"}`, ErrVersion},
		{"zero version", `{"formatVersion": 0}`, ErrVersion},
		{"no version", `{"scenario": "x"}`, ErrFormat},
		{"not json", `scenario: x`, ErrFormat},
		{"bad duration", `{"formatVersion": 1, "workload": {"duration": "ten minutes"}}`, ErrFormat},
	}
	for _, c := range cases {
		_, err := Read(strings.NewReader(c.doc))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestWriteRejectsNonFinite(t *testing.T) {
	r := sampleResult(t)
	r.Intervals[3].PublishRate = math.NaN()
	err := Write(&bytes.Buffer{}, r)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "Intervals[3]") {
		t.Fatalf("err = %v, want ErrFormat naming Intervals[3]", err)
	}
	r = sampleResult(t)
	r.FormatVersion = 7
	if err := Write(&bytes.Buffer{}, r); !errors.Is(err, ErrVersion) {
		t.Fatalf("err = %v, want ErrVersion", err)
	}
	r.FormatVersion = 0
	var buf bytes.Buffer
	if err := Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	if back, err := Read(&buf); err != nil || back.FormatVersion != FormatVersion {
		t.Fatalf("zero version written as %v, %v", back, err)
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(Duration(90 * time.Second))
	if err != nil || string(b) != `"1m30s"` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	var d Duration
	if err := json.Unmarshal([]byte(`"250ms"`), &d); err != nil || d.D() != 250*time.Millisecond {
		t.Fatalf("string: %v, %v", d, err)
	}
	if err := json.Unmarshal([]byte(`1500`), &d); err != nil || d.D() != 1500 {
		t.Fatalf("number: %v, %v", d, err)
	}
}

func TestBaseName(t *testing.T) {
	r := &Result{Scenario: "a b/c", Started: time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC), GitRevision: "0123456789abcdef"}
	if got, want := BaseName(r), "a_b_c-20260102T150405Z-0123456789ab"; got != want {
		t.Fatalf("BaseName = %q, want %q", got, want)
	}
	if got := BaseName(&Result{}); got != "run" {
		t.Fatalf("BaseName of empty = %q", got)
	}
}

func TestComputeEfficiency(t *testing.T) {
	s := Summary{Measured: Duration(10 * time.Second), CPUSeconds: 5,
		Rates: Rates{PublishRate: 1000, PublishBytesRate: 100e6, ConsumeBytesRate: 100e6}}
	l := Limits{Disk: DiskLimit{BytesPerSec: 400e6}, Loopback: LoopbackLimit{BytesPerSec: 1e9}}
	e := ComputeEfficiency(s, l)
	want := Efficiency{BusyCores: 0.5, PublishBytesPerSecPerBusyCore: 200e6, PublishMsgsPerSecPerBusyCore: 2000,
		DiskShare: 0.25, LoopbackShare: 0.2}
	if e != want {
		t.Fatalf("got %+v, want %+v", e, want)
	}
	if ComputeEfficiency(Summary{}, Limits{}) != (Efficiency{}) {
		t.Fatal("zero inputs give non-zero efficiency")
	}
}
