package correlator_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/correlator"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// callerTrouble is two troubled callers of a quiet callee: web and cart
// log errors from base+2h, pay (called by both) logs nothing. A routine
// service flags once a minute for three hours, so the buckets after the
// burst are weighed. With the call graph, pay is ranked in the incident
// as a suspect (the callee of two troubled services); without it, nothing
// ties pay to the trouble.
func callerTrouble() []store.Anomaly {
	var out []store.Anomaly
	add := func(svc string, at time.Time, reason, kind, summary string) {
		out = append(out, store.Anomaly{Fingerprint: fmt.Sprintf("fp-%d", len(out)), Signal: store.SignalLogs,
			Stream: svc + "/logs", Service: svc, ObservedAt: at, Score: 1, PValue: 0.001, Severity: "ERROR", Summary: summary,
			Attributes: map[string]any{attrs.Reason: reason, attrs.Kind: kind}})
	}
	for m := range 180 {
		add("clock", base.Add(time.Duration(m)*time.Minute+30*time.Second), attrs.ReasonNovel, "routine", "routine line")
	}
	at := base.Add(2 * time.Hour)
	for i := range 8 {
		ts := at.Add(time.Duration(i) * 5 * time.Second)
		add("web", ts, attrs.ReasonErrors, "k-web", "ERROR checkout failed")
		add("cart", ts.Add(time.Second), attrs.ReasonErrors, "k-cart", "ERROR pay timeout")
	}
	return out
}

// payRanked reports whether a stored incident holding web ranks pay.
func payRanked(t *testing.T, st *store.Store) bool {
	t.Helper()
	incs, err := st.IncidentsActiveSince(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range incs {
		var svcs []struct {
			Service string `json:"service"`
		}
		if err := json.Unmarshal(in.Services, &svcs); err != nil {
			t.Fatalf("incident %s services %s: %v", in.Key, in.Services, err)
		}
		var names []string
		for _, s := range svcs {
			names = append(names, s.Service)
		}
		if !strings.Contains(","+strings.Join(names, ",")+",", ",web,") {
			continue
		}
		found = true
		for _, n := range names {
			if n == "pay" {
				return true
			}
		}
	}
	if !found {
		t.Fatal("no incident holds web's errors")
	}
	return false
}

func graphEdges(first time.Time) []store.ServiceEdge {
	return []store.ServiceEdge{
		{Caller: "web", Callee: "cart", FirstSeen: first, LastSeen: first.Add(3 * time.Hour), Calls: 100},
		{Caller: "web", Callee: "pay", FirstSeen: first, LastSeen: first.Add(3 * time.Hour), Calls: 100},
		{Caller: "cart", Callee: "pay", FirstSeen: first, LastSeen: first.Add(3 * time.Hour), Calls: 100},
	}
}

// TestStoredServiceGraphReachesTheCorrelator: `driftlock incidents
// rebuild` (CatchUp) over the same anomalies ranks the common callee only
// when the store holds the graph, and only with edges first seen before
// the trouble (the graph the anomalies would have met live).
func TestStoredServiceGraphReachesTheCorrelator(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edges []store.ServiceEdge
		want  bool
	}{
		{"no graph", nil, false},
		{"graph seen before the trouble", graphEdges(base.Add(time.Hour)), true},
		{"graph first seen after the trouble", graphEdges(base.Add(2*time.Hour + 30*time.Minute)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := storetest.Open(t)
			ctx := context.Background()
			if err := st.UpsertServiceEdges(ctx, tc.edges); err != nil {
				t.Fatal(err)
			}
			insert(t, st, callerTrouble())
			run, err := correlator.New(st, testConfig(), nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := run.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			if got := payRanked(t, st); got != tc.want {
				t.Fatalf("pay ranked in web's incident: %v, want %v", got, tc.want)
			}
		})
	}
}

// TestLiveCorrelatorReadsNewEdges: edges written while serve's correlator
// runs (as the exporters flush them) are read on its next catch-up.
func TestLiveCorrelatorReadsNewEdges(t *testing.T) {
	st, dsn := storetest.Open(t)
	rep := startReplica(t, dsn, nil)
	waitStarted(t, st, rep)
	ctx := context.Background()
	if err := st.UpsertServiceEdges(ctx, graphEdges(base.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the reads of a live spell are a second apart at most
	insert(t, st, callerTrouble())
	waitCaughtUp(t, st)
	if !payRanked(t, st) {
		t.Fatal("the live correlator did not use the edges written after it started")
	}
}
