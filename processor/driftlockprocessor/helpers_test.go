package driftlockprocessor

import (
	"go.opentelemetry.io/collector/pdata/plog"

	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/driftlock/driftlock/processor/driftlockprocessor/internal/metadata"
)

func testConfig() *Config { return createDefaultConfig().(*Config) }

func testSettings() processor.Settings { return processortest.NewNopSettings(metadata.Type) }

// startLogs creates and starts a logs processor with cfg, shut down at the
// end of the test.
func startLogs(t testing.TB, cfg *Config, next consumer.Logs, set processor.Settings, host component.Host) processor.Logs {
	t.Helper()
	p, err := NewFactory().CreateLogs(context.Background(), set, cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

func startTraces(t testing.TB, cfg *Config, next consumer.Traces) processor.Traces {
	t.Helper()
	p, err := NewFactory().CreateTraces(context.Background(), testSettings(), cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

func startMetrics(t testing.TB, cfg *Config, next consumer.Metrics) processor.Metrics {
	t.Helper()
	p, err := NewFactory().CreateMetrics(context.Background(), testSettings(), cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return p
}

// sharedDir returns ../shared/<rel> relative to the repository root (found by
// walking up to go.mod), or skips the test when it is absent.
func sharedDir(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("repository root (go.mod) not found")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared data %s is absent (%v): skipping", p, err)
	}
	return p
}

// perService returns create's result for a service, creating it on the
// service's first call: the resource of each service is appended in
// first-seen order and reused after.
func perService[T any](create func(service string) T) func(string) T {
	made := map[string]T{}
	return func(service string) T {
		v, ok := made[service]
		if !ok {
			v = create(service)
			made[service] = v
		}
		return v
	}
}

// logsByService builds plog.Logs one resource per service.name, in first-seen
// order, and returns the function that appends a record to its service's
// resource (so records keep their input order within a service).
func logsByService() (plog.Logs, func(service string) plog.LogRecord) {
	ld := plog.NewLogs()
	records := perService(func(service string) plog.LogRecordSlice {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", service)
		return rl.ScopeLogs().AppendEmpty().LogRecords()
	})
	return ld, func(service string) plog.LogRecord { return records(service).AppendEmpty() }
}

// spansByService is logsByService for spans.
func spansByService() (ptrace.Traces, func(service string) ptrace.Span) {
	td := ptrace.NewTraces()
	spans := perService(func(service string) ptrace.SpanSlice {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", service)
		return rs.ScopeSpans().AppendEmpty().Spans()
	})
	return td, func(service string) ptrace.Span { return spans(service).AppendEmpty() }
}

// metricsByService is logsByService for metrics.
func metricsByService() (pmetric.Metrics, func(service string) pmetric.Metric) {
	md := pmetric.NewMetrics()
	metrics := perService(func(service string) pmetric.MetricSlice {
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", service)
		return rm.ScopeMetrics().AppendEmpty().Metrics()
	})
	return md, func(service string) pmetric.Metric { return metrics(service).AppendEmpty() }
}
