package bufs

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	acceptErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			acceptErr <- err
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case server = <-accepted:
	case err := <-acceptErr:
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// readAll collects everything the peer sends until it closes its side.
func readAll(conn net.Conn) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		out <- b
	}()
	return out
}

func TestVecWriteToTCP(t *testing.T) {
	p := NewPool()
	client, server := tcpPair(t)
	received := readAll(server)

	var want []byte
	var v Vec
	if !v.Empty() {
		t.Fatal("zero Vec is not empty")
	}
	var held []*Buf
	for round := range 3 {
		// A header from plain memory, then pooled payloads of several
		// classes, one of them also held by a second owner (a cache).
		header := []byte{0x0e, 0x01, byte(round)}
		v.Append(header)
		want = append(want, header...)
		for i, size := range []int{1, 300, 4096, 70000, 5 << 20} {
			b := p.Get(size)
			for j := range b.Bytes() {
				b.Bytes()[j] = byte(round*7 + i + j)
			}
			want = append(want, b.Bytes()...)
			if i == 2 {
				held = append(held, b.Retain())
			}
			v.AppendBuf(b)
		}
		v.Append(nil) // empty slices are harmless
		wantLen := 3 + 1 + 300 + 4096 + 70000 + 5<<20
		if v.Len() != wantLen || v.Empty() {
			t.Fatalf("round %d: Len %d Empty %v, want %d", round, v.Len(), v.Empty(), wantLen)
		}
		// The connection owner's write: one writev for the whole vector.
		iov := net.Buffers(v.Slices())
		n, err := iov.WriteTo(client)
		if err != nil || n != int64(wantLen) {
			t.Fatalf("round %d: WriteTo = %d, %v", round, n, err)
		}
		v.Reset()
		if !v.Empty() || v.Len() != 0 {
			t.Fatalf("round %d: vector not empty after Reset", round)
		}
		// Reset released the vector's references: only the cache's
		// remain.
		if got := p.LiveBuffers(); got != int64(len(held)) {
			t.Fatalf("round %d: %d buffers live, want the %d still held", round, got, len(held))
		}
	}
	client.Close()
	got := <-received
	if !bytes.Equal(got, want) {
		t.Fatalf("peer received %d bytes, want %d (equal: %v)", len(got), len(want), bytes.Equal(got, want))
	}
	for _, b := range held {
		if b.Refs() != 1 {
			t.Fatalf("held buffer has %d refs, want 1", b.Refs())
		}
		b.Release()
	}
	if p.LiveBuffers() != 0 {
		t.Fatalf("%d buffers leaked", p.LiveBuffers())
	}
}

// TestVecWriteToClosedConn checks that the references are released by
// Reset after a failed write too.
func TestVecWriteToClosedConn(t *testing.T) {
	p := NewPool()
	client, _ := tcpPair(t)
	client.Close()
	var v Vec
	v.AppendBuf(p.Get(1000))
	v.AppendBuf(p.Get(2000))
	iov := net.Buffers(v.Slices())
	if _, err := iov.WriteTo(client); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo a closed connection: %v", err)
	}
	v.Reset()
	if p.LiveBuffers() != 0 || !v.Empty() {
		t.Fatalf("after a failed write: %d live, empty %v", p.LiveBuffers(), v.Empty())
	}
}

// TestVecSlices checks that Slices hands out the appended memory itself, in
// order, without copying.
func TestVecSlices(t *testing.T) {
	p := NewPool()
	var v Vec
	a := []byte("head")
	b := p.Get(5)
	copy(b.Bytes(), "body!")
	v.Append(a)
	v.AppendBuf(b)
	s := v.Slices()
	if len(s) != 2 || &s[0][0] != &a[0] || &s[1][0] != &b.Bytes()[0] {
		t.Fatalf("Slices does not alias the appended memory: %q", s)
	}
	if v.Len() != 9 {
		t.Fatalf("Len %d", v.Len())
	}
	v.Reset()
	if p.LiveBuffers() != 0 {
		t.Fatalf("%d live after Reset", p.LiveBuffers())
	}
}

func TestVecReset(t *testing.T) {
	p := NewPool()
	var v Vec
	b := p.Get(10)
	v.AppendBuf(b.Retain())
	v.Append([]byte("x"))
	v.Reset()
	if !v.Empty() || v.Len() != 0 {
		t.Fatal("Reset left data in the vector")
	}
	if b.Refs() != 1 {
		t.Fatalf("Reset left %d refs, want the caller's 1", b.Refs())
	}
	b.Release()
	if p.LiveBuffers() != 0 {
		t.Fatalf("%d live", p.LiveBuffers())
	}
}
