package driftlockprocessor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/cbad"
	"github.com/driftlock/driftlock/processor/driftlockprocessor/internal/metadata"
)

// Attributes the processor owns (named once, in internal/attrs). It writes
// these and nothing else.
const (
	attrAnomaly          = attrs.Anomaly
	attrScore            = attrs.Score
	attrPValue           = attrs.PValue
	attrStream           = attrs.Stream
	attrExplanation      = attrs.Explanation
	attrCalibrating      = attrs.Calibrating
	attrNCD              = attrs.NCD
	attrCompressionRatio = attrs.CompressionRatio
	attrEntropy          = attrs.Entropy
	attrDrift            = attrs.Drift
	attrConfigHash       = attrs.ConfigHash
	attrConfig           = attrs.Config
	attrStatistic        = attrs.Statistic
	attrMetricName       = attrs.MetricName
)

// engine is one signal's detector with its telemetry and checkpointing. Each
// signal pipeline gets its own engine: stream ids are prefixed by the signal,
// so nothing would be gained by sharing one detector.
type engine struct {
	cfg        *Config
	form       signalForm
	signal     string // form.name()
	id         component.ID
	logger     *zap.Logger
	det        *cbad.Detector
	keys       *internTable
	configHash string // driftlock.config_hash
	configDoc  string // driftlock.config
	annotAll   bool

	tb      *metadata.TelemetryBuilder
	sigAttr metric.MeasurementOption

	// scoreValue is det.ScoreSeries; tests wrap it to see the values a
	// metric series feeds the detector (deltas of cumulative inputs).
	scoreValue func(key, family string, t time.Time, v float64) cbad.Result

	ckpt   *checkpointer
	fb     *feedback
	series *seriesTable // previous points of cumulative metric series
	join   *spanJoin    // caller -> callee span join (traces, edge_join_size > 0)
	// scrapes keeps one metric flag per stream and timestamp (metrics).
	scrapes *scrapeFlags
}

func newEngine(set processor.Settings, cfg *Config, form signalForm) (*engine, error) {
	det, err := cbad.New(cfg.Detector, form.detectorOptions(cfg)...)
	if err != nil {
		return nil, fmt.Errorf("driftlock: %w", err)
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("driftlock: telemetry: %w", err)
	}
	doc, hash := configJSON(cfg)
	signal := form.name()
	e := &engine{
		form:       form,
		configHash: hash,
		configDoc:  doc,
		cfg:        cfg,
		signal:     signal,
		id:         set.ID,
		logger:     set.Logger,
		det:        det,
		keys:       newInternTable(2 * cfg.Detector.MaxStreams),

		annotAll: cfg.Annotate == AnnotateAll,
		tb:       tb,
		sigAttr:  metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", signal))),
	}
	obs := metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", signal)))
	err = errors.Join(
		tb.RegisterProcessorDriftlockActiveStreamsCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(det.Stats().ActiveStreams), obs)
			return nil
		}),
		tb.RegisterProcessorDriftlockEvictedStreamsCallback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(det.Stats().EvictedStreams), obs) //nolint:gosec // a counter of evictions never nears 2^63
			return nil
		}),
	)
	if err != nil {
		tb.Shutdown()
		return nil, fmt.Errorf("driftlock: telemetry: %w", err)
	}
	e.scoreValue = det.ScoreSeries
	form.init(e)
	if cfg.Storage != nil {
		e.ckpt = newCheckpointer(e)
	}
	if lf, ok := form.(learnerForm); ok && cfg.Feedback.enabled() {
		e.fb = newFeedback(e, lf)
	}
	return e, nil
}

func (e *engine) start(ctx context.Context, host component.Host) error {
	if e.ckpt != nil {
		if err := e.ckpt.start(ctx, host); err != nil {
			return err
		}
	}
	if e.fb != nil {
		return e.fb.start(ctx, host)
	}
	return nil
}

func (e *engine) shutdown(ctx context.Context) error {
	var err error
	if e.fb != nil {
		e.fb.shutdown()
	}
	if e.ckpt != nil {
		err = e.ckpt.shutdown(ctx)
	}
	e.tb.Shutdown()
	return err
}

// effectiveConfig is what driftlock.config carries: everything that changes
// a verdict, as JSON (the store keeps it per driftlock.config_hash), that
// is the fields whose role (statehash.go) is roleState or roleVerdict.
// Its layout is a stored contract, so it is kept as written here;
// TestRolesDecideHashes fails when it and the roles disagree.
type effectiveConfig struct {
	Detector          cbad.Config `json:"detector"`
	StreamBy          []string    `json:"stream_by"`
	IncludeScopeName  bool        `json:"include_scope_name"`
	LogsAttributes    []string    `json:"logs_attributes"`
	TracesAttributes  []string    `json:"traces_attributes"`
	HistogramQuantile float64     `json:"histogram_quantile"`
	TracesLatency     bool        `json:"traces_latency"`
	EdgeJoinSize      int         `json:"traces_edge_join_size"`
	EdgeJoinTTL       string      `json:"traces_edge_join_ttl"`
}

