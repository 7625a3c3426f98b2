package driftlockprocessor

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/driftlock/driftlock/internal/cbad"
)

// Annotation modes accepted in Config.Annotate.
const (
	// AnnotateAnomalies writes driftlock.* attributes only on anomalous
	// records and on records that closed a drifting window.
	AnnotateAnomalies = "anomalies"
	// AnnotateAll writes the score (or the calibrating flag) on every record.
	AnnotateAll = "all"
)

// Bounds of the options that are not the detector's.
const (
	minCheckpointInterval = time.Second
	maxCheckpointInterval = 24 * time.Hour
	maxStreamBy           = 16
	maxAttributes         = 64
)

// Sentinel errors returned by Config.Validate, wrapped with the offending
// value and the allowed range so that the Collector's error names them.
var (
	ErrAnnotate           = errors.New("annotate must be one of anomalies, all")
	ErrNoSignal           = errors.New("at least one of logs.enabled, traces.enabled, metrics.enabled must be true")
	ErrStreamBy           = errors.New("stream_by is invalid")
	ErrAttributes         = errors.New("attributes list is invalid")
	ErrCheckpointInterval = errors.New("checkpoint_interval out of range")
	ErrQuantile           = errors.New("metrics.histogram_quantile out of range")
	ErrEdgeJoin           = errors.New("traces.edge_join_size or edge_join_ttl out of range")
	ErrMaxSeries          = errors.New("metrics.max_series out of range")
	ErrDetector           = errors.New("detector is invalid")
	ErrFeedback           = errors.New("feedback is invalid")
	// ErrFeedbackSource: feedback reads one store, either through an
	// extension or through the API, never both.
	ErrFeedbackSource = errors.New("set exactly one of feedback.source and feedback.endpoint")
)

