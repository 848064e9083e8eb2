package loadgen

import (
	"fmt"
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry: latencies in nanoseconds from 1 ns to 12 hours with
// 3 significant digits, so every value keeps 0.1% resolution (the 1 µs to
// 60 s a credible harness needs, with room for a long backlog drain's
// end-to-end latency), and the geometry of package results, so histograms
// move between the two without conversion.
const (
	HistogramLowest  = 1
	HistogramHighest = int64(12 * time.Hour)
	HistogramDigits  = 3
)

// NewHistogram returns an empty latency histogram with the package's
// geometry.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(HistogramLowest, HistogramHighest, HistogramDigits)
}

// record records v, clamped into h's range, and reports whether it had to
// clamp: a value never vanishes because it was too large.
func record(h *hdrhistogram.Histogram, v int64) (clamped bool) {
	if v < HistogramLowest {
		v, clamped = HistogramLowest, v < 0
	}
	if v > HistogramHighest {
		v, clamped = HistogramHighest, true
	}
	_ = h.RecordValue(v) // in range by construction
	return clamped
}

// Merge adds the counts of each of hs into a new histogram: the only
// correct way to combine latency distributions (never average
// percentiles).
func Merge(hs ...*hdrhistogram.Histogram) *hdrhistogram.Histogram {
	out := NewHistogram()
	for _, h := range hs {
		if h != nil {
			out.Merge(h)
		}
	}
	return out
}

// Percentiles summarise a histogram, in nanoseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	Min   int64   `json:"min"`
	P50   int64   `json:"p50"`
	P75   int64   `json:"p75"`
	P90   int64   `json:"p90"`
	P95   int64   `json:"p95"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p99.9"`
	P9999 int64   `json:"p99.99"`
	Max   int64   `json:"max"`
}

// Summarize returns the percentiles of h (zero for an empty histogram).
func Summarize(h *hdrhistogram.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	q := h.ValueAtPercentilesSlice([]float64{50, 75, 90, 95, 99, 99.9, 99.99})
	return Percentiles{
		Count: h.TotalCount(), Mean: h.Mean(), Min: h.Min(),
		P50: q[0], P75: q[1], P90: q[2], P95: q[3], P99: q[4], P999: q[5], P9999: q[6],
		Max: h.Max(),
	}
}

// Encode returns h in HdrHistogram's V2 compressed form, base64 (what
// HdrHistogram logs carry); "" for an empty histogram.
func Encode(h *hdrhistogram.Histogram) (string, error) {
	if h == nil || h.TotalCount() == 0 {
		return "", nil
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("loadgen: encode histogram: %w", err)
	}
	return string(b), nil
}

// Latencies holds one histogram per latency kind.
type Latencies struct {
	// Publish is ack time − intended send time: what a user of an
	// open-loop system sees, stalls of the generator included.
	Publish *hdrhistogram.Histogram
	// PublishSend is ack time − actual send time (OMB's publish latency,
	// prone to coordinated omission).
	PublishSend *hdrhistogram.Histogram
	// SendSlip is actual − intended send time (OMB's publish delay).
	SendSlip *hdrhistogram.Histogram
	// EndToEnd is consumer receive time − the send timestamp the message
	// carries.
	EndToEnd *hdrhistogram.Histogram
}

func newLatencies() Latencies {
	return Latencies{Publish: NewHistogram(), PublishSend: NewHistogram(), SendSlip: NewHistogram(), EndToEnd: NewHistogram()}
}

func (l *Latencies) each(f func(*hdrhistogram.Histogram, *hdrhistogram.Histogram), o *Latencies) {
	f(l.Publish, o.Publish)
	f(l.PublishSend, o.PublishSend)
	f(l.SendSlip, o.SendSlip)
	f(l.EndToEnd, o.EndToEnd)
}

// merge adds o's counts into l.
func (l *Latencies) merge(o *Latencies) {
	l.each(func(a, b *hdrhistogram.Histogram) { a.Merge(b) }, o)
}

func (l *Latencies) reset() {
	l.Publish.Reset()
	l.PublishSend.Reset()
	l.SendSlip.Reset()
	l.EndToEnd.Reset()
}

// Summaries returns the percentiles of each kind.
func (l *Latencies) Summaries() LatencySummary {
	return LatencySummary{
		Publish: Summarize(l.Publish), PublishSend: Summarize(l.PublishSend),
		SendSlip: Summarize(l.SendSlip), EndToEnd: Summarize(l.EndToEnd),
	}
}

// Encoded returns each kind encoded with Encode.
func (l *Latencies) Encoded() (EncodedLatencies, error) {
	var e EncodedLatencies
	var err error
	for _, x := range []struct {
		dst *string
		h   *hdrhistogram.Histogram
	}{{&e.Publish, l.Publish}, {&e.PublishSend, l.PublishSend}, {&e.SendSlip, l.SendSlip}, {&e.EndToEnd, l.EndToEnd}} {
		if *x.dst, err = Encode(x.h); err != nil {
			return EncodedLatencies{}, err
		}
	}
	return e, nil
}

// LatencySummary holds the percentiles of each latency kind.
type LatencySummary struct {
	Publish     Percentiles `json:"publish"`
	PublishSend Percentiles `json:"publishSend"`
	SendSlip    Percentiles `json:"sendSlip"`
	EndToEnd    Percentiles `json:"endToEnd"`
}

