package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
	"github.com/driftlock/driftlock/internal/triage"
)

// TestFalsePositivesPages: the triage.Source query returns only the
// signal's false positives, with their stored documents, in (updated_at,
// id) order, one page after another from the key.
func TestFalsePositivesPages(t *testing.T) {
	if store.StatusFalsePositive != triage.StatusFalsePositive {
		t.Fatalf("the store and the triage contract disagree on the status: %q vs %q", store.StatusFalsePositive, triage.StatusFalsePositive)
	}
	st, _ := storetest.Open(t)
	ctx := context.Background()
	var rows []store.Anomaly
	for i := range 7 {
		signal := store.SignalLogs
		if i == 3 {
			signal = store.SignalTraces
		}
		rows = append(rows, store.Anomaly{
			Fingerprint: fmt.Sprintf("fp-%d", i), Signal: signal, Stream: signal + "/checkout", Service: "checkout",
			ObservedAt: time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC), Score: 9, PValue: 0.001,
			Summary: fmt.Sprintf("record %d", i), Record: map[string]any{"body": fmt.Sprintf("line %d", i)},
			Attributes: map[string]any{"n": int64(i)},
		})
	}
	n, err := st.InsertAnomalies(ctx, rows)
	if err != nil || n != len(rows) {
		t.Fatalf("insert: %d, %v", n, err)
	}
	items, _, err := st.ListAnomalies(ctx, store.AnomalyFilter{}, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	fp := store.StatusFalsePositive
	marked := 0
	for _, a := range items {
		if a.Summary == "record 5" {
			continue // stays open
		}
		if _, err := st.UpdateAnomaly(ctx, a.ID, a.Version, store.AnomalyUpdate{Status: &fp}, "tester"); err != nil {
			t.Fatal(err)
		}
		marked++
	}

	var got []triage.FalsePositive
	key := triage.Key{}
	for pages := 0; ; pages++ {
		page, err := st.FalsePositives(ctx, store.SignalLogs, key, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if len(page) < 2 {
			break
		}
		key = triage.Key{UpdatedAt: page[len(page)-1].UpdatedAt, ID: page[len(page)-1].ID}
		if pages > 10 {
			t.Fatal("paging does not advance")
		}
	}
	if len(got) != marked-1 { // the traces one is another signal's
		t.Fatalf("got %d false positives of logs, want %d", len(got), marked-1)
	}
	for i, fp := range got {
		if fp.Stream != "logs/checkout" || len(fp.Record) == 0 || len(fp.Attributes) == 0 {
			t.Errorf("item %d: %+v", i, fp)
		}
		if i > 0 {
			prev := got[i-1]
			if fp.UpdatedAt.Before(prev.UpdatedAt) || (fp.UpdatedAt.Equal(prev.UpdatedAt) && fp.ID <= prev.ID) {
				t.Errorf("item %d out of (updated_at, id) order", i)
			}
		}
	}
	if traces, err := st.FalsePositives(ctx, store.SignalTraces, triage.Key{}, 10); err != nil || len(traces) != 1 {
		t.Errorf("traces: %d, %v", len(traces), err)
	}
}
