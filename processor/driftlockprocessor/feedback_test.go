package driftlockprocessor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/driftlock/driftlock/exporter/driftlockexporter"
	"github.com/driftlock/driftlock/extension/driftlockfeedbackextension"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
	"github.com/driftlock/driftlock/processor/driftlockprocessor/internal/metadata"
)

// fbHarness is one pipeline for the feedback tests: the driftlock processor
// (logs) in front of the real driftlock exporter writing to a real
// PostgreSQL, with kind A (flagged, later marked false positive) and kind
// B (a genuinely new kind) records.
type fbHarness struct {
	t     *testing.T
	st    *store.Store
	dsn   string
	e     *engine
	p     processor.Logs
	rng   *rand.Rand
	seq   int
	clock time.Duration // record time, past t0
	kindB string
}

// newFBHarness builds the pipeline; cfgFn sets the feedback source. The
// processor is not started: call start.
func newFBHarness(t *testing.T, st *store.Store, dsn string, set processor.Settings, cfgFn func(*Config)) *fbHarness {
	t.Helper()
	ctx := context.Background()
	ecfg := driftlockexporter.NewFactory().CreateDefaultConfig().(*driftlockexporter.Config)
	ecfg.DSN = configopaque.String(dsn)
	ecfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	ecfg.BackOffConfig.Enabled = false
	ecfg.Retention = 0
	exp, err := driftlockexporter.NewFactory().CreateLogs(ctx, exportertest.NewNopSettings(driftlockexporter.NewFactory().Type()), ecfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, exp.Shutdown(ctx)) })

	cfg := testConfig()
	cfg.Feedback.Interval = 24 * time.Hour // pulled by hand unless cfgFn says otherwise
	// Anomalies never enter the baseline by themselves: only feedback teaches.
	cfg.Detector.AdmitAfter = 0
	cfgFn(cfg)
	require.NoError(t, cfg.Validate())
	e, err := newEngine(set, cfg, logsForm{})
	require.NoError(t, err)
	require.NotNil(t, e.fb, "feedback is configured")
	p, err := processorhelper.NewLogs(ctx, set, cfg, exp, e.processLogs,
		processorhelper.WithStart(e.start), processorhelper.WithShutdown(e.shutdown), mutates)
	require.NoError(t, err)
	require.NoError(t, p.Start(ctx, feedbackHost(t, dsn)))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(ctx)) })
	return &fbHarness{t: t, st: st, dsn: dsn, e: e, p: p, rng: rand.New(rand.NewPCG(11, 11)),
		kindB: "circuit breaker OPEN for inventory-service: rejecting all calls"}
}

// feedbackID names the driftlock_feedback extension of the tests.
var feedbackID = component.MustNewID("driftlock_feedback")

// extensionHost is a host that offers extensions (componenttest's nop host
// offers none).
type extensionHost struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h extensionHost) GetExtensions() map[component.ID]component.Component { return h.ext }

// feedbackHost returns a host offering a started driftlock_feedback
// extension (feedbackID) reading the store at dsn.
func feedbackHost(t testing.TB, dsn string) component.Host {
	t.Helper()
	f := driftlockfeedbackextension.NewFactory()
	cfg := f.CreateDefaultConfig().(*driftlockfeedbackextension.Config)
	cfg.DSN = configopaque.String(dsn)
	require.NoError(t, cfg.Validate())
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	return extensionHost{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{feedbackID: ext}}
}

// episodeGap is longer than the detector's episodes last without new
// evidence (episodeQuiet buckets of rate_bucket, 2m by default).
const episodeGap = 10 * time.Minute

// send feeds n normal lines with extra lines at the end and returns whether
// each extra line was flagged.
func (h *fbHarness) send(n int, extra ...string) []bool {
	h.t.Helper()
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if len(extra) > 0 {
		// Extra lines come after a quiet gap longer than the detector's
		// episodes (a novel kind is flagged once per episode), so their
		// verdict is about their kind, not about an episode still open.
		h.clock += episodeGap
	}
	add := func(body string) plog.LogRecord {
		lr := recs.AppendEmpty()
		h.seq++
		h.clock += time.Millisecond
		lr.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(h.clock)))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		lr.Body().SetStr(body)
		return lr
	}
	for range n {
		add(normalLine(h.rng))
	}
	var extras []plog.LogRecord
	for _, x := range extra {
		extras = append(extras, add(x))
	}
	require.NoError(h.t, h.p.ConsumeLogs(context.Background(), ld))
	out := make([]bool, len(extras))
	for i, lr := range extras {
		v, ok := lr.Attributes().Get(attrAnomaly)
		out[i] = ok && v.Bool()
	}
	return out
}

// kindA is one record of the kind that gets marked false positive: same
// shape, different numbers each time.
func (h *fbHarness) kindA() string {
	return fmt.Sprintf("retrying shipment quote from carrier-%d after upstream timeout (attempt %d of %d)",
		h.rng.IntN(9), 10000+h.rng.IntN(90000), 10000+h.rng.IntN(90000))
}

const kindASummary = "retrying shipment quote"

// flagKindA warms the stream up and has two kind-A records flagged and
// stored.
func (h *fbHarness) flagKindA() {
	h.t.Helper()
	h.send(600)
	require.Equal(h.t, []bool{true}, h.send(50, h.kindA()), "a new kind of record is flagged")
	require.Equal(h.t, []bool{true}, h.send(50, h.kindA()), "and stays flagged without feedback (admit_after: 0)")
}

