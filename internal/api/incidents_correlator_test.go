package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/correlator"
	"github.com/driftlock/driftlock/internal/store"
)

// The API serves what the real correlator writes: anomalies go through the
// store's insert path, `driftlock serve`'s correlator groups them, and the
// incident list, detail and members describe that incident (the ranked
// services in the shape the page reads, the burst as one template with
// its count).
func TestIncidentsFromTheRealCorrelator(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(3, 5))
	var rows []store.Anomaly
	add := func(svc string, at time.Time, reason, kind, summary string) {
		rows = append(rows, store.Anomaly{Fingerprint: fmt.Sprintf("corr-%d", len(rows)), Signal: store.SignalLogs,
			Stream: svc + "/logs", Service: svc, ObservedAt: at, Score: 1, PValue: 0.008, Summary: summary,
			Attributes: map[string]any{attrs.Reason: reason, attrs.Kind: kind}})
	}
	// Two hours of routine flags (a noisy and a middling service), then a
	// burst of one error template in a service that never flags.
	for sec := 0; sec < 2*3600; sec++ {
		at := base.Add(time.Duration(sec) * time.Second)
		for _, s := range []struct {
			name   string
			perMin float64
		}{{"noisy", 5}, {"other", 1}} {
			if rng.Float64() < s.perMin/60 {
				add(s.name, at, attrs.ReasonNovel, "routine", "routine line")
			}
		}
	}
	for i := range 15 {
		add("quiet", base.Add(100*time.Minute+time.Duration(i)*4*time.Second), attrs.ReasonErrors, "k-quiet", "ERROR cannot reach contacts")
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].ObservedAt.Before(rows[j].ObservedAt) })
	if _, err := e.st.InsertAnomalies(ctx, rows); err != nil {
		t.Fatal(err)
	}
	cfg := correlator.DefaultConfig()
	cfg.IdleAdvance = time.Hour
	run, err := correlator.New(e.st, cfg, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}

	r := e.get("/v1/incidents?service=quiet", e.viewer)
	wantCode(t, r, http.StatusOK)
	var l incidentList
	r.json(t, &l)
	if len(l.Items) == 0 {
		t.Fatal("the correlator's incident about the burst is not listed")
	}
	in := l.Items[0]
	var ranked []struct {
		Service string   `json:"service"`
		Why     []string `json:"why"`
	}
	if err := json.Unmarshal(in.Services, &ranked); err != nil || len(ranked) == 0 || ranked[0].Service != "quiet" || in.Leader != "quiet" {
		t.Fatalf("ranked services %s (leader %q): %v", in.Services, in.Leader, err)
	}
	if in.OpenedAt.Before(base.Add(100*time.Minute)) || in.OpenedAt.After(base.Add(102*time.Minute)) {
		t.Fatalf("opened at %v, want the burst's observed time %v", in.OpenedAt, base.Add(100*time.Minute))
	}
	r = e.get(fmt.Sprintf("/v1/incidents/%d", in.ID), e.viewer)
	wantCode(t, r, http.StatusOK)
	var d incidentDetail
	r.json(t, &d)
	var burst *int64
	for _, g := range d.Groups {
		if g.Service == "quiet" && g.Kind == "k-quiet" {
			burst = &g.Count
		}
	}
	if burst == nil || *burst != 15 || int64(d.Size) < 15 {
		t.Fatalf("groups %+v (size %d): want the 15 burst records as one group", d.Groups, d.Size)
	}
	if len(d.Timeline) == 0 || d.Timeline[0].Key != "quiet" {
		t.Fatalf("timeline %+v", d.Timeline)
	}
}
