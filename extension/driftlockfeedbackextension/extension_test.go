package driftlockfeedbackextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
	"github.com/driftlock/driftlock/internal/triage"
)

// TestReadsFalsePositives: the extension answers the processor's question
// from a real PostgreSQL, and only while started.
func TestReadsFalsePositives(t *testing.T) {
	st, dsn := storetest.Open(t)
	ctx := context.Background()
	_, err := st.InsertAnomalies(ctx, []store.Anomaly{{
		Fingerprint: "fp-1", Signal: store.SignalLogs, Stream: "logs/checkout", Service: "checkout",
		ObservedAt: time.Now(), Score: 9, PValue: 0.001, Summary: "retrying quote",
		Record: map[string]any{"body": "retrying quote"},
	}})
	require.NoError(t, err)
	items, _, err := st.ListAnomalies(ctx, store.AnomalyFilter{}, nil, 10)
	require.NoError(t, err)
	require.Len(t, items, 1)
	fp := store.StatusFalsePositive
	_, err = st.UpdateAnomaly(ctx, items[0].ID, items[0].Version, store.AnomalyUpdate{Status: &fp}, "tester")
	require.NoError(t, err)

	cfg := createDefaultConfig().(*Config)
	cfg.DSN = configopaque.String(dsn)
	require.NoError(t, cfg.Validate())
	ext, err := NewFactory().Create(ctx, extensiontest.NewNopSettings(typ), cfg)
	require.NoError(t, err)
	src, ok := ext.(triage.Source)
	require.True(t, ok, "the extension is a triage.Source")

	_, err = src.FalsePositives(ctx, store.SignalLogs, triage.Key{}, 10)
	require.ErrorIs(t, err, errNotStarted)

	require.NoError(t, ext.Start(ctx, componenttest.NewNopHost()))
	got, err := src.FalsePositives(ctx, store.SignalLogs, triage.Key{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, items[0].ID, got[0].ID)
	assert.Equal(t, "logs/checkout", got[0].Stream)
	assert.JSONEq(t, `{"body":"retrying quote"}`, string(got[0].Record))

	require.NoError(t, ext.Shutdown(ctx))
	_, err = src.FalsePositives(ctx, store.SignalLogs, triage.Key{}, 10)
	require.ErrorIs(t, err, errNotStarted)
}

// TestStartsWhileTheStoreIsDown: the pool is lazy, so a collector starts
// (and the processor's pulls fail, logged) while PostgreSQL is down.
func TestStartsWhileTheStoreIsDown(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.DSN = "postgres://driftlock@127.0.0.1:1/driftlock?connect_timeout=1"
	ext, err := NewFactory().Create(context.Background(), extensiontest.NewNopSettings(typ), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	_, err = ext.(triage.Source).FalsePositives(context.Background(), store.SignalLogs, triage.Key{}, 10)
	require.Error(t, err)
	require.NoError(t, ext.Shutdown(context.Background()))
}
