//go:build race

package e2e

// raceBuild: pulsar-client-go v0.19.0 has a data race of its own on
// producer reconnect (producer_partition.go grabCnx against
// internalSingleSend), which the restart tests provoke on purpose. make
// test runs this package without -race; under -race the reconnecting test
// says why it does not run.
const raceBuild = true
