package itest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/magnetar/magnetar/internal/base"
	"github.com/magnetar/magnetar/internal/wire/bk"
)

var masterKey = bk.GenerateMasterKey(password)

// entryBytes is entry e of ledger l as a BookKeeper client sends it: the
// 32-byte header (ledger, entry, LAC, length), the CRC32C digest, and
// payload(l, e).
func entryBytes(t testing.TB, l base.LedgerID, e base.EntryID) []byte {
	d, err := bk.NewDigester(bk.DigestCRC32C, password)
	if err != nil {
		t.Fatal(err)
	}
	p := payload(l, e)
	return d.AppendEntry(nil, bk.EntryHeader{LedgerID: l, EntryID: e, LAC: e - 1, Length: int64(e+1) * 1000}, p)
}

// wireConn is a raw BookKeeper protocol connection.
type wireConn struct {
	t  testing.TB
	nc net.Conn
	fr *bk.FrameReader
}

func dialBookie(t testing.TB, b *bookie) *wireConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.id, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(waitTimeout))
	return &wireConn{t: t, nc: nc, fr: bk.NewFrameReader(nc, bk.DefaultMaxFrameSize, 64<<10)}
}

func (c *wireConn) send(frame []byte) error {
	_, err := c.nc.Write(frame)
	return err
}

// frame returns the next response frame, length prefix included.
func (c *wireConn) frame() ([]byte, error) {
	body, err := c.fr.Next()
	if err != nil {
		return nil, err
	}
	return append(bk.AppendFrameLength(nil, len(body)), body...), nil
}

func (c *wireConn) v2() (bk.V2Response, error) {
	body, err := c.fr.Next()
	if err != nil {
		return bk.V2Response{}, err
	}
	var r bk.V2Response
	if err := r.Decode(body); err != nil {
		return r, err
	}
	r.Data = bytes.Clone(r.Data)
	return r, nil
}

// TestBookieRestartServesAcknowledged pipelines adds to a bookie process
// over the v2 protocol, on several ledgers, and kills it (SIGKILL) while
// adds are in flight and checkpoints run. Restarted on the same directories
// and port, the bookie must register again (a new ZooKeeper session owning
// /ledgers/available/<id>), serve every entry it had acknowledged with its
// exact bytes, report a last entry at least as far, take new adds, and
// still refuse normal adds to a ledger it had fenced before the kill.
func TestBookieRestartServesAcknowledged(t *testing.T) {
	cycles := 4
	if long() {
		cycles = 30
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	c := newCluster(t, 1, testSettings)
	b := c.bookies[0]
	for cycle := range cycles {
		t.Run(fmt.Sprintf("cycle=%d", cycle), func(t *testing.T) {
			ledgers := []base.LedgerID{}
			for i := range 4 {
				ledgers = append(ledgers, base.LedgerID(1000*(cycle+1)+i))
			}
			// A ledger fenced before the adds start: the fence must
			// survive the kill too.
			fenced := base.LedgerID(1000*(cycle+1) + 99)
			fence(t, b, fenced)
			killAt := 50 + rng.IntN(2000)
			acked := restartCycleWrite(t, b, ledgers, killAt)

			before := b.owner
			b.restart(t)
			t.Logf("restarted: %s", *b.replayed.Load())
			if b.owner == before || b.owner == 0 {
				t.Fatalf("registration owned by session %#x before the kill and %#x after the restart", before, b.owner)
			}
			restartCycleCheck(t, b, ledgers, acked)
			checkFenced(t, b, fenced)
			if long() && cycle == 0 {
				// The killed process's session expires (30s) without
				// taking the new registration with it.
				if err := c.zk.WaitSessionGone(before, 2*waitTimeout); err != nil {
					t.Fatal(err)
				}
				st, ok, err := c.registration(b.id)
				if err != nil || !ok || st.EphemeralOwner != b.owner {
					t.Fatalf("registration after the old session expired: %+v, exists %v, %v", st, ok, err)
				}
			}
		})
		if t.Failed() {
			return
		}
	}
}

// restartCycleWrite adds entries round-robin to ledgers with 128 in
// flight, kills the bookie after killAt acknowledgements, and returns the
// acknowledged entries of each ledger.
func restartCycleWrite(t *testing.T, b *bookie, ledgers []base.LedgerID, killAt int) map[base.LedgerID][]base.EntryID {
	conn := dialBookie(t, b)
	window := make(chan struct{}, 128)
	stop := make(chan struct{})
	reached := make(chan struct{})
	acked := map[base.LedgerID][]base.EntryID{}
	var readErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // sender
		defer wg.Done()
		for n := 0; n < 1_000_000; n++ {
			select {
			case window <- struct{}{}:
			case <-stop:
				return
			}
			l, e := ledgers[n%len(ledgers)], base.EntryID(n/len(ledgers))
			if conn.send(bk.AppendAddRequest(nil, 0, &masterKey, entryBytes(t, l, e))) != nil {
				return
			}
		}
	}()
	go func() { // receiver
		defer wg.Done()
		defer close(stop)
		n := 0
		for {
			r, err := conn.v2()
			if err != nil {
				if n < killAt {
					readErr = err
				}
				return
			}
			if r.Header.Op != bk.OpAddEntry || r.RC != bk.RCOK {
				readErr = fmt.Errorf("add response %v rc %v for %d:%d", r.Header.Op, r.RC, r.LedgerID, r.EntryID)
				return
			}
			acked[r.LedgerID] = append(acked[r.LedgerID], r.EntryID)
			n++
			if n == killAt {
				close(reached)
			}
			<-window
		}
	}()
	select {
	case <-reached:
	case <-stop:
	case <-b.c.crashed:
		t.Fatal("the bookie crashed")
	case <-time.After(waitTimeout):
		t.Fatalf("%d acknowledgements not received in time", killAt)
	}
	b.kill()
	conn.nc.Close()
	wg.Wait()
	if readErr != nil {
		t.Fatal(readErr)
	}
	total := 0
	for _, es := range acked {
		total += len(es)
	}
	t.Logf("killed %s after %d acknowledged adds (asked for %d)", b.id, total, killAt)
	return acked
}

