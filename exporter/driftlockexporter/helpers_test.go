package driftlockexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/driftlock/driftlock/exporter/driftlockexporter/internal/metadata"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

var baseTime = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// syncConfig is a config without a queue (ConsumeX returns the write's
// outcome) and without retention, on dsn.
func syncConfig(dsn string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.DSN = configopaque.String(dsn)
	cfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.BackOffConfig.Enabled = false
	cfg.Retention = 0
	return cfg
}

// testSettings returns exporter settings whose meter is readable.
func testSettings(t *testing.T) (exporter.Settings, *componenttest.Telemetry) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	set := exportertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tt.NewTelemetrySettings()
	return set, tt
}

// counter sums an int64 counter of the self-telemetry (0 when absent).
func counter(t *testing.T, tt *componenttest.Telemetry, name string) int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	if err != nil {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T", name, m.Data)
	}
	var n int64
	for _, dp := range sum.DataPoints {
		n += dp.Value
	}
	return n
}

// wantCounter fails the test when the self-telemetry counter name is not want.
func wantCounter(t *testing.T, tt *componenttest.Telemetry, name string, want int64) {
	t.Helper()
	if n := counter(t, tt, name); n != want {
		t.Fatalf("%s = %d, want %d", name, n, want)
	}
}

func startLogs(t *testing.T, cfg *Config, set exporter.Settings, host component.Host) exporter.Logs {
	t.Helper()
	return startExporter(t, NewFactory().CreateLogs, cfg, set, host)
}

// startExporter creates one signal's exporter with create (the factory's
// CreateLogs, CreateTraces or CreateMetrics) and starts it.
func startExporter[E component.Component](tb testing.TB,
	create func(context.Context, exporter.Settings, component.Config) (E, error),
	cfg *Config, set exporter.Settings, host component.Host,
) E {
	tb.Helper()
	exp, err := create(context.Background(), set, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := exp.Start(context.Background(), host); err != nil {
		tb.Fatal(err)
	}
	return exp
}

// startOnDB starts one signal's exporter (syncConfig) on a fresh database
// and shuts it down when the test ends.
func startOnDB[E component.Component](t *testing.T,
	create func(context.Context, exporter.Settings, component.Config) (E, error),
) (*store.Store, E) {
	t.Helper()
	st, dsn := openDB(t)
	set, _ := testSettings(t)
	exp := startExporter(t, create, syncConfig(dsn), set, componenttest.NewNopHost())
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return st, exp
}

// flaggedLogs builds n log records numbered from first; record i is
// flagged when flagged(i).
func flaggedLogs(first, n int, flagged func(i int) bool) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	rl.Resource().Attributes().PutStr("host.name", "web-1")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("driftlock-test")
	for i := first; i < first+n; i++ {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(baseTime.Add(time.Duration(i) * time.Millisecond)))
		lr.SetSeverityText("ERROR")
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.Body().SetStr(fmt.Sprintf("payment %d failed: upstream timeout after %dms", i, 100+i%900))
		a := lr.Attributes()
		a.PutStr("http.route", "/pay")
		a.PutBool("driftlock.anomaly", flagged(i))
		a.PutDouble("driftlock.score", 6.25)
		a.PutDouble("driftlock.p_value", 0.002)
		a.PutStr("driftlock.stream", "checkout/app")
		if flagged(i) {
			a.PutStr("driftlock.explanation", "rare tokens: upstream, timeout")
		}
	}
	return ld
}

func all(int) bool { return true }

func rowCount(t *testing.T, st *store.Store) int {
	t.Helper()
	var n int
	if err := storetest.Pool(st).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// queryList runs query and renders each row with render.
func queryList(t *testing.T, st *store.Store, query string, render func(pgx.CollectableRow) (string, error)) []string {
	t.Helper()
	rows, err := storetest.Pool(st).Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, render)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// openDB is a fresh migrated database (skips without PostgreSQL).
func openDB(t *testing.T) (*store.Store, string) {
	t.Helper()
	return storetest.Open(t)
}

func storetestOpen(tb testing.TB) (*store.Store, string) { return storetest.Open(tb) }

func testSettingsB() exporter.Settings { return exportertest.NewNopSettings(metadata.Type) }

func itoa(i int) string { return fmt.Sprint(i) }

// unmarshalInto applies settings to a component config as the collector would.
func unmarshalInto(cfg any, settings map[string]any) error {
	return confmap.NewFromStringMap(settings).Unmarshal(cfg)
}
