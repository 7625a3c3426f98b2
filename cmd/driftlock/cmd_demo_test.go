package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/nezhaeval"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// The summary scores the incidents in the store against a Nezha fault
// list with the eval's criteria: found by an opening, found by a service
// joining later, missed, missed but opened just before (not counted), and
// a false incident.
func TestDemoSummary(t *testing.T) {
	_, dsn := storetest.Open(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	t0 := time.Date(2023, 1, 29, 8, 0, 0, 0, time.UTC)
	min := func(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }
	var lastID int64
	for i, a := range []struct {
		signal, service string
		at              time.Time
	}{
		{"logs", "svc-a", min(0)}, {"traces", "svc-b", min(10)}, {"metrics", "svc-c", min(14)}, {"logs", "svc-x", min(120)},
	} {
		err := conn.QueryRow(ctx, `INSERT INTO anomalies (fingerprint, signal, stream, service, observed_at, score, p_value, explanation, summary)
			VALUES ($1, $2, $3, $4, $5, 5, 0.001, 'why', 'body') RETURNING id`,
			fmt.Sprint("fp", i), a.signal, a.signal+"/"+a.service, a.service, a.at).Scan(&lastID)
		if err != nil {
			t.Fatal(err)
		}
	}
	addIncident := func(key, title, state string, opened time.Time, score float64, services ...store.RankedService) {
		t.Helper()
		b, err := json.Marshal(services)
		if err != nil {
			t.Fatal(err)
		}
		var closed *time.Time
		if state == store.IncidentClosed {
			c := opened.Add(20 * time.Minute)
			closed = &c
		}
		if _, err := conn.Exec(ctx, `INSERT INTO incidents (key, state, title, leader, services, size, score, opened_at, last_evidence_at, closed_at)
			VALUES ($1, $2, $3, $4, $5, 40, $6, $7, $7, $8)`, key, state, title, services[0].Service, b, score, opened, closed); err != nil {
			t.Fatal(err)
		}
	}
	addIncident("A", "svc-b: new ERROR template `catch price exception`, 41 records", store.IncidentClosed, min(10), 90,
		store.RankedService{Service: "svc-b", Onset: min(10)}, store.RankedService{Service: "svc-a", Onset: min(10.3)},
		store.RankedService{Service: "svc-c", Onset: min(14)})
	addIncident("B", "svc-x: latency x8", store.IncidentClosed, min(60), 30, store.RankedService{Service: "svc-x", Onset: min(60)})
	if _, err := conn.Exec(ctx, `INSERT INTO correlator_state (name, last_id) VALUES ('default', $1)`, lastID); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	list := filepath.Join(dir, "fault_list.json")
	if err := os.WriteFile(list, []byte(`{"8":[
  {"inject_time":"2023-01-29 08:09:50","inject_pod":"svc-a-5b67c48447-mv5hb","inject_type":"exception"},
  {"inject_time":"2023-01-29 08:12:00","inject_pod":"svc-c-7d9f8c6b5-abcde","inject_type":"network_delay"},
  {"inject_time":"2023-01-29 08:30:00","inject_pod":"svc-d-6c8d9f7b4-x2k9q","inject_type":"cpu_contention"}],
 "9":[{"inject_time":"2023-01-29 09:00:30","inject_pod":"svc-x-ab12c","inject_type":"return"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "summary", "--dsn", dsn, "--settle", "300ms", "--top", "1", "--faults", list}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	s := out.String()
	for _, re := range []string{
		`Anomalies \(record-level flags\): 4 \(logs 2, traces 1, metrics 1\) in 4 services, observed 2023-01-29 08:00 \.\. 2023-01-29 10:00 \(2\.0 h\)`,
		// Ranked when A opened (onset within a bucket): second of two.
		`2023-01-29 08:09:50\s+exception\s+svc-a\s+found\s+10s\s+2\s+svc-b: new ERROR template`,
		// Joined A at its onset, 2 minutes after the injection: third.
		`2023-01-29 08:12:00\s+network_delay\s+svc-c\s+found\s+120s\s+3\s+svc-b: new ERROR`,
		`2023-01-29 08:30:00\s+cpu_contention\s+svc-d\s+missed\s+-\s+-`,
		`2023-01-29 09:00:30\s+return\s+svc-x\s+missed\s+-\s+-\s+\(an incident holding it opened 30s before inject_time: not counted\)`,
		// B opened with no fault in the 5 minutes before: 1 false in 2 h.
		`(?m)^faults=2/4 median_delay_s=65 incidents=2 false_incidents_per_hour=0\.50 rca_top1=0/4 rca_top3=2/4 `,
		`Incidents: 2 \(0 open\); the 1 with the most evidence:\n1\. 2023-01-29 08:10:00  closed, 40 anomalies, 90 bits  ranked: svc-b, svc-a, svc-c\n   svc-b: new ERROR`,
	} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("summary does not match %q:\n%s", re, s)
		}
	}
	if strings.Contains(s, "2. ") || strings.Contains(s, "score ") {
		t.Errorf("--top 1 printed more than one incident, or raw anomalies:\n%s", s)
	}

	// An incident still open: the wait gives up after --max-wait and says so.
	if _, err := conn.Exec(ctx, `UPDATE incidents SET state = 'open', closed_at = NULL WHERE key = 'B'`); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"demo", "summary", "--dsn", dsn, "--settle", "100ms", "--max-wait", "1s"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), fmt.Sprintf("has read up to anomaly %d of %d and 1 incidents are open", lastID, lastID)) ||
		!strings.Contains(out.String(), "incidents=2 (no fault list") || !strings.Contains(out.String(), "Incidents: 2 (1 open)") {
		t.Errorf("open incident: stderr %q\nstdout %s", errOut.String(), out.String())
	}
}

// A --faults-out list (the synthetic replay's) is read too; a list that is
// neither is refused with its name.
func TestDemoLoadFaultsOurList(t *testing.T) {
	dir := t.TempDir()
	ours := filepath.Join(dir, "faults.json")
	if err := os.WriteFile(ours, []byte(`[{"service":"payment","signal":"logs","kind":"exception","start":"2026-01-01T12:05:00Z","end":"2026-01-01T12:06:00Z"},
 {"service":"checkout","signal":"traces","kind":"latency","start":"2026-01-01T12:01:00Z","end":"2026-01-01T12:02:00Z"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	faults, err := loadFaults(ours)
	if err != nil {
		t.Fatal(err)
	}
	if len(faults) != 2 || faults[0].Service != "checkout" || faults[0].Type != "latency" || !faults[1].At.Equal(time.Date(2026, 1, 1, 12, 5, 0, 0, time.UTC)) {
		t.Fatalf("got %+v", faults)
	}
	bad := filepath.Join(dir, "other.json")
	if err := os.WriteFile(bad, []byte(`{"9":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadFaults(bad); err == nil || !strings.Contains(err.Error(), "other.json: not a --faults-out list") {
		t.Fatalf("got %v", err)
	}
}

func TestDemoSummaryErrors(t *testing.T) {
	t.Setenv("DRIFTLOCK_DSN", "")
	var out, errOut bytes.Buffer
	if code := run([]string{"demo"}, &out, &errOut); code != 2 {
		t.Fatalf("no subcommand: exit %d", code)
	}
	if code := run([]string{"demo", "summary"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "DRIFTLOCK_DSN") {
		t.Fatalf("no DSN: exit %d %s", code, errOut.String())
	}
}

// The banner's fault count comes from the list itself, whatever the folder.
func TestDemoFaultsCountsTheList(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "fault_list.json")
	if err := os.WriteFile(list, []byte(`{"9":[{"inject_time":"2023-01-29 09:00:00","inject_pod":"ts-order-service-7f9","inject_type":"cpu_contention"}],
 "10":[{"inject_time":"2023-01-29 10:00:00","inject_pod":"ts-auth-service-1","inject_type":"exception"},
       {"inject_time":"2023-01-29 10:30:00","inject_pod":"ts-user-service-2","inject_type":"cpu_contention"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "faults", list}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := out.String(); got != "3 injected faults: cpu_contention 2, exception 1\n" {
		t.Fatalf("got %q", got)
	}
	// The shared Nezha day, when present: the count is the file's, not a constant.
	real := filepath.Join("..", "..", "..", "shared", "data", "nezha", "2023-01-29", "fault_list.json")
	if _, err := os.Stat(real); err != nil {
		t.Logf("skipping the shared Nezha list: %v", err)
		return
	}
	faults, err := loadFaults(real)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"demo", "faults", real}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), fmt.Sprintf("%d injected faults: ", len(faults))) {
		t.Fatalf("exit %d: %q", code, out.String())
	}
	if code := run([]string{"demo", "faults", filepath.Join(dir, "missing.json")}, &out, &errOut); code != 1 {
		t.Fatalf("missing list: exit %d", code)
	}
}

// Long records and explanations are shortened at a word boundary, never
// mid-word or mid-rune.
func TestDemoOneLineCutsAtWords(t *testing.T) {
	expl := "record costs 9.12 bits/token given the baseline; stream median 0.50, 99th pct 11.00; p=0.0003; 31 tokens, most surprising 54.4 bits; a recurring template seen in bursts"
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"short  text\n here", 40, "short text here"},
		{expl, 160, "record costs 9.12 bits/token given the baseline; stream median 0.50, 99th pct 11.00; p=0.0003; 31 tokens, most surprising 54.4 bits; a recurring template…"},
		{expl, 400, expl},
		{strings.Repeat("日本", 20), 20, "日本日本日…"}, // one long word: cut at a rune boundary
	} {
		got := oneLine(c.in, c.max)
		if got != c.want || len(got) > c.max {
			t.Errorf("oneLine(%.30q, %d) = %q (%d bytes), want %q", c.in, c.max, got, len(got), c.want)
		}
	}
}

// The summary scores incidents as stored (their latest ranking, services
// counted from their onset); the eval scores the correlator's live events.
// On the same anomalies through the real correlator, the two agree on which
// faults are found: an opening, a service joining an open incident, a
// fault with no evidence, and routine flags around them.
func TestDemoStoredEventsAgreeWithLiveEvents(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(7, 8))
	services := []string{"noisy", "busy", "caller", "quiet1", "quiet2", "quiet3", "callee"}
	rates := []float64{5, 1, 0.2, 0.05, 0.05, 0.05, 0.05} // flags per minute
	var as []incident.Anomaly
	for sec := range int((6 * time.Hour) / time.Second) {
		for i, s := range services {
			if rng.Float64() < rates[i]/60 {
				as = append(as, incident.Anomaly{Signal: incident.SignalLogs, Service: s, ObservedAt: t0.Add(time.Duration(sec) * time.Second),
					Reason: incident.ReasonNovel, Summary: "routine line", PValue: 0.008})
			}
		}
	}
	burst := func(service string, at time.Time) {
		for i := range 12 {
			as = append(as, incident.Anomaly{Signal: incident.SignalLogs, Service: service, ObservedAt: at.Add(time.Duration(i) * 5 * time.Second),
				Reason: incident.ReasonErrors, Kind: "k-" + service, Severity: "ERROR", Summary: "ERROR in " + service})
		}
	}
	faults := []nezhaeval.Fault{
		{At: t0.Add(2 * time.Hour), Service: "quiet1", Type: "exception"},
		{At: t0.Add(3 * time.Hour), Service: "quiet2", Type: "return"},
		{At: t0.Add(4 * time.Hour), Service: "quiet3", Type: "network_delay"}, // no evidence
		{At: t0.Add(5*time.Hour + 2*time.Minute), Service: "callee", Type: "cpu_contention"},
	}
	burst("quiet1", faults[0].At.Add(10*time.Second))
	burst("quiet2", faults[1].At.Add(2*time.Minute))
	burst("caller", t0.Add(5*time.Hour)) // the caller first, then its callee
	burst("callee", faults[3].At.Add(30*time.Second))
	sort.SliceStable(as, func(i, j int) bool { return as[i].ObservedAt.Before(as[j].ObservedAt) })
	for i := range as {
		as[i].ID = int64(i + 1)
	}
	edges := []incident.Edge{{Caller: "caller", Callee: "callee", At: t0}}
	events, err := nezhaeval.Correlate(incident.DefaultConfig(), as, edges)
	if err != nil {
		t.Fatal(err)
	}
	hours := 6.0
	live := nezhaeval.ScoreIncidents(events, faults, hours)

	// The incidents as the store holds them: each one's last state.
	last := map[string]incident.Incident{}
	var order []string
	for _, ev := range events {
		if _, ok := last[ev.Incident.ID]; !ok {
			order = append(order, ev.Incident.ID)
		}
		last[ev.Incident.ID] = ev.Incident
	}
	var stored []storedIncident
	for _, id := range order {
		in := last[id]
		s := storedIncident{key: in.ID, title: in.Title, opened: in.Opened, lastEvidence: in.LastEvidence}
		for _, r := range in.Services {
			s.services = append(s.services, store.RankedService{Service: r.Service, Score: r.Score, Onset: r.Onset})
		}
		stored = append(stored, s)
	}
	got := nezhaeval.ScoreIncidents(storedEvents(stored, incident.DefaultConfig().Bucket), faults, hours)

	if live.Detected < 3 || live.Faults[2].Detected {
		t.Fatalf("the scenario does not exercise the scoring: live %s", live.Line())
	}
	if got.Incidents != live.Incidents || got.FalseIncidents != live.FalseIncidents || got.Detected != live.Detected ||
		got.Top1 != live.Top1 || got.Top3 != live.Top3 {
		t.Errorf("stored %s\nlive   %s", got.Line(), live.Line())
	}
	for i := range faults {
		g, l := got.Faults[i], live.Faults[i]
		if g.Detected != l.Detected || g.Incident != l.Incident {
			t.Errorf("fault %d (%s): stored found=%v in %q, live found=%v in %q", i, faults[i].Service, g.Detected, g.Incident, l.Detected, l.Incident)
		}
		// A joining service counts from its onset, the live update from the
		// bucket's test: at most a bucket apart.
		if d := l.Delay - g.Delay; d < 0 || d > incident.DefaultConfig().Bucket {
			t.Errorf("fault %d (%s): stored delay %s, live %s", i, faults[i].Service, g.Delay, l.Delay)
		}
	}
	for i := range faults {
		t.Logf("fault %d %s: live %v %s rank %d, stored %v %s rank %d", i, faults[i].Service, live.Faults[i].Detected, live.Faults[i].Delay, live.Faults[i].Rank, got.Faults[i].Detected, got.Faults[i].Delay, got.Faults[i].Rank)
	}
	t.Logf("live %s; stored %s", live.Line(), got.Line())
}
