package store_test

import (
	"context"
	"testing"

	"github.com/driftlock/driftlock/internal/store/storetest"
)

func TestMigrateCreatesTablesAndIsIdempotent(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	for _, table := range []string{"anomalies", "detectors", "audit_log", "api_keys", "incidents", "correlator_state", "notification_outbox"} {
		var ok bool
		if err := storetest.Pool(s).QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", "public."+table).Scan(&ok); err != nil || !ok {
			t.Fatalf("table %s missing after migrate (err=%v)", table, err)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	// Every migration rolls back, newest first.
	status, err := s.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range status {
		if err := s.MigrateDown(ctx); err != nil {
			t.Fatalf("down: %v", err)
		}
	}
	var ok bool
	_ = storetest.Pool(s).QueryRow(ctx, "SELECT to_regclass('public.anomalies') IS NOT NULL").Scan(&ok)
	if ok {
		t.Fatal("anomalies still exists after migrate down")
	}
}
