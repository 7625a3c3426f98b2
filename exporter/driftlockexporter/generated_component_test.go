// Lifecycle tests in mdatagen's shape (written by hand: mdatagen is not served here).

package driftlockexporter

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pipeline"

	"github.com/driftlock/driftlock/exporter/driftlockexporter/internal/metadata"
)

var typ = component.MustNewType("driftlock")

func TestComponentFactoryType(t *testing.T) {
	if NewFactory().Type() != typ || metadata.Type != typ {
		t.Fatalf("type %v", NewFactory().Type())
	}
	f := NewFactory()
	if f.LogsStability() != component.StabilityLevelAlpha || f.TracesStability() != component.StabilityLevelAlpha ||
		f.MetricsStability() != component.StabilityLevelAlpha {
		t.Fatal("all three signals must be alpha")
	}
}

func TestComponentLifecycle(t *testing.T) {
	_, dsn := openDB(t)
	factory := NewFactory()
	tests := []struct {
		signal pipeline.Signal
		create func(ctx context.Context, set exporter.Settings, cfg component.Config) (component.Component, error)
		push   func(c component.Component) error
	}{
		{pipeline.SignalLogs, func(ctx context.Context, set exporter.Settings, cfg component.Config) (component.Component, error) {
			return factory.CreateLogs(ctx, set, cfg)
		}, func(c component.Component) error {
			return c.(exporter.Logs).ConsumeLogs(context.Background(), plog.NewLogs())
		}},
		{pipeline.SignalTraces, func(ctx context.Context, set exporter.Settings, cfg component.Config) (component.Component, error) {
			return factory.CreateTraces(ctx, set, cfg)
		}, func(c component.Component) error {
			return c.(exporter.Traces).ConsumeTraces(context.Background(), ptrace.NewTraces())
		}},
		{pipeline.SignalMetrics, func(ctx context.Context, set exporter.Settings, cfg component.Config) (component.Component, error) {
			return factory.CreateMetrics(ctx, set, cfg)
		}, func(c component.Component) error {
			return c.(exporter.Metrics).ConsumeMetrics(context.Background(), pmetric.NewMetrics())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.signal.String()+"-shutdown", func(t *testing.T) {
			cfg := factory.CreateDefaultConfig().(*Config)
			cfg.DSN = "postgres://127.0.0.1:1/none"
			c, err := tt.create(context.Background(), exportertest.NewNopSettings(typ), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(tt.signal.String()+"-lifecycle", func(t *testing.T) {
			cfg := factory.CreateDefaultConfig().(*Config)
			cfg.DSN = configopaque.String(dsn)
			for range 2 {
				c, err := tt.create(context.Background(), exportertest.NewNopSettings(typ), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Start(context.Background(), componenttest.NewNopHost()); err != nil {
					t.Fatal(err)
				}
				if err := tt.push(c); err != nil {
					t.Fatalf("empty batch: %v", err)
				}
				if err := c.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
