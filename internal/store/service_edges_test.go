package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

func TestServiceEdgesUpsertAndReadSince(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	if err := s.UpsertServiceEdges(ctx, []store.ServiceEdge{
		{Caller: "front", Callee: "cart", FirstSeen: t0.Add(time.Minute), LastSeen: t0.Add(2 * time.Minute), Calls: 3},
		{Caller: "front", Callee: "cart", FirstSeen: t0, LastSeen: t0.Add(time.Minute), Calls: 2}, // same pair twice in one batch
		{Caller: "cart", Callee: "price", FirstSeen: t0, LastSeen: t0, Calls: 1},
		{Caller: "loop", Callee: "loop", FirstSeen: t0, LastSeen: t0, Calls: 1}, // ignored
		{Caller: "", Callee: "x", FirstSeen: t0, LastSeen: t0, Calls: 1},        // ignored
	}); err != nil {
		t.Fatal(err)
	}
	all, err := s.ServiceEdgesSince(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Caller != "cart" || all[1].Caller != "front" {
		t.Fatalf("edges %+v, want cart>price and front>cart", all)
	}
	fc := all[1]
	if !fc.FirstSeen.Equal(t0) || !fc.LastSeen.Equal(t0.Add(2*time.Minute)) || fc.Calls != 5 {
		t.Fatalf("front>cart %+v, want first t0, last t0+2m, 5 calls", fc)
	}

	// A later period of another collector: the range widens, calls add up,
	// and only that row is newer than the first read.
	since := all[1].UpdatedAt
	for _, e := range all {
		if e.UpdatedAt.After(since) {
			since = e.UpdatedAt
		}
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.UpsertServiceEdges(ctx, []store.ServiceEdge{
		{Caller: "front", Callee: "cart", FirstSeen: t0.Add(time.Hour), LastSeen: t0.Add(2 * time.Hour), Calls: 10},
	}); err != nil {
		t.Fatal(err)
	}
	changed, err := s.ServiceEdgesSince(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0].Callee != "cart" || !changed[0].FirstSeen.Equal(t0) ||
		!changed[0].LastSeen.Equal(t0.Add(2*time.Hour)) || changed[0].Calls != 15 {
		t.Fatalf("changed since the first read: %+v, want front>cart first t0, last t0+2h, 15 calls", changed)
	}

	// Retention by last call.
	n, err := s.DeleteServiceEdgesBefore(ctx, t0.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("deleted %d (%v), want cart>price only", n, err)
	}
	if left, _ := s.ServiceEdgesSince(ctx, time.Time{}); len(left) != 1 || left[0].Caller != "front" {
		t.Fatalf("left %+v", left)
	}
}

func TestServiceEdgesNamesAreRepaired(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	long := strings.Repeat("s", 5000)
	if err := s.UpsertServiceEdges(ctx, []store.ServiceEdge{
		{Caller: "bad\x00name\xff", Callee: long, FirstSeen: t0, LastSeen: t0.Add(-time.Second), Calls: 1},
	}); err != nil {
		t.Fatalf("a NUL byte, invalid UTF-8 and a 5 kB name must be repaired, not refused: %v", err)
	}
	got, err := s.ServiceEdgesSince(ctx, time.Time{})
	if err != nil || len(got) != 1 {
		t.Fatalf("%+v %v", got, err)
	}
	if got[0].Caller != "badname\uFFFD" || len(got[0].Callee) > store.MaxIndexedBytes+64 || !got[0].LastSeen.Equal(t0) {
		t.Fatalf("stored %q -> %d bytes, last %v", got[0].Caller, len(got[0].Callee), got[0].LastSeen)
	}
	if err := s.UpsertServiceEdges(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}
