// Package incident turns record-level anomalies into incidents: few,
// ranked, explained groups of related evidence, in observed time.
//
// It is pure Go (no database, no Collector): `driftlock serve` runs a
// Correlator over the anomaly store, `driftlock eval nezha` runs one in
// process after the processor, and `driftlock incidents rebuild` uses
// Rebuild. The README beside this file describes the method, its
// false-alarm rate, and how the call graph is learned in a fleet.
package incident
