package results

import (
	"bytes"
	"encoding/xml"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/magnetar/magnetar/internal/vfs"
)

var svgBlock = regexp.MustCompile(`(?s)<svg .*?</svg>`)

// svgInfo parses one SVG fragment strictly as XML and returns its title and
// the names of its series; it fails the test on malformed XML or a
// non-finite coordinate.
func svgInfo(t *testing.T, frag string) (title string, seriesNames []string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(frag))
	dec.Strict = true
	depth := 0
	var inTitle bool
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("malformed SVG: %v\n%s", err, frag)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && (el.Name.Local != "svg" || el.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root element %v", el.Name)
			}
			inTitle = el.Name.Local == "title" && depth == 2
			for _, a := range el.Attr {
				if a.Name.Local == "data-series" {
					seriesNames = append(seriesNames, a.Value)
				}
				if a.Name.Local == "points" {
					for _, pair := range strings.Fields(a.Value) {
						for _, f := range strings.Split(pair, ",") {
							if _, err := strconv.ParseFloat(f, 64); err != nil || strings.Contains(f, "NaN") || strings.Contains(f, "Inf") {
								t.Fatalf("bad coordinate %q", pair)
							}
						}
					}
				}
			}
		case xml.EndElement:
			depth--
			inTitle = false
		case xml.CharData:
			if inTitle {
				title += string(el)
			}
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced SVG (depth %d)", depth)
	}
	return title, seriesNames
}

func charts(t *testing.T, html string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, frag := range svgBlock.FindAllString(html, -1) {
		title, names := svgInfo(t, frag)
		out[title] = names
	}
	return out
}

func TestHTMLReport(t *testing.T) {
	r := sampleResult(t)
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if !strings.HasPrefix(html, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(html), "</html>") {
		t.Fatal("not a complete HTML document")
	}
	// Self-contained: no script, no external resource.
	for _, bad := range []string{"<script", "<link", " src=", "@import", "url(http"} {
		if strings.Contains(html, bad) {
			t.Errorf("report contains %q", bad)
		}
	}
	if n := strings.Count(html, "http"); n != strings.Count(html, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Errorf("report references %d URLs besides the SVG namespace", n-strings.Count(html, "xmlns="))
	}
	got := charts(t, html)
	want := map[string][]string{
		"Latency by percentile (whole run)":       {Publish.Short(), PublishSend.Short(), SendSlip.Short(), EndToEnd.Short()},
		"Publish latency by percentile, per step": {"12%", "25%", "50%", "100%"},
		"Latency versus throughput":               {"publish p50", "publish p99", "publish p99.9", "end-to-end p99"},
		"Throughput over time":                    {"publish msg/s", "consume msg/s"},
		"p99 latency over time": {Publish.Short() + " p99", PublishSend.Short() + " p99", SendSlip.Short() + " p99",
			EndToEnd.Short() + " p99"},
		"Backlog over time": {"backlog"},
		"Disk: 4096 B write + fdatasync latency by percentile": {"write + fdatasync"},
	}
	for title, names := range want {
		if !slices.Equal(got[title], names) {
			t.Errorf("chart %q: series %q, want %q", title, got[title], names)
		}
	}
	if len(got) != len(want) {
		t.Errorf("charts %v, want %d", keys(got), len(want))
	}
	// Facts and tables.
	for _, s := range []string{r.Scenario, r.GitRevision, "O_DIRECT", "fsync-per-group E1/W1/A1", "p99.99", "Sweep steps",
		"sample result for tests", "busy cores"} {
		if !strings.Contains(html, s) {
			t.Errorf("report lacks %q", s)
		}
	}
	// Clip path ids are unique in the page.
	ids := regexp.MustCompile(`clipPath id="([^"]+)"`).FindAllStringSubmatch(html, -1)
	seen := map[string]bool{}
	for _, m := range ids {
		if seen[m[1]] {
			t.Errorf("duplicate id %q", m[1])
		}
		seen[m[1]] = true
	}
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// A limits-only result (no load) still gives a report: facts and the fsync
// chart, no empty load charts.
func TestHTMLReportLimitsOnly(t *testing.T) {
	full := sampleResult(t)
	r := &Result{Scenario: "limits", Driver: "magnetar", Machine: full.Machine, Limits: full.Limits}
	dir := t.TempDir()
	name := filepath.Join(dir, "limits.html")
	if err := WriteHTMLFile(vfs.Default, name, r); err != nil {
		t.Fatal(err)
	}
	f, err := vfs.Default.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	got := charts(t, string(b))
	if len(got) != 1 || got["Disk: 4096 B write + fdatasync latency by percentile"] == nil {
		t.Fatalf("charts %v, want only the fsync chart", keys(got))
	}
	if !strings.Contains(string(b), "loopback TCP") {
		t.Error("limits missing from report")
	}
	if strings.Contains(string(b), "<h2>Workload</h2>") || strings.Contains(string(b), "<h2>Durability</h2>") {
		t.Error("empty workload or durability shown for a limits-only run")
	}
}

// Without histograms the distribution chart falls back to the stored
// percentiles.
func TestHTMLReportWithoutHistograms(t *testing.T) {
	r := sampleResult(t)
	r.Histograms = EncodedSet{}
	r.Limits.Fsync.Histogram = ""
	var buf bytes.Buffer
	if err := WriteHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	got := charts(t, buf.String())
	if len(got["Latency by percentile (whole run)"]) != 4 {
		t.Fatalf("distribution chart series %v", got["Latency by percentile (whole run)"])
	}
}

func TestTextSummary(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSummary(&buf, sampleResult(t)); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, s := range []string{"scenario", "1-topic-16-partitions-1kb", "publish", "msg/s", "MiB/s", "end-to-end", "p99.9",
		"limit", "disk write + fdatasync", "loopback", "efficiency", "busy cores", "sweep"} {
		if !strings.Contains(out, s) {
			t.Errorf("summary lacks %q:\n%s", s, out)
		}
	}
}

func TestAxisHelpers(t *testing.T) {
	for _, c := range []struct {
		u    float64
		want string
	}{{0, "0%"}, {1, "90%"}, {2, "99%"}, {3, "99.9%"}, {5, "99.999%"}} {
		if got := ninesLabel(c.u); got != c.want {
			t.Errorf("ninesLabel(%v) = %q, want %q", c.u, got, c.want)
		}
	}
	for _, c := range []struct{ raw, want float64 }{{0.7, 1}, {1.5, 2}, {3, 5}, {7, 10}, {1200, 2000}} {
		if got := niceStep(c.raw); got != c.want {
			t.Errorf("niceStep(%v) = %v, want %v", c.raw, got, c.want)
		}
	}
	for _, c := range []struct {
		v    float64
		want string
	}{{850, "850ns"}, {12500, "12.5µs"}, {1.25e6, "1.25ms"}, {2.1e9, "2.1s"}} {
		if got := formatNanos(c.v); got != c.want {
			t.Errorf("formatNanos(%v) = %q, want %q", c.v, got, c.want)
		}
	}
	d := resolve(axis{kind: scaleAuto}, []float64{10, 100000}, true)
	if d.kind != scaleLog {
		t.Error("auto scale over four decades is not log")
	}
	d = resolve(axis{kind: scaleAuto}, []float64{10, 20}, true)
	if d.kind != scaleLinear {
		t.Error("auto scale over a factor 2 is not linear")
	}
}
