package pulsar

import (
	"bytes"
	"errors"
	"testing"

	"github.com/magnetar/magnetar/internal/base"
)

// The fuzzers check that no input panics, that every error is classified
// (base.ErrCorruption or base.ErrTooLarge), and that what decodes re-encodes
// to a fixed point: encode(decode(encode(decode(x)))) == encode(decode(x)).
// Seeds are the golden frames. Run one with, for example:
//
//	go test -run '^$' -fuzz FuzzDecodeCommand -fuzztime 60s ./internal/wire/pulsar

func classified(err error) bool {
	return errors.Is(err, base.ErrCorruption) || errors.Is(err, base.ErrTooLarge)
}

func FuzzFrameReader(f *testing.F) {
	for _, s := range goldenSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := FrameReader{MaxFrameSize: 1 << 20}
		var fr Frame
		for len(in) > 0 {
			n, err := r.Next(in, &fr)
			if err != nil {
				if !classified(err) {
					t.Fatalf("unclassified error %v", err)
				}
				if n == 0 {
					return
				}
			}
			if n == 0 {
				if FrameLen(in) <= len(in) {
					t.Fatalf("need more with a whole frame buffered")
				}
				return
			}
			if n > len(in) {
				t.Fatalf("consumed %d of %d", n, len(in))
			}
			var c Command
			_ = c.Decode(fr.Command)
			if fr.Metadata != nil {
				var md MessageMetadata
				_ = md.Decode(fr.Metadata)
			}
			if fr.BrokerEntryMetadata != nil {
				var bem BrokerEntryMetadata
				_ = bem.Decode(fr.BrokerEntryMetadata)
			}
			in = in[n:]
		}
	})
}

func FuzzDecodeCommand(f *testing.F) {
	for _, s := range goldenSeeds(f) {
		if len(s) > 8 {
			f.Add(s[8:]) // the BaseCommand and what follows
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var c Command
		if err := c.Decode(in); err != nil {
			if !classified(err) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		once := AppendBaseCommand(nil, &c)
		var c2 Command
		if err := c2.Decode(once); err != nil {
			t.Fatalf("re-decode of our encoding: %v (%x)", err, once)
		}
		if twice := AppendBaseCommand(nil, &c2); !bytes.Equal(once, twice) {
			t.Fatalf("not a fixed point:\n%x\n%x", once, twice)
		}
		_, _ = c.RequestID()
	})
}

func FuzzMessageMetadata(f *testing.F) {
	var r FrameReader
	for _, s := range goldenSeeds(f) {
		var fr Frame
		if _, err := r.Next(s, &fr); err == nil && fr.Metadata != nil {
			f.Add(fr.Metadata)
			f.Add(fr.Body)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var m MessageMetadata
		if err := m.Decode(in); err == nil {
			once := m.AppendTo(nil)
			var m2 MessageMetadata
			if err := m2.Decode(once); err != nil {
				t.Fatalf("re-decode: %v", err)
			}
			if twice := m2.AppendTo(nil); !bytes.Equal(once, twice) {
				t.Fatalf("not a fixed point")
			}
		} else if !classified(err) {
			t.Fatalf("unclassified error %v", err)
		}
		// The same bytes as a batch body.
		var br BatchReader
		br.Reset(in, 1000)
		var smm SingleMessageMetadata
		for br.Next(&smm) {
			if len(br.Payload()) != int(smm.PayloadSize) {
				t.Fatalf("payload %d bytes, size %d", len(br.Payload()), smm.PayloadSize)
			}
		}
		if err := br.Err(); err != nil && !classified(err) {
			t.Fatalf("unclassified batch error %v", err)
		}
	})
}