// configJSON returns the effective configuration as JSON and its hash (first
// 16 hex digits of SHA-256). It runs once per processor.
func configJSON(cfg *Config) (doc, hash string) {
	b, err := json.Marshal(effectiveConfig{
		Detector: cfg.Detector, StreamBy: cfg.StreamBy, IncludeScopeName: cfg.IncludeScopeName,
		LogsAttributes: cfg.Logs.Attributes, TracesAttributes: cfg.Traces.Attributes,
		HistogramQuantile: cfg.Metrics.HistogramQuantile,
		TracesLatency:     cfg.Traces.Latency, EdgeJoinSize: cfg.Traces.EdgeJoinSize,
		EdgeJoinTTL: cfg.Traces.EdgeJoinTTL.String(),
	})
	if err != nil { // a struct of plain fields cannot fail; keep a stable fallback
		b = []byte("{}")
	}
	sum := sha256.Sum256(b)
	return string(b), hex.EncodeToString(sum[:8])
}

// tally accumulates one batch's counts so telemetry is recorded once per
// batch instead of once per record.
type tally struct {
	start       time.Time
	scored      int64
	anomalies   int64
	calibrating int64
	drift       int64
}

func (e *engine) newTally() tally { return tally{start: time.Now()} }

func (t *tally) add(r *cbad.Result) {
	t.scored++
	if r.Anomaly {
		t.anomalies++
	}
	if r.Calibrating {
		t.calibrating++
	}
	if r.Window != nil && r.Window.Drift {
		t.drift++
	}
}

func (e *engine) record(ctx context.Context, t *tally) {
	if t.scored == 0 {
		return
	}
	elapsed := time.Since(t.start).Seconds()
	e.tb.ProcessorDriftlockRecordsScored.Add(ctx, t.scored, e.sigAttr)
	e.tb.ProcessorDriftlockScoringDuration.Record(ctx, elapsed/float64(t.scored), e.sigAttr)
	if t.anomalies > 0 {
		e.tb.ProcessorDriftlockAnomalies.Add(ctx, t.anomalies, e.sigAttr)
	}
	if t.calibrating > 0 {
		e.tb.ProcessorDriftlockCalibratingRecords.Add(ctx, t.calibrating, e.sigAttr)
	}
	if t.drift > 0 {
		e.tb.ProcessorDriftlockDriftEvents.Add(ctx, t.drift, e.sigAttr)
	}
}

// wants reports whether a verdict is written on its record.
func (e *engine) wants(r *cbad.Result) bool {
	return e.annotAll || r.Anomaly || (r.Window != nil && r.Window.Drift)
}

// annotate writes the verdict r on m. Only driftlock.* keys are touched.
// While a stream calibrates its score means nothing, so only the
// calibrating flag is written.
func (e *engine) annotate(m pcommon.Map, stream string, r *cbad.Result) {
	m.PutBool(attrAnomaly, r.Anomaly)
	m.PutStr(attrStream, stream)
	if e.annotAll {
		m.PutBool(attrCalibrating, r.Calibrating)
	}
	if !r.Calibrating {
		m.PutDouble(attrScore, r.Score)
		m.PutDouble(attrPValue, r.PValue)
	}
	if r.Anomaly {
		if r.Explanation != "" {
			m.PutStr(attrExplanation, r.Explanation)
		}
		annotateCause(m, r)
		if e.cfg.IncludeConfigHash {
			m.PutStr(attrConfigHash, e.configHash)
			m.PutStr(attrConfig, e.configDoc)
		}
	}
	if w := r.Window; w != nil && w.Drift {
		m.PutBool(attrDrift, true)
		m.PutDouble(attrNCD, w.NCD)
		m.PutDouble(attrCompressionRatio, w.CompressionRatio)
		m.PutDouble(attrEntropy, w.Entropy)
	}
}

// annotateCause writes why a flagged record was flagged: its reason, its
// kind (template id) and, while one is open, the start of the ongoing
// condition (episode) it belongs to. Flagged records only: formatting
// allocates, and normal records stay untouched.
func annotateCause(m pcommon.Map, r *cbad.Result) {
	if r.Reason != "" {
		m.PutStr(attrs.Reason, r.Reason)
	}
	if r.Kind != 0 {
		m.PutStr(attrs.Kind, cbad.FormatKind(r.Kind))
	}
	if !r.Episode.IsZero() {
		m.PutStr(attrs.Episode, r.Episode.UTC().Format(time.RFC3339Nano))
	}
}

// streamKey builds the stream id "<signal>/<v1>/<v2>..." for a record: each
// stream_by key is looked up on the record, then on its resource; a missing
// key reads "-". The result is interned (see internTable).
func (e *engine) streamKey(s *scratch, rec, res pcommon.Map, scope string) string {
	s.key = e.appendStreamKey(s.key[:0], s, rec, res, scope)
	// Records come in runs of one resource, so most keys are the one
	// before: a comparison instead of the intern table's lock and lookup.
	if string(s.key) == s.lastKey {
		return s.lastKey
	}
	s.lastKey = e.keys.intern(s.key)
	return s.lastKey
}

func (e *engine) appendStreamKey(b []byte, s *scratch, rec, res pcommon.Map, scope string) []byte {
	b = append(b, e.signal...)
	for _, k := range e.cfg.StreamBy {
		b = append(b, '/')
		v, ok := rec.Get(k)
		if !ok {
			v, ok = res.Get(k)
		}
		if !ok {
			b = append(b, '-')
			continue
		}
		b = appendValue(b, v, s, len(b)+256, 0)
	}
	if e.cfg.IncludeScopeName {
		b = append(b, '/')
		b = append(b, scope...)
	}
	return b
}
