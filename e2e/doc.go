// Package e2e holds end-to-end tests that run the magnetar binary as a real
// process and drive it with the official Pulsar Go client: a standalone node
// killed with SIGKILL and restarted keeps every acknowledged message and
// every subscription position.
package e2e