// Config is the driftlock processor's configuration.
type Config struct {
	// Detector holds the CBAD detector settings (see internal/cbad), under the
	// `detector:` key so that they cannot collide with the processor's own.
	Detector cbad.Config `mapstructure:"detector"`

	// StreamBy lists the attribute keys that partition records into streams.
	// Each key is looked up on the record first, then on its resource.
	StreamBy []string `mapstructure:"stream_by"`
	// IncludeScopeName adds the instrumentation scope name to the stream key.
	IncludeScopeName bool `mapstructure:"include_scope_name"`
	// Annotate chooses which records carry driftlock.* attributes.
	Annotate string `mapstructure:"annotate"`
	// IncludeConfigHash writes driftlock.config_hash (a hash of the effective
	// configuration) and driftlock.config (that configuration as JSON) on
	// anomalous records, so a store can tell which settings produced a verdict.
	IncludeConfigHash bool `mapstructure:"include_config_hash"`

	Logs    LogsConfig    `mapstructure:"logs"`
	Traces  TracesConfig  `mapstructure:"traces"`
	Metrics MetricsConfig `mapstructure:"metrics"`

	// Storage names a storage extension (e.g. file_storage) that keeps the
	// detector's state across restarts. Nil keeps state in memory only.
	Storage *component.ID `mapstructure:"storage"`
	// CheckpointInterval is how often state is written to Storage; 0 writes
	// only on shutdown.
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`

	// Feedback pulls records marked false_positive from the anomaly store and
	// teaches them to the detector (logs and traces).
	Feedback FeedbackConfig `mapstructure:"feedback"`
}

// FeedbackConfig configures the triage feedback loop. Feedback is on when
// Source or Endpoint is set (exactly one of them).
type FeedbackConfig struct {
	// Source names an extension that reads the false positives straight
	// from the anomaly store: a driftlock_feedback extension, which holds
	// the PostgreSQL DSN (the processor links no database driver).
	Source *component.ID `mapstructure:"source"`
	// DSN is not read any more; Validate rejects it with the way to the
	// driftlock_feedback extension, so an old configuration fails clearly.
	DSN configopaque.String `mapstructure:"dsn"`
	// Endpoint is the base URL of `driftlock serve` (e.g.
	// https://anomalies.internal:8080), for collectors that get no database
	// credentials.
	Endpoint string `mapstructure:"endpoint"`
	// APIKey is the Bearer key sent to Endpoint; a viewer key suffices.
	APIKey configopaque.String `mapstructure:"api_key"`
	// TLS configures the client side of https endpoints.
	TLS configtls.ClientConfig `mapstructure:"tls"`
	// Lookback bounds, with Endpoint, the detection time of the false
	// positives listed (the first pull after a start lists all of them in
	// this window; later pulls only those triaged since); 0 lists them all.
	Lookback time.Duration `mapstructure:"lookback"`
	// Interval between pulls.
	Interval time.Duration `mapstructure:"interval"`
	// MaxRecords is the page size of one query (at most 1000 with Endpoint,
	// the API's page limit).
	MaxRecords int `mapstructure:"max_records"`
}

// enabled reports whether the feedback loop runs.
func (c FeedbackConfig) enabled() bool { return c.Source != nil || c.Endpoint != "" }

// LogsConfig configures log scoring.
type LogsConfig struct {
	// Enabled turns scoring on; when false logs pass through untouched.
	Enabled bool `mapstructure:"enabled"`
	// Attributes are record attribute keys appended to the canonical record
	// (after the severity and the body), in this order.
	Attributes []string `mapstructure:"attributes"`
}

// TracesConfig configures span scoring.
type TracesConfig struct {
	// Enabled turns scoring on; when false spans pass through untouched.
	Enabled bool `mapstructure:"enabled"`
	// Attributes are span attribute keys appended to the canonical span.
	Attributes []string `mapstructure:"attributes"`
	// Latency scores each span's duration per (stream, operation) and its
	// error status as numbers (see spans.go); the canonical text then
	// leaves the duration out.
	Latency bool `mapstructure:"latency"`
	// EdgeJoinSize is how many spans the caller -> callee join keeps while
	// it waits for the other side of a call; 0 turns edge latency off.
	EdgeJoinSize int `mapstructure:"edge_join_size"`
	// EdgeJoinTTL is how long (in span time) a span waits for the other
	// side of its call.
	EdgeJoinTTL time.Duration `mapstructure:"edge_join_ttl"`
}

// MetricsConfig configures metric scoring.
type MetricsConfig struct {
	// Enabled turns scoring on; when false metrics pass through untouched.
	Enabled bool `mapstructure:"enabled"`
	// AnnotateDataPoints writes driftlock.* attributes on the data points
	// themselves. Off by default: new attributes create new series in most
	// backends, so companion metrics are emitted instead.
	AnnotateDataPoints bool `mapstructure:"annotate_data_points"`
	// HistogramQuantile is the quantile estimated from histogram buckets
	// and scored as its own series.
	HistogramQuantile float64 `mapstructure:"histogram_quantile"`
	// MaxSeries bounds the per-series state kept to turn cumulative sums
	// and histograms into deltas.
	MaxSeries int `mapstructure:"max_series"`
}

var _ component.Config = (*Config)(nil)

func createDefaultConfig() component.Config {
	return &Config{
		Detector: cbad.DefaultConfig(),
		StreamBy: []string{"service.name"},
		Annotate: AnnotateAnomalies,
		Logs:     LogsConfig{Enabled: true},
		Traces: TracesConfig{
			Enabled: true,
			Attributes: []string{
				"http.request.method", "http.route", "http.response.status_code",
				"db.system", "db.operation.name", "rpc.service", "rpc.method",
				"messaging.system", "messaging.operation.name",
			},
			Latency:      true,
			EdgeJoinSize: 1 << 16,
			EdgeJoinTTL:  time.Minute,
		},
		Metrics: MetricsConfig{
			Enabled:           true,
			HistogramQuantile: 0.95,
			MaxSeries:         100000,
		},
		CheckpointInterval: time.Minute,
		Feedback:           FeedbackConfig{Interval: time.Minute, MaxRecords: 1000},
	}
}

// Validate checks the configuration and reports every mistake at once
// (errors.Join), each naming the field and the allowed values.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Detector.Check(); err != nil {
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("%w: detector.%w", ErrDetector, e))
		}
	}
	switch c.Annotate {
	case AnnotateAnomalies, AnnotateAll:
	default:
		errs = append(errs, fmt.Errorf("%w: got %q", ErrAnnotate, c.Annotate))
	}
	if !c.Logs.Enabled && !c.Traces.Enabled && !c.Metrics.Enabled {
		errs = append(errs, ErrNoSignal)
	}
	errs = append(errs, validateKeys("stream_by", c.StreamBy, 1, maxStreamBy, ErrStreamBy))
	errs = append(errs, validateKeys("logs.attributes", c.Logs.Attributes, 0, maxAttributes, ErrAttributes))
	errs = append(errs, validateKeys("traces.attributes", c.Traces.Attributes, 0, maxAttributes, ErrAttributes))
	if c.Traces.EdgeJoinSize != 0 && (c.Traces.EdgeJoinSize < 64 || c.Traces.EdgeJoinSize > 1<<24) {
		errs = append(errs, fmt.Errorf("%w: edge_join_size got %d, want 0 (off) or 64..16777216", ErrEdgeJoin, c.Traces.EdgeJoinSize))
	}
	if c.Traces.EdgeJoinSize != 0 && (c.Traces.EdgeJoinTTL <= 0 || c.Traces.EdgeJoinTTL > time.Hour) {
		errs = append(errs, fmt.Errorf("%w: edge_join_ttl got %v, want 0 < ttl <= 1h", ErrEdgeJoin, c.Traces.EdgeJoinTTL))
	}
	if !(c.Metrics.HistogramQuantile > 0 && c.Metrics.HistogramQuantile < 1) {
		errs = append(errs, fmt.Errorf("%w: got %v, want 0 < histogram_quantile < 1", ErrQuantile, c.Metrics.HistogramQuantile))
	}
	if c.Metrics.MaxSeries < 1 || c.Metrics.MaxSeries > 10_000_000 {
		errs = append(errs, fmt.Errorf("%w: got %d, want 1..10000000", ErrMaxSeries, c.Metrics.MaxSeries))
	}
	if c.CheckpointInterval != 0 && (c.CheckpointInterval < minCheckpointInterval || c.CheckpointInterval > maxCheckpointInterval) {
		errs = append(errs, fmt.Errorf("%w: got %v, want 0 (shutdown only) or %v..%v", ErrCheckpointInterval, c.CheckpointInterval, minCheckpointInterval, maxCheckpointInterval))
	}
	errs = append(errs, c.Feedback.validate()...)
	return errors.Join(errs...)
}

// unjoin returns the errors an errors.Join holds, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// maxAPIPage is the largest page GET /v1/anomalies returns.
const maxAPIPage = 1000

func (c *FeedbackConfig) validate() []error {
	if c.DSN != "" {
		// Reading PostgreSQL would link its driver into every collector
		// with this processor: that lives in an extension now.
		return []error{fmt.Errorf("%w: feedback.dsn is no longer read by the processor: "+
			"put the DSN in a driftlock_feedback extension and name it in feedback.source", ErrFeedback)}
	}
	if !c.enabled() {
		return nil
	}
	if c.Source != nil && c.Endpoint != "" {
		return []error{ErrFeedbackSource}
	}
	var errs []error
	if c.Source != nil {
		if c.APIKey != "" {
			errs = append(errs, fmt.Errorf("%w: feedback.api_key is used with feedback.endpoint only", ErrFeedback))
		}
	} else {
		if _, err := parseFeedbackEndpoint(c.Endpoint); err != nil {
			errs = append(errs, fmt.Errorf("%w: feedback.endpoint: %w", ErrFeedback, err))
		}
		if c.APIKey == "" {
			errs = append(errs, fmt.Errorf("%w: feedback.api_key is required with feedback.endpoint (a viewer key, e.g. ${env:DRIFTLOCK_API_KEY})", ErrFeedback))
		}
		if err := c.TLS.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: feedback.tls: %w", ErrFeedback, err))
		}
		if c.Lookback < 0 {
			errs = append(errs, fmt.Errorf("%w: feedback.lookback got %v, want 0 (all) or more", ErrFeedback, c.Lookback))
		}
		if c.MaxRecords > maxAPIPage {
			errs = append(errs, fmt.Errorf("%w: feedback.max_records got %d, want 1..%d with feedback.endpoint (the API's page limit)", ErrFeedback, c.MaxRecords, maxAPIPage))
		}
	}
	if c.Interval < time.Second || c.Interval > maxCheckpointInterval {
		errs = append(errs, fmt.Errorf("%w: feedback.interval got %v, want 1s..24h0m0s", ErrFeedback, c.Interval))
	}
	if c.MaxRecords < 1 || c.MaxRecords > 100000 {
		errs = append(errs, fmt.Errorf("%w: feedback.max_records got %d, want 1..100000", ErrFeedback, c.MaxRecords))
	}
	return errs
}

// validateKeys checks a list of attribute keys: its length, and every
// entry (none empty, none twice), reporting all its mistakes.
func validateKeys(field string, keys []string, minN, maxN int, sentinel error) error {
	var errs []error
	if len(keys) < minN || len(keys) > maxN {
		errs = append(errs, fmt.Errorf("%w: %s has %d entries, want %d..%d", sentinel, field, len(keys), minN, maxN))
	}
	seen := make(map[string]struct{}, len(keys))
	for i, k := range keys {
		if k == "" {
			errs = append(errs, fmt.Errorf("%w: %s[%d] is empty", sentinel, field, i))
			continue
		}
		if _, dup := seen[k]; dup {
			errs = append(errs, fmt.Errorf("%w: %s[%d] %q is listed twice", sentinel, field, i, k))
		}
		seen[k] = struct{}{}
	}
	return errors.Join(errs...)
}
