// Package bench owns Magnetar's benchmark harness: the named scenarios, their
// orchestration (an in-process standalone node or a given cluster URL), and
// the machine's own limits, measured in the same run so that every figure can
// be stated as a share of what the hardware can do.
//
// It promises:
//
//   - Every measurement is bounded in bytes and in time, and honours its
//     context; defaults finish in a few seconds.
//   - Disk limits go through internal/vfs, on the directory the run will use
//     (by default the results directory), with O_DIRECT. When the filesystem
//     refuses O_DIRECT the measurement falls back to buffered writes plus
//     fdatasync and says so (Direct=false, and a note in the result).
//   - Scratch files are created with a unique name and removed afterwards,
//     even on error.
//
// The limits, as measured:
//
//	disk      sequential 1 MiB aligned writes into a preallocated scratch
//	          file, fdatasync after every block (a journal's write pattern):
//	          bytes written / wall time.  Default: 256 MiB or 5 s.
//	fsync     4 KiB aligned appends, each followed by fdatasync; the time of
//	          write+fdatasync per op in an HdrHistogram (p50, p99, max).
//	          Default: 1000 ops or 3 s.
//	loopback  one TCP connection over 127.0.0.1, one writer goroutine doing
//	          1 MiB writes, one reader; bytes received / time from the first
//	          write to the reader's EOF.  Default: 4 GiB or 2 s.
//	cores     runtime.NumCPU; process CPU from getrusage(RUSAGE_SELF), user +
//	          system, to state throughput per busy core.
//
// Scenarios other than "limits" need the load generator (package loadgen)
// and are declared here, with their workloads, ahead of it; Run reports
// base.ErrNotImplemented for them until it is wired.
package bench
