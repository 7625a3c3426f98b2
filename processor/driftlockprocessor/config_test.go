package driftlockprocessor

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/driftlock/driftlock/internal/cbad"
	"github.com/driftlock/driftlock/processor/driftlockprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	full := createDefaultConfig().(*Config)
	// Start from the core's defaults so fields added to cbad.Config later keep
	// their default here; set every field the YAML sets.
	d := cbad.DefaultConfig()
	d.Compressor, d.BaselineSize, d.Hop, d.CalibrationSize = cbad.CompressorZstd, 1024, 128, 256
	d.Warmup, d.PValue, d.MinEffect, d.MaxStreams, d.IdleTimeout = 200, 0.005, 2, 5000, 30*time.Minute
	d.DriftWindows, d.Permutations, d.Seed, d.MaxRecordBytes = 3, 100, 7, 8192
	d.Canonicalize, d.UseSeverity = true, false
	full.Detector = d
	full.StreamBy = []string{"service.name", "k8s.namespace.name"}
	full.IncludeScopeName = true
	full.Annotate = AnnotateAll
	full.IncludeConfigHash = true
	full.Logs = LogsConfig{Enabled: true, Attributes: []string{"http.route", "code.function"}}
	full.Traces.Enabled = false
	full.Metrics = MetricsConfig{Enabled: true, AnnotateDataPoints: true, HistogramQuantile: 0.99, MaxSeries: 5000}
	storageID := component.MustNewIDWithName("file_storage", "driftlock")
	full.Storage = &storageID
	full.CheckpointInterval = 30 * time.Second
	full.Feedback = FeedbackConfig{Source: &feedbackID, Interval: 2 * time.Minute, MaxRecords: 500}

	logsOnly := createDefaultConfig().(*Config)
	logsOnly.Traces.Enabled = false
	logsOnly.Metrics.Enabled = false

	tests := []struct {
		name    string
		want    *Config
		wantErr error
	}{
		{name: "", want: createDefaultConfig().(*Config)},
		{name: "full", want: full},
		{name: "logs_only", want: logsOnly},
		{name: "bad_annotate", wantErr: ErrAnnotate},
		{name: "bad_p_value", wantErr: cbad.ErrPValue},
		{name: "bad_hop", wantErr: cbad.ErrHop},
		{name: "bad_compressor", wantErr: cbad.ErrCompressor},
		{name: "bad_permutations", wantErr: cbad.ErrPermutations},
		{name: "no_signal", wantErr: ErrNoSignal},
		{name: "empty_stream_by", wantErr: ErrStreamBy},
		{name: "dup_stream_by", wantErr: ErrStreamBy},
		{name: "empty_attribute", wantErr: ErrAttributes},
		{name: "bad_checkpoint_interval", wantErr: ErrCheckpointInterval},
		{name: "bad_quantile", wantErr: ErrQuantile},
		{name: "bad_max_series", wantErr: ErrMaxSeries},
		{name: "bad_edge_join_size", wantErr: ErrEdgeJoin},
		{name: "bad_latency_window", wantErr: cbad.ErrLatency},
		{name: "bad_feedback_interval", wantErr: ErrFeedback},
	}
	for _, tt := range tests {
		t.Run("driftlock/"+tt.name, func(t *testing.T) {
			id := component.NewIDWithName(metadata.Type, tt.name)
			sub, err := cm.Sub(id.String())
			require.NoError(t, err)
			cfg := createDefaultConfig().(*Config)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

// TestConfigErrorsNameFieldAndRange checks the messages a user sees.
func TestConfigErrorsNameFieldAndRange(t *testing.T) {
	cases := []struct {
		mutate func(*Config)
		want   []string
	}{
		{func(c *Config) { c.Annotate = "x" }, []string{"annotate", "anomalies, all", `"x"`}},
		{func(c *Config) { c.Detector.PValue = 2 }, []string{"detector.", "p_value", "0 < p_value < 1"}},
		{func(c *Config) { c.StreamBy = []string{"a", "a"} }, []string{"stream_by[1]", "twice"}},
		{func(c *Config) { c.Traces.Attributes = []string{""} }, []string{"traces.attributes[0]", "empty"}},
		{func(c *Config) { c.CheckpointInterval = time.Millisecond }, []string{"checkpoint_interval", "1s..24h0m0s"}},
		{func(c *Config) { c.Metrics.HistogramQuantile = 0 }, []string{"histogram_quantile", "0 < histogram_quantile < 1"}},
		{func(c *Config) { c.Metrics.MaxSeries = -1 }, []string{"max_series", "1..10000000"}},
		{func(c *Config) { c.Traces.EdgeJoinTTL = 0 }, []string{"edge_join_ttl", "0 < ttl <= 1h"}},
		{func(c *Config) { c.Detector.LatencyPValue = 0 }, []string{"latency_p_value", "0 < p < 1"}},
	}
	for _, tc := range cases {
		cfg := createDefaultConfig().(*Config)
		tc.mutate(cfg)
		err := cfg.Validate()
		require.Error(t, err)
		for _, w := range tc.want {
			assert.Contains(t, err.Error(), w)
		}
	}
}

func TestUnknownFieldRejected(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub("driftlock/unknown_field")
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	err = sub.Unmarshal(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "annotation")
}

// TestValidateReportsEveryMistake: one Validate names every mistake of a
// configuration (what `otelcol-driftlock validate` prints), each with its
// field and the allowed values.
func TestValidateReportsEveryMistake(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub("driftlock/many_mistakes")
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	err = confmap.Validate(cfg)
	require.Error(t, err)
	for _, sentinel := range []error{ErrDetector, cbad.ErrPValue, cbad.ErrHop, ErrAnnotate, ErrStreamBy, ErrCheckpointInterval, ErrQuantile, ErrMaxSeries, ErrFeedback} {
		assert.ErrorIs(t, err, sentinel)
	}
	for _, want := range []string{
		"detector is invalid: detector.p_value out of range: got 1.5, want 0 < p_value < 1",
		"detector is invalid: detector.hop out of range: got 1000, want 4..baseline_size (512)",
		`annotate must be one of anomalies, all: got "everything"`,
		`stream_by[1] "service.name" is listed twice`,
		"stream_by[2] is empty",
		"checkpoint_interval out of range: got 10ms, want 0 (shutdown only) or 1s..24h0m0s",
		"got 2, want 0 < histogram_quantile < 1",
		"metrics.max_series out of range: got 0, want 1..10000000",
		"feedback.endpoint: scheme must be http or https",
		"feedback.api_key is required",
		"feedback.interval got 1ms, want 1s..24h0m0s",
	} {
		assert.Contains(t, err.Error(), want)
	}
}