// markKindAInStore marks the stored kind-A anomalies false positive
// directly in the store and returns how many it marked.
func (h *fbHarness) markKindAInStore() int {
	h.t.Helper()
	ctx := context.Background()
	items, _, err := h.st.ListAnomalies(ctx, store.AnomalyFilter{Stream: "logs/checkout"}, nil, 100)
	require.NoError(h.t, err)
	marked := 0
	for _, a := range items {
		if strings.Contains(a.Summary, kindASummary) {
			fp := store.StatusFalsePositive
			_, err := h.st.UpdateAnomaly(ctx, a.ID, a.Version, store.AnomalyUpdate{Status: &fp}, "tester")
			require.NoError(h.t, err)
			marked++
		}
	}
	return marked
}

// checkLearned pulls twice (the second learns nothing: each record is
// learned once) and checks the detector's verdicts afterwards.
func (h *fbHarness) checkLearned(ctx context.Context, want int) {
	h.t.Helper()
	learned, err := h.e.fb.pull(ctx)
	require.NoError(h.t, err)
	assert.Equal(h.t, want, learned)
	again, err := h.e.fb.pull(ctx)
	require.NoError(h.t, err)
	assert.Zero(h.t, again, "a record is learned once")

	got := h.send(50, h.kindA(), h.kindB)
	assert.False(h.t, got[0], "the same kind is not flagged after the feedback pull")
	assert.True(h.t, got[1], "a genuinely new kind still is")
}

// TestFeedbackLearnsFalsePositives runs the whole triage loop on a real
// PostgreSQL with feedback.source (a driftlock_feedback extension): the processor flags a record, the driftlock
// exporter stores it, a person marks it false_positive, the next feedback
// pull teaches it to the detector; then the same kind of record is no
// longer flagged while a genuinely new kind still is.
func TestFeedbackLearnsFalsePositives(t *testing.T) {
	st, dsn := storetest.Open(t)
	h := newFBHarness(t, st, dsn, testSettings(), func(c *Config) { c.Feedback.Source = &feedbackID })
	h.flagKindA()
	require.Equal(t, 2, h.markKindAInStore(), "both flagged records reached the store")
	h.checkLearned(context.Background(), 2)
}

// TestLoadFeedbackConfig loads the feedback variants of testdata/config.yaml.
func TestLoadFeedbackConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	load := func(name string) (*Config, error) {
		sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
		require.NoError(t, err)
		cfg := createDefaultConfig().(*Config)
		require.NoError(t, sub.Unmarshal(cfg))
		return cfg, confmap.Validate(cfg)
	}

	cfg, err := load("feedback_endpoint")
	require.NoError(t, err)
	want := createDefaultConfig().(*Config)
	want.Feedback.Endpoint = "https://anomalies.internal:8080"
	want.Feedback.APIKey = "dlk_example_not_a_real_key"
	want.Feedback.TLS.CAFile = "/etc/driftlock/ca.pem"
	want.Feedback.Lookback = 7 * 24 * time.Hour
	want.Feedback.Interval = 30 * time.Second
	want.Feedback.MaxRecords = 200
	assert.Equal(t, want, cfg)

	_, err = load("feedback_both")
	require.ErrorIs(t, err, ErrFeedbackSource)
	assert.Contains(t, err.Error(), "feedback.source")
	assert.Contains(t, err.Error(), "feedback.endpoint")

	// A configuration of the days the processor read PostgreSQL itself
	// fails with the way to the extension, and without the password.
	_, err = load("feedback_old_dsn")
	require.ErrorIs(t, err, ErrFeedback)
	assert.Contains(t, err.Error(), "driftlock_feedback extension")
	assert.NotContains(t, err.Error(), "s3cret")

	_, err = load("feedback_endpoint_no_key")
	require.ErrorIs(t, err, ErrFeedback)
	assert.Contains(t, err.Error(), "feedback.api_key")
}

func TestFeedbackConfigValidation(t *testing.T) {
	cfg := testConfig()
	cfg.Feedback.Source = &feedbackID
	cfg.Feedback.Interval = 10 * time.Millisecond
	err := cfg.Validate()
	require.ErrorIs(t, err, ErrFeedback)
	assert.Contains(t, err.Error(), "feedback.interval")
	cfg.Feedback.Interval = time.Minute
	cfg.Feedback.APIKey = "k"
	err = cfg.Validate()
	require.ErrorIs(t, err, ErrFeedback)
	assert.Contains(t, err.Error(), "feedback.api_key is used with feedback.endpoint only")
	cfg.Feedback.Source, cfg.Feedback.APIKey = nil, ""
	cfg.Feedback.Interval = 0
	require.NoError(t, cfg.Validate(), "no source: feedback disabled, other fields unchecked")
}

// TestFeedbackSourceMustBeAFeedbackExtension: feedback.source names an
// extension the host offers and that reads false positives.
func TestFeedbackSourceMustBeAFeedbackExtension(t *testing.T) {
	cfg := testConfig()
	cfg.Feedback.Source = &feedbackID
	require.NoError(t, cfg.Validate())
	p, err := NewFactory().CreateLogs(context.Background(), testSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = p.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorIs(t, err, errSourceNotFound)
	assert.Contains(t, err.Error(), "driftlock_feedback")
	require.NoError(t, p.Shutdown(context.Background()))

	nf := extensiontest.NewNopFactory()
	nop, err := nf.Create(context.Background(), extensiontest.NewNopSettings(nf.Type()), nf.CreateDefaultConfig())
	require.NoError(t, err)
	p, err = NewFactory().CreateLogs(context.Background(), testSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = p.Start(context.Background(), extensionHost{Host: componenttest.NewNopHost(),
		ext: map[component.ID]component.Component{feedbackID: nop}})
	require.ErrorIs(t, err, errNotSource)
	require.NoError(t, p.Shutdown(context.Background()))
}
