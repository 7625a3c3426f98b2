package driftlockprocessor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/driftlock/driftlock/exporter/driftlockexporter"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// TestFeedbackLearnsFalsePositives runs the whole triage loop on a real
// PostgreSQL: the processor flags a record, the driftlock exporter stores
// it, a person marks it false_positive, the next feedback pull teaches it
// to the detector; then the same kind of record is no longer flagged while a
// genuinely new kind still is.
func TestFeedbackLearnsFalsePositives(t *testing.T) {
	st, dsn := storetest.Open(t)
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
	cfg.Feedback.DSN = configopaque.String(dsn)
	cfg.Feedback.Interval = 24 * time.Hour // pulled by hand below
	// Anomalies never enter the baseline by themselves: only feedback teaches.
	cfg.Detector.AdmitAfter = 0
	require.NoError(t, cfg.Validate())
	e, err := newEngine(testSettings(), cfg, signalLogs)
	require.NoError(t, err)
	p, err := processorhelper.NewLogs(ctx, testSettings(), cfg, exp, e.processLogs,
		processorhelper.WithStart(e.start), processorhelper.WithShutdown(e.shutdown), mutates)
	require.NoError(t, err)
	require.NoError(t, p.Start(ctx, componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(ctx)) })

	rng := rand.New(rand.NewPCG(11, 11))
	seq := 0
	// send feeds n normal lines with extra lines at the end and returns
	// whether each extra line was flagged.
	send := func(n int, extra ...string) []bool {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "checkout")
		recs := rl.ScopeLogs().AppendEmpty().LogRecords()
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		add := func(body string) plog.LogRecord {
			lr := recs.AppendEmpty()
			seq++
			lr.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(seq) * time.Millisecond)))
			lr.SetSeverityNumber(plog.SeverityNumberInfo)
			lr.SetSeverityText("INFO")
			lr.Body().SetStr(body)
			return lr
		}
		for range n {
			add(normalLine(rng))
		}
		var extras []plog.LogRecord
		for _, x := range extra {
			extras = append(extras, add(x))
		}
		require.NoError(t, p.ConsumeLogs(ctx, ld))
		out := make([]bool, len(extras))
		for i, lr := range extras {
			v, ok := lr.Attributes().Get(attrAnomaly)
			out[i] = ok && v.Bool()
		}
		return out
	}
	kindA := func() string {
		return fmt.Sprintf("retrying shipment quote from carrier-%d after upstream timeout (attempt %d of %d)",
			rng.IntN(9), 10000+rng.IntN(90000), 10000+rng.IntN(90000))
	}
	kindB := "circuit breaker OPEN for inventory-service: rejecting all calls"

	send(600)
	require.Equal(t, []bool{true}, send(50, kindA()), "a new kind of record is flagged")
	require.Equal(t, []bool{true}, send(50, kindA()), "and stays flagged without feedback (admit_after: 0)")

	// Triage: the stored anomalies of kind A are marked false positive.
	items, _, err := st.ListAnomalies(ctx, store.AnomalyFilter{Stream: "logs/checkout"}, nil, 100)
	require.NoError(t, err)
	marked := 0
	for _, a := range items {
		if strings.Contains(a.Summary, "retrying shipment quote") {
			fp := store.StatusFalsePositive
			_, err := st.UpdateAnomaly(ctx, a.ID, a.Version, store.AnomalyUpdate{Status: &fp}, "tester")
			require.NoError(t, err)
			marked++
		}
	}
	require.Equal(t, 2, marked, "both flagged records reached the store")

	learned, err := e.fb.pull(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, learned)
	again, err := e.fb.pull(ctx)
	require.NoError(t, err)
	assert.Zero(t, again, "a record is learned once")

	got := send(50, kindA(), kindB)
	assert.False(t, got[0], "the same kind is not flagged after the feedback pull")
	assert.True(t, got[1], "a genuinely new kind still is")
}

func TestFeedbackConfigValidation(t *testing.T) {
	cfg := testConfig()
	cfg.Feedback.DSN = "postgres://u@127.0.0.1:5432/db"
	cfg.Feedback.Interval = 10 * time.Millisecond
	err := cfg.Validate()
	require.ErrorIs(t, err, ErrFeedback)
	assert.Contains(t, err.Error(), "feedback.interval")
	cfg.Feedback.Interval = time.Minute
	cfg.Feedback.DSN = "postgres://u@127.0.0.1:notaport/db"
	err = cfg.Validate()
	require.ErrorIs(t, err, ErrFeedback)
	assert.Contains(t, err.Error(), "feedback.dsn")
	cfg.Feedback.DSN = ""
	require.NoError(t, cfg.Validate(), "no DSN: feedback disabled, other fields unchecked")
}
