package e2e

import (
	"strconv"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/store/storetest"
)

// TestFleet runs the two-tier topology: a load_balancing gateway routes by
// service.name to two driftlock scorers sharing one PostgreSQL. Each stream
// must be scored on exactly one scorer, and the stored anomalies must be
// the single collector's (TestSingleCollector, same stream, same start).
func TestFleet(t *testing.T) {
	requireE2E(t)
	if single == nil {
		t.Skip("TestSingleCollector did not complete; run both (go test -run 'TestSingleCollector|TestFleet')")
	}
	dsn := storetest.NewDatabase(t)
	g, recs := generate(t, streamConfig(singleStart))

	s1 := startCollector(t, "scorer-1", "single.yaml", map[string]string{"DRIFTLOCK_DSN": dsn})
	s2 := startCollector(t, "scorer-2", "single.yaml", map[string]string{"DRIFTLOCK_DSN": dsn})
	gw := startCollector(t, "gateway", "gateway.yaml", map[string]string{
		"E2E_SCORER1": strconv.Itoa(s1.grpc),
		"E2E_SCORER2": strconv.Itoa(s2.grpc),
	})
	sendSplit(t, gw.grpc, gw.http, recs)

	nLogs, nSpans := 0, 0
	for _, r := range recs {
		switch r.Signal.String() {
		case "logs":
			nLogs++
		case "traces":
			nSpans++
		}
	}
	eventually(t, 60*time.Second, "all logs and spans at the scorers", func() bool {
		return countLogs(readLogs(t, s1.outDir))+countLogs(readLogs(t, s2.outDir)) >= nLogs &&
			countSpans(readTraces(t, s1.outDir))+countSpans(readTraces(t, s2.outDir)) >= nSpans
	})
	rows := waitAnomalies(t, dsn)

	// Each service's streams live on one scorer only.
	owner := map[string]string{}
	for _, s := range []*collector{s1, s2} {
		services := map[string]bool{}
		for _, ld := range readLogs(t, s.outDir) {
			for _, rl := range ld.ResourceLogs().All() {
				services["logs/"+serviceOf(rl.Resource())] = true
			}
		}
		for _, td := range readTraces(t, s.outDir) {
			for _, rs := range td.ResourceSpans().All() {
				services["traces/"+serviceOf(rs.Resource())] = true
			}
		}
		for _, md := range readMetrics(t, s.outDir) {
			for _, rm := range md.ResourceMetrics().All() {
				services["metrics/"+serviceOf(rm.Resource())] = true
			}
		}
		for k := range services {
			if other, dup := owner[k]; dup {
				t.Fatalf("stream %s was scored on both %s and %s", k, other, s.name)
			}
			owner[k] = s.name
		}
	}
	if want := 3 * len(g.Config().Services); len(owner) != want {
		t.Fatalf("%d signal/service streams reached the scorers, want %d: %v", len(owner), want, owner)
	}
	t.Logf("stream owners: %v", owner)

	scored := 0.0
	for _, s := range []*collector{s1, s2} {
		v, _ := s.promSum(t, "otelcol_processor_driftlock_records_scored")
		scored += v
	}
	if scored != single.scored {
		t.Fatalf("fleet scored %v records, single collector %v", scored, single.scored)
	}

	// Same anomalies as the single collector.
	want := map[string]bool{}
	for _, a := range single.anomalies {
		want[a.key()] = true
	}
	got := map[string]bool{}
	for _, a := range rows {
		got[a.key()] = true
		if !want[a.key()] {
			t.Errorf("fleet-only anomaly: %s", a.key())
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("anomaly of the single collector missing in the fleet: %s", k)
		}
	}
	checkFaults(t, g, rows)

	gw.stop(t)
	s1.stop(t)
	s2.stop(t)
}
