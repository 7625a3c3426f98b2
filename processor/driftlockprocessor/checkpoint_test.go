package driftlockprocessor

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/driftlock/driftlock/processor/driftlockprocessor/internal/metadata"
)

// storageHost is a Collector host holding one real file_storage extension.
type storageHost struct {
	component.Host
	exts map[component.ID]component.Component
}

func (h storageHost) GetExtensions() map[component.ID]component.Component { return h.exts }

var fileStorageID = component.MustNewIDWithName("file_storage", "driftlock")

// startFileStorage starts contrib's file_storage extension on dir.
func startFileStorage(t *testing.T, dir string) (storageHost, storage.Extension) {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	ext, err := f.Create(context.Background(), extension.Settings{
		ID:                fileStorageID,
		TelemetrySettings: componenttest.NewNopTelemetrySettings(),
		BuildInfo:         component.NewDefaultBuildInfo(),
	}, cfg)
	require.NoError(t, err)
	host := storageHost{Host: componenttest.NewNopHost(), exts: map[component.ID]component.Component{fileStorageID: ext}}
	require.NoError(t, ext.Start(context.Background(), host))
	return host, ext.(storage.Extension)
}

func storedCheckpoint(t *testing.T, se storage.Extension) []byte {
	t.Helper()
	c, err := se.GetClient(context.Background(), component.KindProcessor, component.NewID(metadata.Type), signalLogs)
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close(context.Background())) }()
	b, err := c.Get(context.Background(), "detector/logs")
	require.NoError(t, err)
	return b
}

func calibratingFlags(ld plog.Logs) (calibrating, total int) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, lr := range rl.ScopeLogs().At(0).LogRecords().All() {
			total++
			if v, ok := lr.Attributes().Get(attrCalibrating); ok && v.Bool() {
				calibrating++
			}
		}
	}
	return calibrating, total
}

// TestCheckpointRestoreFileStorage: a processor warms up two streams and
// shuts down (final checkpoint into file_storage); a new processor on the
// same storage resumes them, so its first records are not calibrating,
// while a processor without storage starts a new warm-up.
func TestCheckpointRestoreFileStorage(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Annotate = AnnotateAll
	cfg.Storage = &fileStorageID
	cfg.CheckpointInterval = 0 // shutdown only: the test controls when

	host, se := startFileStorage(t, dir)
	rng := rand.New(rand.NewPCG(9, 9))
	{
		p, err := NewFactory().CreateLogs(context.Background(), testSettings(), cfg, consumertest.NewNop())
		require.NoError(t, err)
		require.NoError(t, p.Start(context.Background(), host))
		for range 10 {
			require.NoError(t, p.ConsumeLogs(context.Background(), genLogs(rng, 2, 100, -1)))
		}
		require.NoError(t, p.Shutdown(context.Background()))
	}
	data := storedCheckpoint(t, se)
	require.NotEmpty(t, data)
	assert.True(t, bytes.HasPrefix(data, []byte(checkpointMagic)))
	require.NoError(t, se.Shutdown(context.Background()))

	// A new collector process: a new extension instance on the same directory.
	host2, se2 := startFileStorage(t, dir)
	defer func() { require.NoError(t, se2.Shutdown(context.Background())) }()
	sink := new(consumertest.LogsSink)
	p2 := startLogs(t, cfg, sink, testSettings(), host2)
	require.NoError(t, p2.ConsumeLogs(context.Background(), genLogs(rng, 2, 10, -1)))
	cal, total := calibratingFlags(sink.AllLogs()[0])
	assert.Equal(t, 20, total)
	assert.Zero(t, cal, "restored streams must not open a new warm-up")

	// Control: without storage the same records are calibrating.
	fresh := testConfig()
	fresh.Annotate = AnnotateAll
	sink3 := new(consumertest.LogsSink)
	p3 := startLogs(t, fresh, sink3, testSettings(), componenttest.NewNopHost())
	require.NoError(t, p3.ConsumeLogs(context.Background(), genLogs(rng, 2, 10, -1)))
	cal, _ = calibratingFlags(sink3.AllLogs()[0])
	assert.Equal(t, 20, cal)
}

// TestCheckpointRestoreDependsOnStateSettings: a checkpoint is restored
// after tuning decision settings (p_value, min_effect, permutations,
// warmup), and not after a change of what the learned state means (baseline
// size, the canonical record's attributes): those start a new warm-up, and
// start still succeeds.
func TestCheckpointRestoreDependsOnStateSettings(t *testing.T) {
	cases := []struct {
		name     string
		mutate   func(*Config)
		restored bool
	}{
		{"p_value, min_effect, permutations, warmup", func(c *Config) {
			c.Detector.PValue, c.Detector.MinEffect, c.Detector.Permutations, c.Detector.Warmup = 0.005, 2, 200, 32
		}, true},
		{"baseline_size", func(c *Config) { c.Detector.BaselineSize = 256 }, false},
		{"logs.attributes", func(c *Config) { c.Logs.Attributes = []string{"http.route"} }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host, se := startFileStorage(t, t.TempDir())
			defer func() { require.NoError(t, se.Shutdown(context.Background())) }()
			cfg := testConfig()
			cfg.Annotate = AnnotateAll
			cfg.Storage = &fileStorageID
			p := startLogsNoCleanup(t, cfg, host)
			require.NoError(t, p.ConsumeLogs(context.Background(), genLogs(rand.New(rand.NewPCG(1, 1)), 1, 500, -1)))
			require.NoError(t, p.Shutdown(context.Background()))

			other := testConfig()
			other.Annotate = AnnotateAll
			other.Storage = &fileStorageID
			tc.mutate(other)
			require.NoError(t, other.Validate())
			sink := new(consumertest.LogsSink)
			p2 := startLogs(t, other, sink, testSettings(), host)
			require.NoError(t, p2.ConsumeLogs(context.Background(), genLogs(rand.New(rand.NewPCG(1, 1)), 1, 5, -1)))
			cal, total := calibratingFlags(sink.AllLogs()[0])
			require.Equal(t, 5, total)
			if tc.restored {
				assert.Zero(t, cal, "the learned state was restored")
			} else {
				assert.Equal(t, total, cal, "a new warm-up")
			}
		})
	}
}

