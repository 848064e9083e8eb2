// Package itest holds the integration tests of replicated ledgers against
// real bookies; it has no code outside its tests.
//
// Each test runs `magnetar bookie` processes (the binary is built once, by
// `go build`, without -race, on first use) on loopback ports, with their
// journal and ledger directories in the test's temporary directory, all
// registered in one real ZooKeeper (internal/zktest) under a ledgers root
// of their own. The tests drive them with the ledger client of package
// ledger, or with raw BookKeeper protocol frames, and crash them with
// SIGKILL:
//
//   - a bookie killed during writes (E3 W3 A2 and E3 W2 A2, four bookies):
//     the writer changes its ensemble and goes on, and readers, with and
//     without recovery, read every confirmed entry with its bytes;
//   - a writer process killed mid-stream: recovery from another process
//     closes the ledger with every entry the writer had confirmed, and
//     independent recovering readers agree on its content;
//   - a live writer whose ledger is recovered by another client: its adds
//     fail with an error wrapping base.ErrFenced;
//   - a bookie killed and restarted on the same directories: it serves every
//     entry it had acknowledged (journal replay) and registers again;
//   - byte-level answers of the real server to requests whose answers the
//     BookKeeper protocol defines.
//
// Nothing waits by sleeping: every wait is for an observable state (a line
// from a child process, a registration node in ZooKeeper, an HTTP answer, a
// callback) with a deadline. MAGNETAR_LONG=1 runs many more kill cycles.
//
// BenchmarkLedgerAdd measures adds through the client to one bookie (E1 W1
// A1) and to three (E3 W3 A2, E3 W2 A2) against the bare engine in the same
// run; every bookie and the bare engine keep their files on the same disk.
package itest
