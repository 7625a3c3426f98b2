package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

func insertN(t *testing.T, s *store.Store, n int, base time.Time) {
	t.Helper()
	rows := make([]store.Anomaly, n)
	for i := range rows {
		rows[i] = store.Anomaly{Fingerprint: fmt.Sprintf("fp-%d-%d", base.UnixNano(), i), Signal: store.SignalLogs,
			Stream: "svc/logs", Service: "svc", ObservedAt: base.Add(time.Duration(n-i) * time.Second),
			Score: 1, PValue: 0.001, Attributes: map[string]any{"driftlock.kind": "k1"}}
	}
	if _, err := s.InsertAnomalies(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
}

func TestCorrelatorLockIsExclusiveAndSaveIsAtomic(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	insertN(t, s, 5, base)

	a, err := s.TryLockCorrelator(ctx, "default")
	if err != nil || a == nil {
		t.Fatalf("first lock: %v %v", a, err)
	}
	if b, err := s.TryLockCorrelator(ctx, "default"); err != nil || b != nil {
		t.Fatalf("second lock while held: got %v, err %v; want none", b, err)
	}
	if err := a.Alive(ctx); err != nil {
		t.Fatalf("alive: %v", err)
	}

	rows, _, err := s.MembersAfter(ctx, 0, 100)
	if err != nil || len(rows) != 5 {
		t.Fatalf("members after 0: %d rows, %v", len(rows), err)
	}
	if string(rows[0].Attributes) == "" || rows[0].IncidentID != 0 {
		t.Fatalf("row 0: attributes %q incident %d", rows[0].Attributes, rows[0].IncidentID)
	}
	ids := []int64{rows[0].ID, rows[1].ID}
	in := &store.Incident{Key: "k-svc", State: store.IncidentOpen, Title: "svc: trouble", Leader: "svc",
		Services: json.RawMessage(`[{"service":"svc","rank":1}]`), Signals: []string{"logs"},
		Size: 2, OpenedAt: base, LastEvidenceAt: base.Add(time.Minute)}
	err = a.Save(ctx, func(tx *store.IncidentTx) error {
		if err := tx.Upsert(ctx, in); err != nil {
			return err
		}
		if err := tx.SetMembers(ctx, in.ID, ids); err != nil {
			return err
		}
		if err := tx.Enqueue(ctx, []store.OutboxItem{{Receiver: "am", IncidentID: in.ID, Event: store.EventOpened,
			IdempotencyKey: "k1", Payload: json.RawMessage(`{"a":1}`)}}); err != nil {
			return err
		}
		return tx.SetPosition(ctx, rows[4].ID, base.Add(time.Minute), []byte(`{"v":1}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failing transaction leaves nothing behind.
	err = a.Save(ctx, func(tx *store.IncidentTx) error {
		if err := tx.SetPosition(ctx, 999, base, nil); err != nil {
			return err
		}
		return tx.Upsert(ctx, &store.Incident{State: "bogus", OpenedAt: base, LastEvidenceAt: base})
	})
	if err == nil {
		t.Fatal("upsert without a key succeeded")
	}
	pos, err := a.Position(ctx)
	if err != nil || pos.LastID != rows[4].ID || !pos.Watermark.Equal(base.Add(time.Minute)) || string(pos.Snapshot) != `{"v":1}` {
		t.Fatalf("position %+v err %v; want last %d", pos, err, rows[4].ID)
	}
	rows, _, _ = s.MembersAfter(ctx, 0, 100)
	if rows[0].IncidentID != in.ID || rows[1].IncidentID != in.ID || rows[2].IncidentID != 0 {
		t.Fatalf("membership: %d %d %d, want %d %d 0", rows[0].IncidentID, rows[1].IncidentID, rows[2].IncidentID, in.ID, in.ID)
	}
	// Observed order differs from id order (the rows were inserted newest first).
	obs, err := s.MembersObserved(ctx, base, rows[4].ID, nil, 3)
	if err != nil || len(obs) != 3 || obs[0].ID != rows[4].ID || !obs[0].ObservedAt.Before(obs[1].ObservedAt) {
		t.Fatalf("observed order: %v %v", obs, err)
	}
	next, err := s.MembersObserved(ctx, base, rows[4].ID, &store.ObservedKey{ObservedAt: obs[2].ObservedAt, ID: obs[2].ID}, 10)
	if err != nil || len(next) != 2 || next[1].ID != rows[0].ID {
		t.Fatalf("observed page 2: %v %v", next, err)
	}

	a.Release()
	b, err := s.TryLockCorrelator(ctx, "default")
	if err != nil || b == nil {
		t.Fatalf("lock after release: %v %v", b, err)
	}
	defer b.Release()
	if err := s.RequestRebuild(ctx, "default", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestRebuild(ctx, "default", base); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.Position(ctx); !p.RebuildFrom.Equal(base) || p.LastID != rows[4].ID {
		t.Fatalf("rebuild request: %+v, want the earlier time %s", p, base)
	}
	if err := b.Save(ctx, func(tx *store.IncidentTx) error { return tx.ClearRebuild(ctx, base) }); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.CorrelatorPosition(ctx, "default"); !p.RebuildFrom.IsZero() {
		t.Fatalf("rebuild request not cleared: %+v", p)
	}
	// Upserting the same key again updates the row and keeps people's triage.
	if _, err := b.Position(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.Pool(s).Exec(ctx, "UPDATE incidents SET triage = 'acknowledged'"); err != nil {
		t.Fatal(err)
	}
	again := *in
	again.ID, again.Title, again.Revision = 0, "svc: worse", 2
	if err := b.Save(ctx, func(tx *store.IncidentTx) error { return tx.Upsert(ctx, &again) }); err != nil {
		t.Fatal(err)
	}
	if again.ID != in.ID || again.Triage != store.TriageAcknowledged || again.Version != in.Version+1 {
		t.Fatalf("upsert of an existing key: id %d (want %d) triage %q version %d", again.ID, in.ID, again.Triage, again.Version)
	}
	open, err := s.OpenIncidents(ctx)
	if err != nil || len(open) != 1 || open[0].Title != "svc: worse" || open[0].Key != "k-svc" {
		t.Fatalf("open incidents: %+v %v", open, err)
	}
}

func TestOutboxClaimsAreDisjointAndOrderedPerIncident(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cs, err := s.TryLockCorrelator(ctx, "default")
	if err != nil || cs == nil {
		t.Fatal(err)
	}
	defer cs.Release()
	var incidents []int64
	err = cs.Save(ctx, func(tx *store.IncidentTx) error {
		for i := range 20 {
			in := &store.Incident{Key: fmt.Sprintf("k%d", i), State: store.IncidentOpen, OpenedAt: base, LastEvidenceAt: base}
			if err := tx.Upsert(ctx, in); err != nil {
				return err
			}
			incidents = append(incidents, in.ID)
			items := []store.OutboxItem{
				{Receiver: "hook", IncidentID: in.ID, Event: store.EventOpened, IdempotencyKey: fmt.Sprintf("%d-1", i), Payload: json.RawMessage(`{}`)},
				{Receiver: "hook", IncidentID: in.ID, Event: store.EventClosed, IdempotencyKey: fmt.Sprintf("%d-2", i), Payload: json.RawMessage(`{}`)},
				// A replay of the same change is not queued twice.
				{Receiver: "hook", IncidentID: in.ID, Event: store.EventOpened, IdempotencyKey: fmt.Sprintf("%d-1", i), Payload: json.RawMessage(`{}`)},
			}
			if err := tx.Enqueue(ctx, items); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Four claimers at once: every opened row is claimed exactly once, and
	// no closed row is claimed before its opened row is delivered.
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			items, err := s.ClaimNotifications(ctx, 100, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, it := range items {
				seen[it.ID]++
				if it.Event != store.EventOpened {
					t.Errorf("claimed %s of incident %d before its opened was delivered", it.Event, it.IncidentID)
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != 20 {
		t.Fatalf("claimed %d distinct rows, want the 20 opened rows", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("row %d claimed %d times", id, n)
		}
	}
	// Leased rows are not claimable again until delivered or failed.
	if again, _ := s.ClaimNotifications(ctx, 100, time.Minute); len(again) != 0 {
		t.Fatalf("claimed %d leased rows again", len(again))
	}
	for id := range seen {
		if err := s.NotificationDelivered(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	closed, err := s.ClaimNotifications(ctx, 100, time.Minute)
	if err != nil || len(closed) != 20 || closed[0].Event != store.EventClosed || closed[0].Attempts != 1 {
		t.Fatalf("after delivery: %d rows (%v)", len(closed), err)
	}
	if err := s.NotificationFailed(ctx, closed[0].ID, "HTTP 503", time.Now().Add(-time.Second), false); err != nil {
		t.Fatal(err)
	}
	if err := s.NotificationFailed(ctx, closed[1].ID, "HTTP 400", time.Now(), true); err != nil {
		t.Fatal(err)
	}
	retry, _ := s.ClaimNotifications(ctx, 100, time.Minute)
	if len(retry) != 1 || retry[0].ID != closed[0].ID || retry[0].Attempts != 2 {
		t.Fatalf("retry claim: %+v", retry)
	}
	pending, abandoned, err := s.OutboxCounts(ctx)
	if err != nil || pending != 19 || abandoned != 1 {
		t.Fatalf("counts: pending %d abandoned %d err %v", pending, abandoned, err)
	}
	// Deleting an incident (a rebuild) keeps its notifications.
	if err := cs.Save(ctx, func(tx *store.IncidentTx) error { return tx.Delete(ctx, incidents[0]) }); err != nil {
		t.Fatal(err)
	}
	if p, _, _ := s.OutboxCounts(ctx); p != 19 {
		t.Fatalf("pending after delete: %d", p)
	}
}
