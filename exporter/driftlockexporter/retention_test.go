package driftlockexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

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

// One retention loop per database: the second exporter on the same DSN
// does not start another, and the claim is released at shutdown.
func TestRetentionOneOwnerPerDSN(t *testing.T) {
	_, dsn := openDB(t)
	cfg := syncConfig(dsn)
	cfg.Retention = time.Hour
	set, _ := testSettings(t)
	first := startLogs(t, cfg, set, componenttest.NewNopHost())
	second := startExporter(t, NewFactory().CreateTraces, cfg, set, componenttest.NewNopHost())
	if claimRetention(dsn) {
		t.Fatal("retention was not claimed by the first exporter")
	}
	if err := first.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !claimRetention(dsn) {
		t.Fatal("retention not released at shutdown")
	}
	releaseRetention(dsn)
	if err := second.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
