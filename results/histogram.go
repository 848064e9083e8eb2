package results

import (
	"fmt"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry. Part of the file format only in that a reader expects
// nanoseconds; Decode reads any geometry.
const (
	// HistogramLowest is the lowest discernible value: 1 ns.
	HistogramLowest = 1
	// HistogramHighest is the highest trackable value: 12 hours, as OMB's
	// end-to-end histogram (a backlog catch-up can make e2e latency long).
	HistogramHighest = int64(12 * time.Hour)
	// HistogramDigits is the number of significant decimal digits kept
	// (0.1% value resolution).
	HistogramDigits = 3
)

// NewHistogram returns an empty latency histogram in nanoseconds with the
// package's geometry. Record values with RecordClamped so that an
// out-of-range value is counted at the edge rather than dropped.
func NewHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(HistogramLowest, HistogramHighest, HistogramDigits)
}

// RecordClamped records v in h, clamping it into h's trackable range. A
// latency must never vanish from the histogram because it was too large:
// that would hide exactly the stall the histogram is there to show.
func RecordClamped(h *hdrhistogram.Histogram, v int64) {
	if v < 0 {
		v = 0
	}
	if hi := h.HighestTrackableValue(); v > hi {
		v = hi
	}
	// In range by construction; RecordValue fails only out of range.
	_ = h.RecordValue(v)
}

// MergeHistograms returns a new histogram holding the sum of the counts of
// hs (nil entries are skipped), with the package's geometry. It reports how
// many values fell outside that geometry and were dropped.
func MergeHistograms(hs ...*hdrhistogram.Histogram) (merged *hdrhistogram.Histogram, dropped int64) {
	merged = NewHistogram()
	for _, h := range hs {
		if h != nil {
			dropped += merged.Merge(h)
		}
	}
	return merged, dropped
}

// EncodeHistogram returns h in HdrHistogram's V2 compressed encoding, base64
// (the form hdrhistogram-go's Encode produces and HdrHistogram log files
// carry). A nil or empty histogram encodes as "".
func EncodeHistogram(h *hdrhistogram.Histogram) (string, error) {
	if h == nil || h.TotalCount() == 0 {
		return "", nil
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("results: encode histogram: %w", err)
	}
	return string(b), nil
}

// DecodeHistogram reverses EncodeHistogram. "" decodes to an empty histogram
// with the package's geometry.
func DecodeHistogram(s string) (*hdrhistogram.Histogram, error) {
	if s == "" {
		return NewHistogram(), nil
	}
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("%w: histogram: %v", ErrFormat, err)
	}
	return h, nil
}

// MergeEncoded decodes each encoded histogram and adds them up: the way to
// combine runs, intervals or workers stored in result files.
func MergeEncoded(encoded ...string) (*hdrhistogram.Histogram, error) {
	merged := NewHistogram()
	for i, s := range encoded {
		if s == "" {
			continue
		}
		h, err := DecodeHistogram(s)
		if err != nil {
			return nil, fmt.Errorf("histogram %d: %w", i, err)
		}
		if dropped := merged.Merge(h); dropped != 0 {
			return nil, fmt.Errorf("%w: histogram %d: %d values outside the histogram range", ErrFormat, i, dropped)
		}
	}
	return merged, nil
}

// Summarize computes the percentiles of h. A nil or empty histogram gives
// the zero Percentiles.
func Summarize(h *hdrhistogram.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	qs := h.ValueAtPercentilesSlice([]float64{50, 75, 90, 95, 99, 99.9, 99.99})
	return Percentiles{
		Count: h.TotalCount(),
		Mean:  h.Mean(),
		Min:   h.Min(),
		P50:   qs[0],
		P75:   qs[1],
		P90:   qs[2],
		P95:   qs[3],
		P99:   qs[4],
		P999:  qs[5],
		P9999: qs[6],
		Max:   h.Max(),
	}
}

// HistogramSet is one in-memory histogram per latency kind. Producers and
// consumers keep one set per goroutine and per interval; sets are combined
// with Merge (adding counts), never by averaging percentiles. A HistogramSet
// is not safe for concurrent use.
type HistogramSet struct {
	Publish     *hdrhistogram.Histogram
	PublishSend *hdrhistogram.Histogram
	SendSlip    *hdrhistogram.Histogram
	EndToEnd    *hdrhistogram.Histogram
}

// NewHistogramSet returns a set of empty histograms.
func NewHistogramSet() *HistogramSet {
	return &HistogramSet{
		Publish:     NewHistogram(),
		PublishSend: NewHistogram(),
		SendSlip:    NewHistogram(),
		EndToEnd:    NewHistogram(),
	}
}

// Get returns the histogram of kind k (nil for an unknown kind).
func (s *HistogramSet) Get(k Kind) *hdrhistogram.Histogram {
	switch k {
	case Publish:
		return s.Publish
	case PublishSend:
		return s.PublishSend
	case SendSlip:
		return s.SendSlip
	case EndToEnd:
		return s.EndToEnd
	}
	return nil
}

// Merge adds every histogram of o into s's histogram of the same kind and
// returns the number of values dropped as out of range.
func (s *HistogramSet) Merge(o *HistogramSet) (dropped int64) {
	for _, k := range Kinds() {
		if dst, src := s.Get(k), o.Get(k); dst != nil && src != nil {
			dropped += dst.Merge(src)
		}
	}
	return dropped
}

// Reset empties every histogram.
func (s *HistogramSet) Reset() {
	for _, k := range Kinds() {
		if h := s.Get(k); h != nil {
			h.Reset()
		}
	}
}

// Summarize computes the percentiles of every kind.
func (s *HistogramSet) Summarize() LatencySet {
	var out LatencySet
	for _, k := range Kinds() {
		out.Set(k, Summarize(s.Get(k)))
	}
	return out
}

// Encode encodes every histogram.
func (s *HistogramSet) Encode() (EncodedSet, error) {
	var out EncodedSet
	for _, k := range Kinds() {
		e, err := EncodeHistogram(s.Get(k))
		if err != nil {
			return EncodedSet{}, fmt.Errorf("%s: %w", k, err)
		}
		out.Set(k, e)
	}
	return out, nil
}

// Decode decodes every histogram of e into a HistogramSet.
func (e EncodedSet) Decode() (*HistogramSet, error) {
	s := &HistogramSet{}
	for _, k := range Kinds() {
		h, err := DecodeHistogram(e.Get(k))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		switch k {
		case Publish:
			s.Publish = h
		case PublishSend:
			s.PublishSend = h
		case SendSlip:
			s.SendSlip = h
		case EndToEnd:
			s.EndToEnd = h
		}
	}
	return s, nil
}

// IsZero reports whether no histogram is stored.
func (e EncodedSet) IsZero() bool { return e == EncodedSet{} }
