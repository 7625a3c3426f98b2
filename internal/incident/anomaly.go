package incident

import (
	"fmt"
	"strings"
	"time"
)

// Anomaly is one flagged record as the anomaly store holds it: the input of
// the correlator. Only Signal, Service and ObservedAt are required; the rest
// sharpen the evidence (Reason, Kind, PeerService) or the explanation
// (Summary, Explanation, TraceID).
type Anomaly struct {
	// ID is the store's id of the anomaly (0 when it has none, e.g. in an
	// in-process evaluation). Events name the ids that joined an incident.
	ID int64
	// Signal is "logs", "traces" or "metrics".
	Signal string
	// Stream is the detector stream (driftlock.stream), e.g. "logs/checkout".
	Stream string
	// Service is the resource's service.name.
	Service string
	// ObservedAt is the record's own time. Incidents live in observed time:
	// a replayed day or a drained backlog yields the incidents it would
	// have yielded live.
	ObservedAt time.Time
	// Score and PValue are the detector's verdict on the record.
	Score  float64
	PValue float64
	// Reason is why the record was flagged (driftlock.reason: novel, rate,
	// errors, latency, edge_latency, value, drift); "" reads as novel.
	Reason string
	// Kind is the record's template id (driftlock.kind); "" when unknown.
	Kind string
	// Episode is the start of the ongoing condition the record belongs to
	// (driftlock.episode); zero when none. An episode keeps an incident
	// open while it lasts, even when its records are no longer surprising.
	Episode time.Time
	// PeerService is the callee of a call seen from the caller's span
	// (driftlock.peer.service); on an edge_latency anomaly the evidence is
	// about the callee.
	PeerService string
	// Caller is the calling service of that call (driftlock.caller.service),
	// whichever of the call's two spans carries the flag; "" when unknown.
	Caller string
	// TraceID (hex) links the record to its trace; "" when none.
	TraceID string
	// Severity is the record's severity text (logs), "" when none.
	Severity string
	// Summary is the record's one-line summary (log body, span name, metric
	// name and value); Explanation the detector's one-line reason.
	Summary     string
	Explanation string
}

// Signals known to the correlator; other values are refused by Add.
const (
	SignalLogs    = "logs"
	SignalTraces  = "traces"
	SignalMetrics = "metrics"
)

// Reasons (the values of driftlock.reason, repeated here so that this
// package imports nothing of the Collector side).
const (
	ReasonNovel       = "novel"
	ReasonRate        = "rate"
	ReasonErrors      = "errors"
	ReasonLatency     = "latency"
	ReasonEdgeLatency = "edge_latency"
	ReasonValue       = "value"
	ReasonDrift       = "drift"
)

func signalIndex(s string) int {
	switch s {
	case SignalLogs:
		return 0
	case SignalTraces:
		return 1
	case SignalMetrics:
		return 2
	}
	return -1
}

var signalNames = [numSignals]string{SignalLogs, SignalTraces, SignalMetrics}

const numSignals = 3

// validate reports what makes a an unusable input.
func (a *Anomaly) validate() error {
	if signalIndex(a.Signal) < 0 {
		return fmt.Errorf("anomaly %d: unknown signal %q (want logs, traces or metrics)", a.ID, a.Signal)
	}
	if a.Service == "" {
		return fmt.Errorf("anomaly %d: empty service", a.ID)
	}
	if a.ObservedAt.IsZero() {
		return fmt.Errorf("anomaly %d: zero observed time", a.ID)
	}
	return nil
}

// blamed is the service the anomaly is evidence about: the callee for an
// edge-latency anomaly (the caller only sees the callee being slow), else
// the anomaly's own service.
func (a *Anomaly) blamed() string {
	if a.Reason == ReasonEdgeLatency && a.PeerService != "" {
		return a.PeerService
	}
	return a.Service
}

// caller is the service whose call to the blamed callee an edge_latency
// anomaly saw slow: the Caller the detector named, or else the record's
// own service when that is not the callee (a flag on the caller's span);
// "" when unknown (a flag on the callee's own span from a detector that
// did not name the caller).
func (a *Anomaly) caller() string {
	if a.Caller != "" && a.Caller != a.blamed() {
		return a.Caller
	}
	if a.Service != a.blamed() {
		return a.Service
	}
	return ""
}

func (a *Anomaly) reason() string {
	if a.Reason == "" {
		return ReasonNovel
	}
	return a.Reason
}

// kind is what groups records of the same shape across services: the
// detector's kind, or for a metric without one, its metric name (the
// stream "metrics/<service>/<name>" without the service).
func (a *Anomaly) kind() string {
	if a.Kind != "" {
		return a.Kind
	}
	if a.Signal == SignalMetrics {
		if i := strings.LastIndexByte(a.Stream, '/'); i >= 0 && i+1 < len(a.Stream) {
			return "metric:" + a.Stream[i+1:]
		}
		if a.Summary != "" {
			return "metric:" + strings.Fields(a.Summary)[0]
		}
	}
	return ""
}

// evidenceClass is the reason, with "/severe" appended for WARN-or-worse
// records (a service that flags routine INFO lines now and then but never
// errors gives strong evidence when its flags turn to errors) and, for
// metrics, "/" and the metric (a pod's CPU and its client latency each
// have their own routine).
func (a *Anomaly) evidenceClass() string {
	if severe(a.Severity) {
		return a.reason() + "/severe"
	}
	if a.Signal == SignalMetrics {
		if k := a.kind(); k != "" {
			return a.reason() + "/" + k
		}
	}
	return a.reason()
}

func severe(sev string) bool {
	if len(sev) < 4 {
		return false
	}
	switch strings.ToUpper(sev[:4]) {
	case "WARN", "ERRO", "FATA", "CRIT", "ALER", "EMER", "PANI", "SEVE":
		return true
	}
	return false
}
