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

// Companion metrics the processor emits for numeric series (metric data
// points themselves are left alone so that no series changes identity).
const (
	MetricAnomalies = "driftlock.anomalies"
	MetricScore     = "driftlock.anomaly.score"
)
