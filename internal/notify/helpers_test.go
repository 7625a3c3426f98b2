package notify_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/notify"
	"github.com/driftlock/driftlock/internal/store"
)

// saveIncident upserts in and queues its notification of event for the
// receivers, as the correlator does, in one transaction.
func saveIncident(t *testing.T, st *store.Store, in *store.Incident, event, change string, prev *notify.Identity, receivers []string) notify.Notification {
	t.Helper()
	ctx := context.Background()
	cs, err := st.TryLockCorrelator(ctx, "test")
	if err != nil || cs == nil {
		t.Fatalf("correlator lock: %v", err)
	}
	defer cs.Release()
	var n notify.Notification
	err = cs.Save(ctx, func(tx *store.IncidentTx) error {
		if err := tx.Upsert(ctx, in); err != nil {
			return err
		}
		n = notify.New(in, event, change, prev, "http://driftlock.test")
		items, err := notify.OutboxItems(n, receivers)
		if err != nil {
			return err
		}
		return tx.Enqueue(ctx, items)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sampleIncident(key string, opened time.Time) *store.Incident {
	return &store.Incident{Key: key, State: store.IncidentOpen, Title: "ts-basic-service: new ERROR template, 41 records",
		Leader: "ts-basic-service", Severity: "warning", Signals: []string{"logs", "traces"}, Size: 41,
		Services: json.RawMessage(`[{"service":"ts-basic-service","why":["first to show trouble"]},{"service":"ts-travel-service","why":["caller"]}]`),
		OpenedAt: opened, LastEvidenceAt: opened.Add(time.Minute), Revision: 1}
}
