// Package driftlockprocessor scores logs, spans and metric series inline with
// Driftlock's compression-based anomaly detector (internal/cbad) and writes
// the verdicts as driftlock.* attributes or companion metrics.
package driftlockprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/driftlock/driftlock/processor/driftlockprocessor/internal/metadata"
)

// The processor writes attributes (and, for metrics, companion points) in
// place, so the pipeline must hand it data it may mutate.
var mutates = processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true})

// NewFactory returns the factory of the driftlock processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithLogs(createLogs, metadata.LogsStability),
		processor.WithTraces(createTraces, metadata.TracesStability),
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	c := cfg.(*Config)
	if !c.Logs.Enabled {
		return processorhelper.NewLogs(ctx, set, cfg, next, passLogs)
	}
	e, err := newEngine(set, c, logsForm{})
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, e.processLogs,
		processorhelper.WithStart(e.start), processorhelper.WithShutdown(e.shutdown), mutates)
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	c := cfg.(*Config)
	if !c.Traces.Enabled {
		return processorhelper.NewTraces(ctx, set, cfg, next, passTraces)
	}
	e, err := newEngine(set, c, tracesForm{})
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, e.processTraces,
		processorhelper.WithStart(e.start), processorhelper.WithShutdown(e.shutdown), mutates)
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	c := cfg.(*Config)
	if !c.Metrics.Enabled {
		return processorhelper.NewMetrics(ctx, set, cfg, next, passMetrics)
	}
	e, err := newEngine(set, c, metricsForm{})
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, e.processMetrics,
		processorhelper.WithStart(e.start), processorhelper.WithShutdown(e.shutdown), mutates)
}

// Pass-through functions for signals whose scoring is disabled.
func passLogs(_ context.Context, ld plog.Logs) (plog.Logs, error)                { return ld, nil }
func passTraces(_ context.Context, td ptrace.Traces) (ptrace.Traces, error)      { return td, nil }
func passMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) { return md, nil }
