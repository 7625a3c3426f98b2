// Package proctest holds what the end-to-end tests, the soak test and the
// benchmark drivers need to run a child process (usually the built
// otelcol-driftlock) on loopback: free ports, a buffer its output can be
// copied into while it is read, and starting, health-waiting and stopping
// it. It does not import testing, so commands (soak/cmd/soak,
// e2e/cmd/bench-e2e) use it as well as tests; internal/testutil wraps it for
// tests.
package proctest
