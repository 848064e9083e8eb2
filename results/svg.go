package results

import (
	"html"
	"math"
	"strconv"
	"strings"
	"time"
)

// A small SVG line-chart renderer for the HTML report: linear, log10 and
// "nines" (percentile) axes, polylines with optional markers, a grid, tick
// labels and a legend. Output is standalone SVG 1.1 (no CSS or script), so a
// chart can also be saved as a .svg file and opened on its own.

type scaleKind int

const (
	scaleLinear scaleKind = iota
	// scaleLog is log10; non-positive values are not drawn.
	scaleLog
	// scaleNines takes quantiles q in [0,1) and places them at
	// log10(1/(1-q)): 90% at 1, 99% at 2, 99.9% at 3, as HdrHistogram's
	// percentile plots do.
	scaleNines
	// scaleAuto is log10 when the positive data spans more than two decades,
	// linear from zero otherwise.
	scaleAuto
)

type axis struct {
	label  string
	kind   scaleKind
	format func(float64) string // tick label of a data value
}

type series struct {
	name    string
	xs, ys  []float64
	markers bool
}

type chart struct {
	id     string // unique within a page; names the clip path
	title  string
	x, y   axis
	series []series
}

// Geometry of every chart, in SVG user units.
const (
	chartWidth   = 860
	chartHeight  = 360
	marginLeft   = 76
	marginRight  = 200 // legend column
	marginTop    = 34
	marginBottom = 52
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// domain is an axis's resolved scale: data values map through t() into
// [lo, hi], then linearly onto pixels.
type domain struct {
	kind   scaleKind // never scaleAuto
	lo, hi float64   // in transformed units
	ticks  []float64 // in transformed units
	format func(float64) string
}

func (d *domain) t(v float64) (float64, bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	switch d.kind {
	case scaleLog:
		if v <= 0 {
			return 0, false
		}
		return math.Log10(v), true
	case scaleNines:
		if v < 0 || v >= 1 {
			return 0, false
		}
		return -math.Log10(1 - v), true
	}
	return v, true
}

// label formats a tick at transformed position u.
func (d *domain) label(u float64) string {
	switch d.kind {
	case scaleLog:
		return d.format(math.Pow(10, u))
	case scaleNines:
		return ninesLabel(u)
	}
	return d.format(u)
}

func ninesLabel(u float64) string {
	if u <= 0 {
		return "0%"
	}
	p := 100 * (1 - math.Pow(10, -u))
	return strconv.FormatFloat(p, 'f', max(0, int(math.Round(u))-2), 64) + "%"
}

// resolve picks the domain of an axis from the values it must show.
// A padded linear axis gets 5% headroom above the data.
func resolve(a axis, values []float64, pad bool) domain {
	d := domain{kind: a.kind, format: a.format}
	if d.format == nil {
		d.format = formatCount
	}
	var pos []float64
	minV, maxV := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		minV, maxV = math.Min(minV, v), math.Max(maxV, v)
		if v > 0 {
			pos = append(pos, v)
		}
	}
	if d.kind == scaleAuto {
		d.kind = scaleLinear
		if len(pos) > 0 {
			lo, hi := pos[0], pos[0]
			for _, v := range pos {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			if hi/lo > 100 {
				d.kind = scaleLog
			}
		}
	}
	switch d.kind {
	case scaleLog:
		lo, hi := 1.0, 10.0
		if len(pos) > 0 {
			lo, hi = math.Inf(1), math.Inf(-1)
			for _, v := range pos {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
		d.lo, d.hi = math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if d.hi <= d.lo {
			d.hi = d.lo + 1
		}
		for e := d.lo; e <= d.hi+1e-9; e++ {
			d.ticks = append(d.ticks, e)
			if d.hi-d.lo <= 2 && e < d.hi {
				d.ticks = append(d.ticks, e+math.Log10(2), e+math.Log10(5))
			}
		}
	case scaleNines:
		hi := 1.0
		for _, v := range values {
			if v >= 0 && v < 1 {
				hi = math.Max(hi, -math.Log10(1-v))
			}
		}
		d.lo, d.hi = 0, math.Ceil(hi-1e-9)
		for u := 0.0; u <= d.hi+1e-9; u++ {
			d.ticks = append(d.ticks, u)
		}
	default:
		if math.IsInf(minV, 0) {
			minV, maxV = 0, 1
		}
		lo, hi := math.Min(0, minV), maxV
		if pad {
			hi += (hi - lo) * 0.05 // a flat line must not sit on the frame
		}
		if hi <= lo {
			hi = lo + 1
		}
		step := niceStep((hi - lo) / 5)
		d.lo, d.hi = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
		for u := d.lo; u <= d.hi+step/2; u += step {
			d.ticks = append(d.ticks, u)
		}
	}
	return d
}

// niceStep rounds raw up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch n := raw / mag; {
	case n <= 1:
		return mag
	case n <= 2:
		return 2 * mag
	case n <= 5:
		return 5 * mag
	}
	return 10 * mag
}

// svg renders the chart.
func (c *chart) svg() string {
	var xs, ys []float64
	for _, s := range c.series {
		xs = append(xs, s.xs...)
		ys = append(ys, s.ys...)
	}
	dx, dy := resolve(c.x, xs, false), resolve(c.y, ys, true)
	plotW := float64(chartWidth - marginLeft - marginRight)
	plotH := float64(chartHeight - marginTop - marginBottom)
	px := func(u float64) float64 { return marginLeft + (u-dx.lo)/(dx.hi-dx.lo)*plotW }
	py := func(u float64) float64 { return marginTop + plotH - (u-dy.lo)/(dy.hi-dy.lo)*plotH }

	var b strings.Builder
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" version="1.1" class="chart"`)
	b.WriteString(` width="` + itoa(chartWidth) + `" height="` + itoa(chartHeight) + `"`)
	b.WriteString(` viewBox="0 0 ` + itoa(chartWidth) + ` ` + itoa(chartHeight) + `"`)
	b.WriteString(` font-family="sans-serif" font-size="11" role="img" aria-label="` + esc(c.title) + `">`)
	b.WriteString(`<title>` + esc(c.title) + `</title>`)
	b.WriteString(`<rect x="0" y="0" width="` + itoa(chartWidth) + `" height="` + itoa(chartHeight) + `" fill="#ffffff"/>`)
	b.WriteString(`<text x="` + itoa(chartWidth/2) + `" y="20" text-anchor="middle" font-size="14" font-weight="bold">` + esc(c.title) + `</text>`)

	// Grid and tick labels.
	b.WriteString(`<g class="grid" stroke="#e0e0e0" stroke-width="1">`)
	for _, u := range dx.ticks {
		x := px(u)
		b.WriteString(`<line x1="` + ftoa(x) + `" y1="` + itoa(marginTop) + `" x2="` + ftoa(x) + `" y2="` + ftoa(marginTop+plotH) + `"/>`)
	}
	for _, u := range dy.ticks {
		y := py(u)
		b.WriteString(`<line x1="` + itoa(marginLeft) + `" y1="` + ftoa(y) + `" x2="` + ftoa(marginLeft+plotW) + `" y2="` + ftoa(y) + `"/>`)
	}
	b.WriteString(`</g>`)
	b.WriteString(`<g class="axes" fill="#333333">`)
	for _, u := range dx.ticks {
		b.WriteString(`<text x="` + ftoa(px(u)) + `" y="` + ftoa(marginTop+plotH+15) + `" text-anchor="middle">` + esc(dx.label(u)) + `</text>`)
	}
	for _, u := range dy.ticks {
		b.WriteString(`<text x="` + itoa(marginLeft-6) + `" y="` + ftoa(py(u)+4) + `" text-anchor="end">` + esc(dy.label(u)) + `</text>`)
	}
	b.WriteString(`<text x="` + ftoa(marginLeft+plotW/2) + `" y="` + itoa(chartHeight-12) + `" text-anchor="middle">` + esc(c.x.label) + `</text>`)
	b.WriteString(`<text x="14" y="` + ftoa(marginTop+plotH/2) + `" text-anchor="middle" transform="rotate(-90 14 ` + ftoa(marginTop+plotH/2) + `)">` + esc(c.y.label) + `</text>`)
	b.WriteString(`<rect x="` + itoa(marginLeft) + `" y="` + itoa(marginTop) + `" width="` + ftoa(plotW) + `" height="` + ftoa(plotH) + `" fill="none" stroke="#999999"/>`)
	b.WriteString(`</g>`)

	// Series, clipped to the plot area.
	b.WriteString(`<defs><clipPath id="clip-` + esc(c.id) + `"><rect x="` + itoa(marginLeft) + `" y="` + itoa(marginTop) + `" width="` + ftoa(plotW) + `" height="` + ftoa(plotH) + `"/></clipPath></defs>`)
	drawn := 0
	for i, s := range c.series {
		color := palette[i%len(palette)]
		var pts []string
		for j := range min(len(s.xs), len(s.ys)) {
			ux, okx := dx.t(s.xs[j])
			uy, oky := dy.t(s.ys[j])
			if !okx || !oky {
				continue
			}
			pts = append(pts, ftoa(px(ux))+","+ftoa(py(uy)))
		}
		b.WriteString(`<g class="series" data-series="` + esc(s.name) + `" clip-path="url(#clip-` + esc(c.id) + `)">`)
		b.WriteString(`<title>` + esc(s.name) + `</title>`)
		if len(pts) > 0 {
			drawn++
			b.WriteString(`<polyline fill="none" stroke="` + color + `" stroke-width="1.6" points="` + strings.Join(pts, " ") + `"/>`)
			if s.markers {
				for _, p := range pts {
					x, y, _ := strings.Cut(p, ",")
					b.WriteString(`<circle cx="` + x + `" cy="` + y + `" r="3" fill="` + color + `"/>`)
				}
			}
		}
		b.WriteString(`</g>`)
	}
	if drawn == 0 {
		b.WriteString(`<text x="` + ftoa(marginLeft+plotW/2) + `" y="` + ftoa(marginTop+plotH/2) + `" text-anchor="middle" fill="#999999">no data</text>`)
	}

	// Legend.
	b.WriteString(`<g class="legend">`)
	lx := float64(chartWidth - marginRight + 12)
	for i, s := range c.series {
		y := float64(marginTop+8) + float64(i)*18
		b.WriteString(`<line x1="` + ftoa(lx) + `" y1="` + ftoa(y) + `" x2="` + ftoa(lx+18) + `" y2="` + ftoa(y) + `" stroke="` + palette[i%len(palette)] + `" stroke-width="2.5"/>`)
		b.WriteString(`<text x="` + ftoa(lx+24) + `" y="` + ftoa(y+4) + `">` + esc(s.name) + `</text>`)
	}
	b.WriteString(`</g></svg>`)
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }

func itoa(i int) string { return strconv.Itoa(i) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// formatNanos formats a latency in nanoseconds compactly: 850ns, 12.5µs,
// 1.25ms, 2.1s.
func formatNanos(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case a < 1e3:
		return trimFloat(v) + "ns"
	case a < 1e6:
		return trimFloat(v/1e3) + "µs"
	case a < 1e9:
		return trimFloat(v/1e6) + "ms"
	}
	return trimFloat(v/1e9) + "s"
}

// formatCount formats a count or rate with k/M/G suffixes.
func formatCount(v float64) string {
	a := math.Abs(v)
	switch {
	case a < 1e3:
		return trimFloat(v)
	case a < 1e6:
		return trimFloat(v/1e3) + "k"
	case a < 1e9:
		return trimFloat(v/1e6) + "M"
	}
	return trimFloat(v/1e9) + "G"
}

// formatBytes formats a size with binary units: 512 B, 4 KiB, 1 MiB, 24 GiB.
func formatBytes(v float64) string {
	switch a := math.Abs(v); {
	case a < 1<<10:
		return trimFloat(v) + " B"
	case a < 1<<20:
		return trimFloat(v/(1<<10)) + " KiB"
	case a < 1<<30:
		return trimFloat(v/(1<<20)) + " MiB"
	}
	return trimFloat(v/(1<<30)) + " GiB"
}

// formatElapsed rounds a measured span for display.
func formatElapsed(d Duration) string {
	switch t := d.D(); {
	case t >= time.Second:
		return t.Round(time.Millisecond).String()
	case t >= time.Millisecond:
		return t.Round(10 * time.Microsecond).String()
	default:
		return t.String()
	}
}

// formatSeconds formats seconds.
func formatSeconds(v float64) string { return trimFloat(v) + "s" }

// trimFloat prints v with three significant digits at most and no trailing
// zeros.
func trimFloat(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
	}
	if a := math.Abs(v); a > 0 && a < 0.01 {
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
