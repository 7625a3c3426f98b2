// Package attrs names the telemetry attributes and companion metrics that
// the driftlock processor writes and the driftlock exporter reads: one list,
// so the two components cannot drift apart.
package attrs

// Attributes the processor owns on log records, spans and annotated metric
// points. It writes these and nothing else.
const (
	Prefix           = "driftlock."
	Anomaly          = "driftlock.anomaly"
	Score            = "driftlock.score"
	PValue           = "driftlock.p_value"
	Stream           = "driftlock.stream"
	Explanation      = "driftlock.explanation"
	Calibrating      = "driftlock.calibrating"
	NCD              = "driftlock.ncd"
	CompressionRatio = "driftlock.compression_ratio"
	Entropy          = "driftlock.entropy"
	Drift            = "driftlock.drift"
	ConfigHash       = "driftlock.config_hash"
	Config           = "driftlock.config"
	Statistic        = "driftlock.statistic"
	// MetricName carries a scored series' metric name on companion points.
	MetricName = "metric.name"
)

// Detector v2 attributes: why a record was flagged, which kind of record it
// is, and which ongoing condition it belongs to. The incident layer reads
// these from stored anomalies, so they are part of the stored contract.
const (
	// Reason is why the record was flagged; one of the Reason* values.
	Reason = "driftlock.reason"
	// Kind is a stable id of the record's canonical shape (its template):
	// the same shape gets the same id across restarts and collectors, so
	// "40 copies of one line" group into one row with a count.
	Kind = "driftlock.kind"
	// Episode is the start (RFC 3339, UTC, observed time) of the ongoing
	// condition the record belongs to; set while the condition lasts, even
	// after its kind was admitted into the baseline.
	Episode = "driftlock.episode"
	// PeerService is the other end of a call: on an edge-latency anomaly,
	// the callee service as seen from the caller's span.
	PeerService = "driftlock.peer.service"
	// CallerService is the calling end of the call on an edge-latency
	// anomaly, whichever of the call's two spans carries the flag (on the
	// callee's own span the record's service.name is the callee's), so the
	// anomaly names both ends.
	CallerService = "driftlock.caller.service"
	// Observed, ExpectedLow and ExpectedHigh explain a numeric anomaly: the
	// value seen and the range the baseline expected.
	Observed     = "driftlock.observed"
	ExpectedLow  = "driftlock.expected.low"
	ExpectedHigh = "driftlock.expected.high"
)

// Values of Reason.
const (
	ReasonNovel       = "novel"        // an unfamiliar record (text surprise)
	ReasonRate        = "rate"         // a burst of a known kind of record
	ReasonErrors      = "errors"       // a burst of error-severity records
	ReasonLatency     = "latency"      // an operation's own duration
	ReasonEdgeLatency = "edge_latency" // a caller's view of a callee's latency
	ReasonValue       = "value"        // a metric value out of its range
	ReasonDrift       = "drift"        // a window that drifted from the baseline
)

// Companion metrics the processor emits for numeric series (metric data
// points themselves are left alone so that no series changes identity).
const (
	MetricAnomalies = "driftlock.anomalies"
	MetricScore     = "driftlock.anomaly.score"
)
