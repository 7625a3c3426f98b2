// Package driftlockexporter stores the records that the driftlock
// processor flagged (logs, spans, metric points) in Driftlock's PostgreSQL
// anomaly store, batched and idempotent, and notifies live listeners.
package driftlockexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/exporter/driftlockexporter/internal/metadata"
)

// Defaults.
const (
	defaultRetention         = 720 * time.Hour
	defaultRetentionInterval = time.Hour
	defaultBatchSize         = 1000
	defaultGraphFlush        = 10 * time.Second
)

// NewFactory returns the factory of the driftlock exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(createLogs, metadata.LogsStability),
		exporter.WithTraces(createTraces, metadata.TracesStability),
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		TimeoutConfig:     exporterhelper.NewDefaultTimeoutConfig(),
		BackOffConfig:     configretry.NewDefaultBackOffConfig(),
		QueueSettings:     configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		OnlyAnomalies:     true,
		Retention:         defaultRetention,
		RetentionInterval: defaultRetentionInterval,
		BatchSize:         defaultBatchSize,
		MigrateOnStart:    true,
		ServiceGraph:      ServiceGraphConfig{Enabled: true, FlushInterval: defaultGraphFlush},
	}
}

func helperOptions(cfg *Config, w *writer) []exporterhelper.Option {
	return []exporterhelper.Option{
		// The exporter converts pdata into rows and never mutates it.
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(cfg.TimeoutConfig),
		exporterhelper.WithRetry(cfg.BackOffConfig),
		exporterhelper.WithQueue(cfg.QueueSettings),
		exporterhelper.WithStart(w.start),
		exporterhelper.WithShutdown(w.shutdown),
	}
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	w, err := newWriter(c, set, signalLogs)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewLogs(ctx, set, cfg, push(w, w.logsBatch), helperOptions(c, w)...)
}

func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	w, err := newWriter(c, set, signalTraces)
	if err != nil {
		return nil, err
	}
	toBatch := w.tracesBatch
	if c.ServiceGraph.Enabled {
		// Every span, flagged or not, teaches the graph before the
		// flagged ones become rows (servicegraph.go).
		w.graph = newGraphWriter(w, c.ServiceGraph.FlushInterval)
		toBatch = func(td ptrace.Traces, now time.Time) *batch {
			w.graph.observe(td, now)
			return w.tracesBatch(td, now)
		}
	}
	return exporterhelper.NewTraces(ctx, set, cfg, push(w, toBatch), helperOptions(c, w)...)
}

func createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	c := cfg.(*Config)
	w, err := newWriter(c, set, signalMetrics)
	if err != nil {
		return nil, err
	}
	return exporterhelper.NewMetrics(ctx, set, cfg, push(w, w.metricsBatch), helperOptions(c, w)...)
}
