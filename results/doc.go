// Package results owns what a benchmark run leaves behind: the result file
// (one JSON document per run, versioned), the HTML report and terminal
// summary drawn from it, the regression verdict between two sets of repeated
// runs, and a writer of the OpenMessaging Benchmark (OMB) result shape so
// OMB's own plotting scripts can read our runs.
//
// It promises:
//
//   - Latencies are integers in nanoseconds everywhere in the file. Rates are
//     per second (messages or bytes); "MiB/s" in reports means 2^20 bytes/s.
//   - Percentiles are never averaged. Every summary percentile comes from an
//     HdrHistogram that was merged by adding counts (per goroutine, per
//     interval, per worker), and the file keeps those histograms, encoded, so
//     any later reader can merge runs and recompute any percentile.
//   - Four latency histograms per run: Publish (ack − intended send time,
//     the coordinated-omission-free number), PublishSend (ack − actual send,
//     what OMB calls publish latency), SendSlip (actual − intended send,
//     OMB's publish delay) and EndToEnd (consumer receive − publish, from a
//     nanosecond timestamp carried in the message).
//   - A verdict of "regressed" is given only from repeated runs, by a rank
//     test (Mann–Whitney U, exact for small samples) and a minimum effect
//     size; with fewer runs than required it says "insufficient runs".
//   - Reading a file written by a newer, unknown format version fails with
//     ErrVersion instead of guessing.
//
// The result file (format version 1), top level, all keys always present
// unless marked "opt":
//
//	{
//	  "formatVersion": 1,
//	  "scenario": "1-topic-16-partitions-1kb",   "description": opt,
//	  "driver": "magnetar",  "target": "standalone (in-process)" | service URL,
//	  "started": RFC 3339,   "finished": RFC 3339,  "gitRevision": opt,
//	  "workload":   { "name", "topics", "partitionsPerTopic", "messageSize",
//	                  "producersPerTopic", "subscriptionsPerTopic",
//	                  "consumerPerSubscription", "producerRate" (msg/s, 0 = max rate),
//	                  "keyDistributor", "consumerBacklogSizeBytes",
//	                  "duration": "1m0s", "warmup": "15s", "interval": "1s", ... },
//	  "durability": { "level", "journalSync", "journalGroupWait",
//	                  "ensembleSize", "writeQuorum", "ackQuorum",
//	                  "batchingMaxDelay", "batchingMaxBytes", "description" },
//	  "machine":    { "hostname", "os", "arch", "kernel", "cpuModel", "cores",
//	                  "memoryBytes", "goVersion" },
//	  "limits":     { "cores",
//	                  "disk":     { "dir", "direct", "blockSize", "bytes", "elapsed", "bytesPerSec" },
//	                  "fsync":    { "dir", "direct", "blockSize", "latency": Percentiles, "histogram" },
//	                  "loopback": { "writeSize", "bytes", "elapsed", "bytesPerSec" } },
//	  "summary":    Summary (whole run after warm-up),
//	  "histograms": { "publish", "publishSend", "sendSlip", "endToEnd" } (opt),
//	  "intervals":  [ Interval, ... ] (opt),
//	  "steps":      [ { "name", "targetRate", "summary", "histograms" }, ... ] (opt: sweeps),
//	  "efficiency": { "busyCores", "publishBytesPerSecPerBusyCore",
//	                  "publishMsgsPerSecPerBusyCore", "diskShare", "loopbackShare" } (opt),
//	  "notes":      [ "...", ... ] (opt)
//	}
//
//	Summary / Interval:
//	  { ["time", "elapsed", "length" (interval only)] | ["measured", "targetRate" (summary only)],
//	    "publishedMsgs", "publishedBytes", "publishErrors", "consumedMsgs", "consumedBytes",
//	    "publishRate", "publishBytesRate", "publishErrorRate", "consumeRate", "consumeBytesRate",
//	    "backlog" (interval) | "maxBacklog", "finalBacklog" (summary),
//	    "cpuSeconds",
//	    "latency": { "publish": P, "publishSend": P, "sendSlip": P, "endToEnd": P },
//	    "histograms": { ... } (interval, opt) }
//
//	Percentiles P (nanoseconds):
//	  { "count", "mean", "min", "p50", "p75", "p90", "p95", "p99", "p99.9", "p99.99", "max" }
//
// Durations in configuration ("duration", "warmup", "elapsed") are Go
// duration strings ("1m30s"); reading also accepts integer nanoseconds.
// testdata/golden-v1.json is a complete small file of this version; a test
// keeps the writer byte-for-byte on it (go test -run Golden -update
// regenerates it, to be reviewed as a diff).
// Encoded histograms are hdrhistogram-go's V2 compressed form, base64 (the
// form HdrHistogram's log files carry), recorded in nanoseconds with the
// geometry of NewHistogram.
package results
