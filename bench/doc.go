// Package bench owns Magnetar's benchmark harness: the named scenarios, their
// orchestration against a target (an in-process standalone node, the
// default, or a cluster reached by its service URL), and the machine's own
// limits, measured in the same run so that every figure can be stated as a
// share of what the hardware can do.
//
// It promises:
//
//   - Every measurement is bounded in bytes and in time, and honours its
//     context. Each load phase is cut off at warm-up + measured length +
//     the scenario's slack (Scenario.MaxTime), and a result cut off that
//     way says so in its notes. A run interrupted by its context writes
//     nothing.
//   - Disk limits go through internal/vfs, on the directory the run will use
//     (Options.DataDir), with O_DIRECT. When the filesystem refuses O_DIRECT
//     the measurement falls back to buffered writes plus fdatasync and says
//     so (Direct=false, and a note in the result).
//   - Scratch files are created with a unique name and removed afterwards,
//     even on error; so is the standalone node's data directory.
//   - The target is resolved before anything is measured: with no service
//     URL and no standalone node (Options.Standalone nil), Run fails at once
//     with ErrNoTarget and never pretends.
//   - One result file (package results) and one offline HTML report per run,
//     never overwritten: a name that is taken gets "-2", "-3", ... Each
//     result carries the configuration, the target's durability, the git
//     revision, the machine and its limits, per-interval and cumulative
//     percentiles with their encoded HdrHistograms, and process CPU, from
//     which MB/s per busy core and the share of disk and loopback bandwidth
//     follow. Notes say what the figures cover: whose CPU the process
//     accounting includes, limits that do not bound a remote target, the
//     load generator's own warnings (a missed rate, schedule slip).
//
// A run, step by step:
//
//	resolve target ──> measure limits ──> target.Start ──> runs × N ──> target.Stop
//	                    (DataDir)                           │
//	                                                        ├─ loadgen.Run (one per phase; a sweep
//	                                                        │   runs a max-rate search, then a
//	                                                        │   fixed-rate step per fraction)
//	                                                        ├─ CPUTrace samples process CPU
//	                                                        └─ ResultFromReport ──> <name>.json
//	                                                                                <name>.html
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
//	          system, sampled every 100 ms during a run (CPUTrace) and
//	          interpolated to each interval and to the measured phase.
//
// The in-process standalone node is a hook: Options.Standalone makes a
// Target from a data directory; cmd/magnetar fills it once the standalone
// node exists. Any Target works, and the package's tests drive every
// scenario end to end against client/clienttest's stub broker.
package bench
