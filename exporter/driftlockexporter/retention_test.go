package driftlockexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"

	"github.com/driftlock/driftlock/internal/store"
)

func TestRetentionDeletesExpiredAnomalies(t *testing.T) {
	st, dsn := openDB(t)
	ctx := context.Background()
	var rows []store.Anomaly
	for i := 0; i < 45; i++ {
		age := time.Hour
		if i < 30 {
			age = 10 * 24 * time.Hour
		}
		rows = append(rows, store.Anomaly{
			Fingerprint: fmt.Sprint("r", i), Signal: store.SignalLogs, Stream: "s",
			ObservedAt: time.Now().Add(-age), DetectedAt: time.Now().Add(-age), Score: 1,
		})
	}
	if _, err := st.InsertAnomalies(ctx, rows); err != nil {
		t.Fatal(err)
	}
	set, tt := testSettings(t)
	cfg := syncConfig(dsn)
	cfg.Retention = 7 * 24 * time.Hour
	cfg.RetentionInterval = 50 * time.Millisecond
	cfg.BatchSize = 7 // several bounded batches
	exp := startLogs(t, cfg, set, componenttest.NewNopHost())
	deadline := time.Now().Add(30 * time.Second)
	for rowCount(t, st) != 15 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rowCount(t, st); got != 15 {
		t.Fatalf("rows = %d, want the 15 recent ones", got)
	}
	wantCounter(t, tt, "otelcol_exporter_driftlock_retention_rows_deleted", 30)
}

// TestOneStorePerConfig: the logs, traces and metrics exporters of one
// configuration share one pool, migration and retention loop (the
// Collector's shared-component pattern); it opens with the first started
// and closes with the last shut down. Another configuration, even on the
// same database, has its own.
func TestOneStorePerConfig(t *testing.T) {
	_, dsn := openDB(t)
	cfg := syncConfig(dsn)
	cfg.Retention = time.Hour
	set, _ := testSettings(t)
	logs := startLogs(t, cfg, set, componenttest.NewNopHost())
	traces := startExporter(t, NewFactory().CreateTraces, cfg, set, componenttest.NewNopHost())
	metrics := startExporter(t, NewFactory().CreateMetrics, cfg, set, componenttest.NewNopHost())
	other := syncConfig(dsn)
	otherLogs := startLogs(t, other, set, componenttest.NewNopHost())

	sharedStores.Lock()
	shared, ok := sharedStores.byConfig[cfg]
	users, configs := 0, len(sharedStores.byConfig)
	if ok {
		users = shared.users
	}
	sharedStores.Unlock()
	if !ok || users != 3 {
		t.Fatalf("shared store of the configuration: %v, %d users, want 3", ok, users)
	}
	if configs < 2 {
		t.Fatalf("%d shared stores, want one per configuration", configs)
	}
	if shared.stopRetention == nil {
		t.Fatal("the shared store runs no retention")
	}

	for _, exp := range []component.Component{logs, traces} {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := shared.store(); err != nil || st == nil {
		t.Fatalf("the pool closed while the metrics exporter still uses it: %v", err)
	}
	for _, exp := range []component.Component{metrics, otherLogs} {
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := shared.store(); err == nil {
		t.Fatal("the pool is still open after the last exporter shut down")
	}
	sharedStores.Lock()
	_, left := sharedStores.byConfig[cfg]
	_, leftOther := sharedStores.byConfig[other]
	sharedStores.Unlock()
	if left || leftOther {
		t.Fatal("a shared store outlived its exporters")
	}
	// A restarted exporter opens a fresh one.
	again := startLogs(t, cfg, set, componenttest.NewNopHost())
	if err := again.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
