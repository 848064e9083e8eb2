package metastore_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/magnetar/magnetar/metastore"
)

var benchChroot atomic.Int64

// benchStore opens a store of the named backend for one benchmark.
func benchStore(b *testing.B, backend string) metastore.Store {
	opts := metastore.Options{Logger: slog.New(slog.DiscardHandler)}
	var url string
	switch backend {
	case "memory":
		url = "memory:"
	case "embedded":
		url = "embedded:" + filepath.Join(b.TempDir(), "meta")
	case "zk":
		url = zkServer.Get(b).URL(fmt.Sprintf("/bench-%d", benchChroot.Add(1)))
	}
	s, err := metastore.Open(url, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// BenchmarkStore measures get, put (AnyVersion) and compare-and-set (put with
// the expected version) of a 100-byte value on every backend, from one
// caller (latency-bound) and from 16 concurrent callers (where the embedded
// store's group commit shares fsyncs). The zk backend starts a local
// ZooKeeper (standalone, fsync on every write: its default).
func BenchmarkStore(b *testing.B) {
	value := make([]byte, 100)
	for _, backend := range []string{"memory", "embedded", "zk"} {
		for _, op := range []string{"get", "put", "cas"} {
			for _, conc := range []int{1, 16} {
				b.Run(fmt.Sprintf("backend=%s/op=%s/conc=%d", backend, op, conc), func(b *testing.B) {
					s := benchStore(b, backend)
					ctx := context.Background()
					for w := range conc {
						if _, err := s.Create(ctx, fmt.Sprintf("/k%d", w), value, 0); err != nil {
							b.Fatal(err)
						}
					}
					b.SetBytes(int64(len(value)))
					b.ReportAllocs()
					b.ResetTimer()
					// conc workers, each on a key of its own, share b.N
					// operations.
					var next atomic.Int64
					var wg sync.WaitGroup
					for w := range conc {
						wg.Go(func() {
							key := fmt.Sprintf("/k%d", w)
							version := int64(0)
							for next.Add(1) <= int64(b.N) {
								var err error
								switch op {
								case "get":
									_, _, err = s.Get(ctx, key)
								case "put":
									_, err = s.Put(ctx, key, value, metastore.AnyVersion)
								case "cas":
									var st metastore.Stat
									st, err = s.Put(ctx, key, value, version)
									version = st.Version
								}
								if err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
					b.StopTimer()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
				})
			}
		}
	}
}