// EncodedLatencies holds each latency kind encoded with Encode.
type EncodedLatencies struct {
	Publish     string `json:"publish,omitempty"`
	PublishSend string `json:"publishSend,omitempty"`
	SendSlip    string `json:"sendSlip,omitempty"`
	EndToEnd    string `json:"endToEnd,omitempty"`
}

// Counters count messages and bytes.
type Counters struct {
	// Sent is messages handed to the client (SendAsync calls).
	Sent int64 `json:"sent"`
	// PublishedMsgs and PublishedBytes count acknowledged messages.
	PublishedMsgs  int64 `json:"publishedMsgs"`
	PublishedBytes int64 `json:"publishedBytes"`
	PublishErrors  int64 `json:"publishErrors"`
	// Abandoned counts sends cut short when the run stopped (a sender
	// blocked on a full pending queue, or a message still pending when the
	// run was interrupted): neither published nor errors.
	Abandoned     int64 `json:"abandoned,omitempty"`
	ConsumedMsgs  int64 `json:"consumedMsgs"`
	ConsumedBytes int64 `json:"consumedBytes"`
	// Clamped counts latency values outside the histogram range, recorded
	// at its edge.
	Clamped int64 `json:"clamped,omitempty"`
}

func (c *Counters) add(o *Counters) {
	c.Sent += o.Sent
	c.PublishedMsgs += o.PublishedMsgs
	c.PublishedBytes += o.PublishedBytes
	c.PublishErrors += o.PublishErrors
	c.Abandoned += o.Abandoned
	c.ConsumedMsgs += o.ConsumedMsgs
	c.ConsumedBytes += o.ConsumedBytes
	c.Clamped += o.Clamped
}

// window is what one recorder collected during one interval.
type window struct {
	lat Latencies
	Counters
}

func newWindow() *window { return &window{lat: newLatencies()} }

func (w *window) reset() {
	w.lat.reset()
	w.Counters = Counters{}
}

func (w *window) merge(o *window) {
	w.lat.merge(&o.lat)
	w.Counters.add(&o.Counters)
}

// timing is what a sender remembers of an in-flight message until its
// receipt: intended and actual send times on the run clock.
type timing struct {
	intended, sent int64
}

// recorder is one goroutine's share of the measurements (the
// HdrHistogram Recorder pattern): the goroutine records into cur under a
// lock it almost never shares, and the stats loop swaps cur for an empty
// window once per interval. A sender owns one recorder: it records send
// slip there, keeps the timings of its in-flight messages there, and the
// receipts of its messages (on the client's read loops) record their
// publish latencies there. Consumers share the recorders round-robin for
// their end-to-end latencies.
type recorder struct {
	mu    sync.Mutex
	cur   *window
	spare *window
	// Totals since the start (warm-up included), for backlogs.
	totalAcked    int64
	totalConsumed int64
	// In-flight timings, indexed by the client's Opaque; free lists the
	// unused slots.
	inflight []timing
	free     []uint32
}

func newRecorder() *recorder { return &recorder{cur: newWindow(), spare: newWindow()} }

// sent records a send's slip and keeps its timing; it returns the slot
// that identifies the message at its receipt.
func (r *recorder) sent(intended, sent int64) uint32 {
	r.mu.Lock()
	w := r.cur
	w.Sent++
	if record(w.lat.SendSlip, sent-intended) {
		w.Clamped++
	}
	var slot uint32
	if n := len(r.free); n > 0 {
		slot = r.free[n-1]
		r.free = r.free[:n-1]
	} else {
		slot = uint32(len(r.inflight))
		r.inflight = append(r.inflight, timing{})
	}
	r.inflight[slot] = timing{intended: intended, sent: sent}
	r.mu.Unlock()
	return slot
}

// acked completes slot: with err nil it records the publish latencies of
// a message of size bytes acknowledged at ack; otherwise it counts an
// error, or, when countError is false, an abandoned send. It returns the
// message's timing.
func (r *recorder) acked(slot uint32, ack int64, size int, err error, countError bool) timing {
	r.mu.Lock()
	t := r.inflight[slot]
	r.free = append(r.free, slot)
	w := r.cur
	if err != nil {
		if countError {
			w.PublishErrors++
		} else {
			w.Abandoned++
		}
	} else {
		w.PublishedMsgs++
		w.PublishedBytes += int64(size)
		r.totalAcked++
		c := record(w.lat.Publish, ack-t.intended)
		if record(w.lat.PublishSend, ack-t.sent) || c {
			w.Clamped++
		}
	}
	r.mu.Unlock()
	return t
}

// consumed records a received message's end-to-end latency (e2e < 0:
// none measured).
func (r *recorder) consumed(size int, e2e int64, measured bool) {
	r.mu.Lock()
	w := r.cur
	w.ConsumedMsgs++
	w.ConsumedBytes += int64(size)
	r.totalConsumed++
	if measured && record(w.lat.EndToEnd, e2e) {
		w.Clamped++
	}
	r.mu.Unlock()
}

// swapInto moves the current window's content into acc and starts an
// empty one; it returns the totals at the swap.
func (r *recorder) swapInto(acc *window) (acked, consumed int64) {
	r.mu.Lock()
	w := r.cur
	r.cur, r.spare = r.spare, w
	acked, consumed = r.totalAcked, r.totalConsumed
	r.mu.Unlock()
	acc.merge(w)
	w.reset()
	return acked, consumed
}

// totals returns the totals since the start.
func (r *recorder) totals() (acked, consumed int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.totalAcked, r.totalConsumed
}