func restartCycleCheck(t *testing.T, b *bookie, ledgers []base.LedgerID, acked map[base.LedgerID][]base.EntryID) {
	conn := dialBookie(t, b)
	// Pipelined reads of every acknowledged entry; reads may be answered in
	// any order.
	want := map[[2]int64]bool{}
	var frames []byte
	for l, es := range acked {
		for i, e := range es {
			if i > 0 && es[i-1] >= e {
				t.Fatalf("ledger %d: entry %d acknowledged after %d", l, e, es[i-1])
			}
			want[[2]int64{int64(l), int64(e)}] = true
			frames = bk.AppendReadRequest(frames, 0, l, e, nil)
		}
	}
	// Written by another goroutine: the bookie answers while we send.
	sent := make(chan error, 1)
	go func() { sent <- conn.send(frames) }()
	for range len(want) {
		r, err := conn.v2()
		if err != nil {
			t.Fatal(err)
		}
		k := [2]int64{int64(r.LedgerID), int64(r.EntryID)}
		if r.Header.Op != bk.OpReadEntry || r.RC != bk.RCOK || !want[k] {
			t.Fatalf("after restart: read %d:%d answered %v rc %v", r.LedgerID, r.EntryID, r.Header.Op, r.RC)
		}
		delete(want, k)
		if exp := entryBytes(t, r.LedgerID, r.EntryID); !bytes.Equal(r.Data, exp) {
			t.Fatalf("after restart: entry %d:%d has %d bytes, not the %d acknowledged", r.LedgerID, r.EntryID, len(r.Data), len(exp))
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// The last entry each ledger has is at least the last acknowledged one,
	// and new adds follow it.
	for _, l := range ledgers {
		es := acked[l]
		if len(es) == 0 {
			continue
		}
		if err := conn.send(bk.AppendReadRequest(nil, 0, l, -1, nil)); err != nil {
			t.Fatal(err)
		}
		r, err := conn.v2()
		if err != nil {
			t.Fatal(err)
		}
		h, err := bk.ParseEntryHeader(r.Data)
		if r.RC != bk.RCOK || err != nil || h.EntryID < es[len(es)-1] {
			t.Fatalf("last entry of ledger %d after restart: rc %v, header %+v (%v); %d was acknowledged",
				l, r.RC, h, err, es[len(es)-1])
		}
		next := h.EntryID + 1
		if err := conn.send(bk.AppendAddRequest(nil, 0, &masterKey, entryBytes(t, l, next))); err != nil {
			t.Fatal(err)
		}
		if r, err := conn.v2(); err != nil || r.RC != bk.RCOK || r.EntryID != next {
			t.Fatalf("add %d:%d after restart: rc %v, entry %d, %v", l, next, r.RC, r.EntryID, err)
		}
	}
}

// fence adds entry 0 to ledger l and fences it (a fencing read of entry
// -1), waiting for the bookie's answers: the fence is durable then.
func fence(t *testing.T, b *bookie, l base.LedgerID) {
	conn := dialBookie(t, b)
	if err := conn.send(bk.AppendAddRequest(nil, 0, &masterKey, entryBytes(t, l, 0))); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.v2(); err != nil || r.RC != bk.RCOK {
		t.Fatalf("add %d:0: rc %v, %v", l, r.RC, err)
	}
	if err := conn.send(bk.AppendReadRequest(nil, bk.FlagDoFencing, l, -1, &masterKey)); err != nil {
		t.Fatal(err)
	}
	if r, err := conn.v2(); err != nil || r.RC != bk.RCOK || !bytes.Equal(r.Data, entryBytes(t, l, 0)) {
		t.Fatalf("fencing read of %d: rc %v, %v", l, r.RC, err)
	}
}

// checkFenced checks that ledger l refuses normal adds with EFENCED and
// takes recovery adds.
func checkFenced(t *testing.T, b *bookie, l base.LedgerID) {
	conn := dialBookie(t, b)
	for _, c := range []struct {
		flags bk.Flags
		rc    bk.RC
	}{{0, bk.RCFenced}, {bk.FlagRecoveryAdd, bk.RCOK}} {
		if err := conn.send(bk.AppendAddRequest(nil, c.flags, &masterKey, entryBytes(t, l, 1))); err != nil {
			t.Fatal(err)
		}
		if r, err := conn.v2(); err != nil || r.RC != c.rc {
			t.Fatalf("add %d:1 (flags %#x) after the restart: rc %v (%v), want %v", l, c.flags, r.RC, err, c.rc)
		}
	}
}
