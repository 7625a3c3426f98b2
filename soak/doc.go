// Package soak holds Driftlock's hardening runs: the helpers of the soak
// driver (cmd/soak, run by `make soak`), which drives the built collector
// through PostgreSQL restarts and a SIGKILL and then checks the store, and
// the cardinality test, which feeds a million distinct stream keys through
// the processor.
package soak