// TestStateHash: which settings a checkpoint depends on, field by field
// (stream_by and the scope name change every stream key, which the
// calibrating flags alone cannot show).
func TestStateHash(t *testing.T) {
	base := testConfig()
	for _, sig := range []signalForm{logsForm{}, tracesForm{}, metricsForm{}} {
		want := stateHash(base, sig)
		for name, tc := range map[string]struct {
			mutate func(*Config)
			same   bool
		}{
			"p_value":            {func(c *Config) { c.Detector.PValue = 0.001 }, true},
			"admit_after":        {func(c *Config) { c.Detector.AdmitAfter = 3 }, true},
			"seed":               {func(c *Config) { c.Detector.Seed = 7 }, true},
			"annotate":           {func(c *Config) { c.Annotate = AnnotateAll }, true},
			"hop":                {func(c *Config) { c.Detector.Hop = 32 }, false},
			"canonicalize":       {func(c *Config) { c.Detector.Canonicalize = false }, false},
			"stream_by":          {func(c *Config) { c.StreamBy = []string{"host.name"} }, false},
			"include_scope_name": {func(c *Config) { c.IncludeScopeName = true }, false},
		} {
			c := testConfig()
			tc.mutate(c)
			if got := stateHash(c, sig) == want; got != tc.same {
				t.Errorf("%s: changing %s keeps the checkpoint: %v, want %v", sig.name(), name, got, tc.same)
			}
		}
	}
	// Each signal's own canonical form, and only its own.
	c := testConfig()
	c.Traces.Attributes = []string{"http.route"}
	assert.NotEqual(t, stateHash(base, tracesForm{}), stateHash(c, tracesForm{}))
	assert.Equal(t, stateHash(base, logsForm{}), stateHash(c, logsForm{}))
	c = testConfig()
	c.Metrics.HistogramQuantile = 0.99
	assert.NotEqual(t, stateHash(base, metricsForm{}), stateHash(c, metricsForm{}))
}

func startLogsNoCleanup(t *testing.T, cfg *Config, host component.Host) interface {
	ConsumeLogs(context.Context, plog.Logs) error
	Shutdown(context.Context) error
} {
	p, err := NewFactory().CreateLogs(context.Background(), testSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), host))
	return p
}

// TestCheckpointCorruptValue: garbage under the checkpoint key is reported
// in telemetry and start succeeds with fresh state.
func TestCheckpointCorruptValue(t *testing.T) {
	host, se := startFileStorage(t, t.TempDir())
	defer func() { require.NoError(t, se.Shutdown(context.Background())) }()
	c, err := se.GetClient(context.Background(), component.KindProcessor, component.NewID(metadata.Type), signalLogs)
	require.NoError(t, err)
	require.NoError(t, c.Set(context.Background(), "detector/logs", []byte("not a checkpoint")))
	require.NoError(t, c.Close(context.Background()))

	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := testSettings()
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := testConfig()
	cfg.Storage = &fileStorageID
	startLogs(t, cfg, consumertest.NewNop(), set, host)
	m, err := tel.GetMetric("otelcol_processor_driftlock_checkpoint_errors")
	require.NoError(t, err)
	assert.Equal(t, int64(1), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value)
}

// TestPeriodicCheckpoint: with checkpoint_interval set, a checkpoint appears
// in storage while the processor runs (polled, no timed assertion).
func TestPeriodicCheckpoint(t *testing.T) {
	host, se := startFileStorage(t, t.TempDir())
	defer func() { require.NoError(t, se.Shutdown(context.Background())) }()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := testSettings()
	set.TelemetrySettings = tel.NewTelemetrySettings()
	cfg := testConfig()
	cfg.Storage = &fileStorageID
	cfg.CheckpointInterval = time.Second
	p := startLogs(t, cfg, consumertest.NewNop(), set, host)
	require.NoError(t, p.ConsumeLogs(context.Background(), genLogs(rand.New(rand.NewPCG(1, 1)), 1, 50, -1)))
	require.Eventually(t, func() bool {
		m, err := tel.GetMetric("otelcol_processor_driftlock_checkpoints")
		return err == nil && m.Data.(metricdata.Sum[int64]).DataPoints[0].Value >= 1
	}, 30*time.Second, 50*time.Millisecond)
}

func TestStorageExtensionMissing(t *testing.T) {
	cfg := testConfig()
	id := component.MustNewID("file_storage")
	cfg.Storage = &id
	p, err := NewFactory().CreateLogs(context.Background(), testSettings(), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = p.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorIs(t, err, errStorageNotFound)
	assert.Contains(t, err.Error(), "file_storage")
	require.NoError(t, p.Shutdown(context.Background()))
}
