package driftlockprocessor

import "github.com/driftlock/driftlock/internal/cbad"

// Signal names: the first segment of every stream id, the value of the
// `signal` attribute on the processor's own telemetry and of the anomaly
// store's signal column.
const (
	signalLogs    = "logs"
	signalTraces  = "traces"
	signalMetrics = "metrics"
)

// signalForm is everything that differs between the signals outside the
// scoring loop, in one place per signal (logs.go, traces.go, metrics.go):
// a new signal or canonical form is one type in one file, and the
// checkpoint and feedback code never switch on the signal's name. A
// signal's own settings are the config section of its name (logs.*,
// traces.*, metrics.*): those classified roleState enter its state hash
// (statehash.go).
type signalForm interface {
	// name is one of the signal names above.
	name() string
	// init sets up what the signal keeps in its engine besides the
	// detector (metrics: the previous points of cumulative series).
	init(e *engine)
	// detectorOptions are the detector settings the signal derives from
	// its own config section (traces: no per-kind bursts when spans are
	// scored as numbers).
	detectorOptions(cfg *Config) []cbad.Option
}

// forms are the signals the processor scores: each one's config section is
// the one named after it.
var forms = []signalForm{logsForm{}, tracesForm{}, metricsForm{}}

// learnerForm is a signal whose stored records can be taught back to the
// detector (triage feedback): it rebuilds, from what the exporter stored,
// the canonical record the processor scored.
type learnerForm interface {
	signalForm
	// rebuild returns the canonical record of a stored record document
	// and attributes document (as the exporter wrote them) in s.rec, and
	// false when the documents do not describe a record of this signal.
	rebuild(e *engine, s *scratch, record, attrs []byte) (cbad.Record, bool)
}
