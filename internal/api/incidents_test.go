package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// incident writes an incident with the given members through the
// correlator's own write path (lock, upsert, membership), as `driftlock
// serve` does.
func (e *env) incident(in store.Incident, members []int64) int64 {
	e.t.Helper()
	ctx := context.Background()
	cs, err := e.st.TryLockCorrelator(ctx, "api-test")
	if err != nil || cs == nil {
		e.t.Fatalf("correlator lock: %v %v", cs, err)
	}
	defer cs.Release()
	if in.State == "" {
		in.State = store.IncidentOpen
	}
	if len(in.Services) == 0 {
		in.Services = json.RawMessage(`[]`)
	}
	in.Size = len(members)
	err = cs.Save(ctx, func(tx *store.IncidentTx) error {
		if err := tx.Upsert(ctx, &in); err != nil {
			return err
		}
		return tx.SetMembers(ctx, in.ID, members)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return in.ID
}

type incidentList struct {
	Items      []store.Incident `json:"items"`
	NextCursor *string          `json:"next_cursor"`
}

type incidentDetail struct {
	store.Incident
	Signals  []store.SignalEvidence `json:"evidence_by_signal"`
	Bucket   string                 `json:"timeline_bucket"`
	Timeline []store.Series         `json:"timeline"`
	Groups   []struct {
		store.MemberGroup
		Example struct {
			store.IncidentMember
			TraceURL         string `json:"trace_url"`
			ValueExplanation string `json:"value_explanation"`
		} `json:"example"`
	} `json:"groups"`
	GroupsTotal int                `json:"groups_total"`
	History     []store.AuditEntry `json:"history"`
}

// fixture is a day with two incidents: an open one in ts-basic (40 copies
// of one log template, a latency anomaly on its caller, a metric out of
// range) and a closed one in ts-order, plus a routine anomaly in no
// incident.
type fixture struct {
	open, closed       int64
	logIDs             []int64
	edgeID, metricID   int64
	closedIDs, loneIDs []int64
	day                time.Time
}

func newFixture(e *env) fixture {
	var f fixture
	f.day = time.Date(2023, 1, 29, 8, 0, 0, 0, time.UTC)
	written := time.Now()
	var logs []row
	for i := range 40 {
		logs = append(logs, row{Service: "ts-basic-service", Stream: "ts-basic-service/logs", Signal: "logs",
			ObservedAt: f.day.Add(time.Duration(i) * 5 * time.Second), DetectedAt: written, Score: 9 + float64(i%3),
			Summary:    fmt.Sprintf("catch price exception for train G%d", 1000+i),
			Attributes: `{"driftlock.kind":"k-price-exc","driftlock.reason":"novel"}`, TraceID: fmt.Sprintf("%032x", i+1)})
	}
	f.logIDs = e.insert(logs...)
	f.edgeID = e.insert(row{Service: "ts-travel-service", Stream: "ts-travel-service/spans", Signal: "traces",
		ObservedAt: f.day.Add(30 * time.Second), DetectedAt: written, Summary: "POST /api/v1/basicservice/basic/travel",
		Attributes: `{"driftlock.kind":"k-span","driftlock.reason":"edge_latency","driftlock.peer.service":"ts-basic-service","driftlock.observed":812,"driftlock.expected.low":3,"driftlock.expected.high":25}`,
		TraceID:    "4bf92f3577b34da6a3ce929d0e0e4736"})[0]
	f.metricID = e.insert(row{Service: "ts-basic-service", Stream: "ts-basic-service/metrics", Signal: "metrics",
		ObservedAt: f.day.Add(3 * time.Minute), DetectedAt: written, Summary: "container_cpu_usage_seconds 0.93",
		Attributes: `{"driftlock.kind":"k-cpu","driftlock.reason":"value","driftlock.observed":0.93,"driftlock.expected.low":0.05,"driftlock.expected.high":0.2}`})[0]
	f.closedIDs = e.insert(
		row{Service: "ts-order-service", Signal: "logs", ObservedAt: f.day.Add(-5 * time.Hour), DetectedAt: written, Summary: "order timeout"},
		row{Service: "ts-order-service", Signal: "logs", ObservedAt: f.day.Add(-5*time.Hour + time.Minute), DetectedAt: written, Summary: "order timeout"},
	)
	f.loneIDs = e.insert(row{Service: "ts-order-service", ObservedAt: f.day.Add(time.Minute), DetectedAt: written, Summary: "routine"})
	members := append(append(append([]int64{}, f.logIDs...), f.edgeID), f.metricID)
	f.open = e.incident(store.Incident{Key: "20230129T080000Z-ts-basic-service", Title: "ts-basic-service: new ERROR template, 40 records; latency of calls to it x32",
		Leader:   "ts-basic-service",
		Services: json.RawMessage(`[{"service":"ts-basic-service","score":41.5,"anomalies":41,"signals":["logs","metrics"],"why":["first to show trouble","callee of 1 troubled service"],"evidence":[{"signal":"logs","reason":"novel","kind":"k-price-exc","count":40,"example":"catch price exception for train G1000"}]},{"service":"ts-travel-service","score":7.1,"anomalies":1,"signals":["traces"],"why":["caller of ts-basic-service"]}]`),
		Signals:  []string{"logs", "traces", "metrics"}, OpenedAt: f.day, LastEvidenceAt: f.day.Add(3 * time.Minute)}, members)
	closedAt := f.day.Add(-4 * time.Hour)
	f.closed = e.incident(store.Incident{Key: "20230129T030000Z-ts-order-service", Title: "ts-order-service: order timeout, 2 records",
		Leader: "ts-order-service", State: store.IncidentClosed, Signals: []string{"logs"},
		OpenedAt: f.day.Add(-5 * time.Hour), LastEvidenceAt: f.day.Add(-5*time.Hour + time.Minute), ClosedAt: &closedAt}, f.closedIDs)
	return f
}

func TestIncidentListFiltersAndCursor(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)
	list := func(q string) []int64 {
		t.Helper()
		r := e.get("/v1/incidents?"+q, e.viewer)
		wantCode(t, r, http.StatusOK)
		var l incidentList
		r.json(t, &l)
		var ids []int64
		for _, in := range l.Items {
			ids = append(ids, in.ID)
		}
		return ids
	}
	same := func(got []int64, want ...int64) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("got incidents %v, want %v", got, want)
		}
	}
	same(list(""), f.open, f.closed) // newest opened first
	same(list("status=open"), f.open)
	same(list("status=closed"), f.closed)
	// service: a member's service, not only the leader.
	same(list("service=ts-travel-service"), f.open)
	same(list("service=ts-order-service"), f.closed)
	same(list("service=nobody"))
	// since/until in observed time: the closed incident ended at 03:01.
	day := f.day.Format(time.RFC3339)
	same(list("since="+url.QueryEscape(f.day.Add(-time.Hour).Format(time.RFC3339))), f.open)
	same(list("until="+url.QueryEscape(f.day.Add(-time.Hour).Format(time.RFC3339))), f.closed)
	same(list("since="+url.QueryEscape(f.day.Add(-6*time.Hour).Format(time.RFC3339))+"&until="+url.QueryEscape(day)), f.closed)
	// The cursor walks one at a time and refuses other filters.
	r := e.get("/v1/incidents?limit=1", e.viewer)
	var l incidentList
	r.json(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != f.open || l.NextCursor == nil {
		t.Fatalf("page 1: %+v", l)
	}
	r = e.get("/v1/incidents?limit=1&cursor="+url.QueryEscape(*l.NextCursor), e.viewer)
	r.json(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != f.closed || l.NextCursor != nil {
		t.Fatalf("page 2: %+v", l)
	}
	r = e.get("/v1/incidents?limit=1&status=open&cursor=eyJ0IjoxLCJpIjoxLCJoIjoieCJ9", e.viewer)
	wantCode(t, r, http.StatusBadRequest)
}

func TestIncidentDetailGroupsTimelineAndLinks(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.TraceURL = "http://jaeger.example:16686/trace/{trace_id}" })
	f := newFixture(e)
	r := e.get(fmt.Sprintf("/v1/incidents/%d", f.open), e.viewer)
	wantCode(t, r, http.StatusOK)
	if r.header.Get("ETag") == "" {
		t.Fatal("no ETag on an incident")
	}
	var d incidentDetail
	r.json(t, &d)
	if d.Size != 42 || d.Leader != "ts-basic-service" || !strings.Contains(string(d.Services), "callee of 1 troubled service") {
		t.Fatalf("incident row: size %d leader %q services %s", d.Size, d.Leader, d.Services)
	}
	// 40 copies of one template are one group with a count, first.
	if d.GroupsTotal != 3 || len(d.Groups) != 3 {
		t.Fatalf("groups: %d of %d, want 3", len(d.Groups), d.GroupsTotal)
	}
	g := d.Groups[0]
	if g.Count != 40 || g.Kind != "k-price-exc" || g.Service != "ts-basic-service" || g.Reason != "novel" ||
		!g.First.Equal(f.day) || !g.Last.Equal(f.day.Add(195*time.Second)) || g.MaxScore != 11 {
		t.Fatalf("log group: %+v", g.MemberGroup)
	}
	if g.Example.Score != 11 || !strings.HasPrefix(g.Example.TraceURL, "http://jaeger.example:16686/trace/0000") {
		t.Fatalf("log group example: score %v trace url %q", g.Example.Score, g.Example.TraceURL)
	}
	// Numeric anomalies explain their value against the expected range.
	var metric, edge string
	for _, g := range d.Groups {
		switch g.Signal {
		case "metrics":
			metric = g.Example.ValueExplanation
			if g.Example.Observed == nil || *g.Example.Observed != 0.93 || g.Example.ExpectedHigh == nil || *g.Example.ExpectedHigh != 0.2 {
				t.Fatalf("metric example: %+v", g.Example.IncidentMember)
			}
		case "traces":
			edge = g.Example.ValueExplanation
			if g.Example.PeerService != "ts-basic-service" || g.Reason != "edge_latency" {
				t.Fatalf("edge example: %+v", g.Example.IncidentMember)
			}
		}
	}
	if metric != "Observed 0.93, above the expected range 0.05 to 0.2 (x4.65)." {
		t.Fatalf("metric explanation %q", metric)
	}
	if edge != "Observed 812, above the expected range 3 to 25 (x32.5)." {
		t.Fatalf("edge explanation %q", edge)
	}
	// Evidence per signal and a per-service timeline in observed time.
	if len(d.Signals) != 3 || d.Signals[0].Signal != "logs" || d.Signals[0].Anomalies != 40 || d.Signals[0].Kinds != 1 {
		t.Fatalf("evidence by signal: %+v", d.Signals)
	}
	if d.Bucket != "1m" || len(d.Timeline) != 2 || d.Timeline[0].Key != "ts-basic-service" || d.Timeline[0].Total != 41 {
		t.Fatalf("timeline (%s): %+v", d.Bucket, d.Timeline)
	}
	if pts := d.Timeline[0].Points; len(pts) != 4 || !pts[0].Start.Equal(f.day) || pts[0].Count != 12 || pts[3].Count != 5 {
		t.Fatalf("ts-basic-service points (observed time, 1m): %+v", pts)
	}

	// The members of one group, paged in observed order.
	var got []int64
	cursor := ""
	for range 10 {
		path := fmt.Sprintf("/v1/incidents/%d/anomalies?kind=k-price-exc&limit=15", f.open)
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := e.get(path, e.viewer)
		wantCode(t, r, http.StatusOK)
		var l struct {
			Items []struct {
				ID       int64  `json:"id"`
				TraceURL string `json:"trace_url"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		r.json(t, &l)
		for _, it := range l.Items {
			got = append(got, it.ID)
			if it.TraceURL == "" {
				t.Fatalf("member %d has no trace link", it.ID)
			}
		}
		if l.NextCursor == nil {
			break
		}
		cursor = *l.NextCursor
	}
	if fmt.Sprint(got) != fmt.Sprint(f.logIDs) {
		t.Fatalf("members of the template: %v, want %v", got, f.logIDs)
	}
	// One anomaly's detail explains its value and links its trace too.
	r = e.get(fmt.Sprintf("/v1/anomalies/%d", f.edgeID), e.viewer)
	wantCode(t, r, http.StatusOK)
	var one struct {
		TraceURL         string `json:"trace_url"`
		ValueExplanation string `json:"value_explanation"`
	}
	r.json(t, &one)
	if one.TraceURL != "http://jaeger.example:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736" || one.ValueExplanation != edge {
		t.Fatalf("anomaly detail: %+v", one)
	}
	wantCode(t, e.get(fmt.Sprintf("/v1/incidents/%d/anomalies", f.open+1000), e.viewer), http.StatusNotFound)
	wantCode(t, e.get(fmt.Sprintf("/v1/incidents/%d", f.open+1000), e.viewer), http.StatusNotFound)
}

func TestIncidentTriageReachesMembersAndFeedback(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)
	path := fmt.Sprintf("/v1/incidents/%d", f.open)
	r := e.get(path, e.viewer)
	tag := r.header.Get("ETag")
	// Preconditions and roles as for anomalies.
	wantCode(t, e.do("PATCH", path, e.analyst, `{"status":"false_positive"}`), http.StatusPreconditionRequired)
	wantCode(t, e.do("PATCH", path, e.viewer, `{"status":"false_positive"}`, "If-Match", tag), http.StatusForbidden)
	wantCode(t, e.do("PATCH", path, e.analyst, `{"status":"bogus"}`, "If-Match", tag), http.StatusBadRequest)
	wantCode(t, e.do("PATCH", path, e.analyst, `{"status":"false_positive"}`, "If-Match", `"999"`), http.StatusPreconditionFailed)

	r = e.do("PATCH", path, e.analyst, `{"status":"false_positive","note":"deploy noise"}`, "If-Match", tag)
	wantCode(t, r, http.StatusOK)
	var p struct {
		store.Incident
		MembersChanged int64 `json:"members_changed"`
	}
	r.json(t, &p)
	if p.Triage != "false_positive" || p.Note != "deploy noise" || p.MembersChanged != 42 || r.header.Get("ETag") == tag {
		t.Fatalf("patch answer: triage %q note %q members %d etag %s", p.Triage, p.Note, p.MembersChanged, r.header.Get("ETag"))
	}
	// Every member is now false_positive, which is what the processor's
	// feedback query reads; the other incident and the lone anomaly are not.
	var fp, other int
	err := storetest.Pool(e.st).QueryRow(context.Background(), `SELECT
 count(*) FILTER (WHERE status = 'false_positive' AND incident_id = $1),
 count(*) FILTER (WHERE status = 'false_positive' AND incident_id IS DISTINCT FROM $1) FROM anomalies`, f.open).Scan(&fp, &other)
	if err != nil || fp != 42 || other != 0 {
		t.Fatalf("false positives: %d members, %d others (%v)", fp, other, err)
	}
	// The history names the person; a stale ETag is refused with the
	// current version.
	r = e.get(path, e.viewer)
	var d incidentDetail
	r.json(t, &d)
	if len(d.History) != 1 || d.History[0].Actor != "ann-analyst" || d.History[0].Action != "incident_triage" {
		t.Fatalf("history: %+v", d.History)
	}
	r = e.do("PATCH", path, e.analyst, `{"status":"resolved"}`, "If-Match", tag)
	wantCode(t, r, http.StatusPreconditionFailed)
	if pr := r.problem(t); pr["current_version"] == nil {
		t.Fatalf("412 without current_version: %v", pr)
	}
}

// incidentStream connects to /v1/incidents/stream and sends each event's
// incident on the channel (closed when the stream ends).
func (e *env) incidentStream(lastEventID string) <-chan store.Incident {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/v1/incidents/stream", nil)
	req.Header.Set("Authorization", "Bearer "+e.viewer)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cancel(); res.Body.Close() })
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		e.t.Fatalf("incident stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := make(chan store.Incident, 1000)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		name := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = line[7:]
			case strings.HasPrefix(line, "data: ") && name == "incident":
				var in store.Incident
				if json.Unmarshal([]byte(line[6:]), &in) == nil {
					out <- in
				}
			}
		}
	}()
	return out
}

// waitIncident reads the stream until an incident satisfies ok.
func waitIncident(t *testing.T, ch <-chan store.Incident, what string, ok func(store.Incident) bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case in, open := <-ch:
			if !open {
				t.Fatalf("stream ended before %s", what)
			}
			if ok(in) {
				return
			}
		case <-deadline:
			t.Fatalf("%s did not arrive on the incident stream", what)
		}
	}
}

func TestIncidentStreamDeliversChanges(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)
	ch := e.incidentStream("")
	// A triage through the API and a correlator update both arrive.
	path := fmt.Sprintf("/v1/incidents/%d", f.closed)
	tag := e.get(path, e.viewer).header.Get("ETag")
	wantCode(t, e.do("PATCH", path, e.analyst, `{"status":"acknowledged"}`, "If-Match", tag), http.StatusOK)
	waitIncident(t, ch, "the triage", func(in store.Incident) bool { return in.ID == f.closed && in.Triage == "acknowledged" })
	e.incident(store.Incident{Key: "20230129T080000Z-ts-basic-service", Title: "ts-basic-service: grown", Leader: "ts-basic-service",
		OpenedAt: f.day, LastEvidenceAt: f.day.Add(10 * time.Minute)}, f.logIDs)
	waitIncident(t, ch, "the correlator's update", func(in store.Incident) bool { return in.ID == f.open && in.Title == "ts-basic-service: grown" })
	// A client resuming from an old position gets the changes since.
	resumed := e.incidentStream(fmt.Sprintf("%d-0", time.Now().Add(-time.Hour).UnixMicro()))
	waitIncident(t, resumed, "the backfill", func(in store.Incident) bool { return in.ID == f.open && in.Title == "ts-basic-service: grown" })
}

func TestHostileIncidentRequests(t *testing.T) {
	e := newEnv(t)
	f := newFixture(e)
	for _, c := range []struct{ path, param string }{
		{"/v1/incidents?status=bogus", "status"},
		{"/v1/incidents?status=open,closed,open,open,open,open,open,open,open", "status"},
		{"/v1/incidents?triage=" + url.QueryEscape("' OR 1=1 --"), "triage"},
		{"/v1/incidents?since=yesterday", "since"},
		{"/v1/incidents?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"},
		{"/v1/incidents?limit=100000", "limit"},
		{"/v1/incidents?cursor=%00%01", "cursor"},
		{"/v1/incidents?cursor=" + strings.Repeat("A", 400), "cursor"},
		{"/v1/incidents?service=" + url.QueryEscape("a\x00b"), "service"},
		{"/v1/incidents?sevrice=x", "sevrice"},
		{"/v1/incidents/-1", "id"},
		{"/v1/incidents/99999999999999999999", "id"},
		{"/v1/incidents/1?x=1", "x"},
		{"/v1/incidents/1/anomalies?signal=mail", "signal"},
		{"/v1/incidents/1/anomalies?kind=" + strings.Repeat("k", 600), "kind"},
		{"/v1/incidents/1/anomalies?cursor=bm9wZQ", "cursor"},
		{"/v1/incidents/stream?last_event_id=12", "Last-Event-ID"},
		{"/v1/incidents/stream?last_event_id=x-1", "Last-Event-ID"},
	} {
		r := e.get(c.path, e.viewer)
		wantCode(t, r, http.StatusBadRequest)
		pr := r.problem(t)
		if !strings.Contains(fmt.Sprint(pr["invalid_params"]), c.param) {
			t.Errorf("%s: problem does not name %s: %v", c.path, c.param, pr)
		}
	}
	// SQL in text filters is data.
	for _, v := range []string{"' OR '1'='1", "x'); DROP TABLE incidents; --", "%", "_"} {
		r := e.get("/v1/incidents?service="+url.QueryEscape(v), e.viewer)
		wantCode(t, r, http.StatusOK)
		var l incidentList
		r.json(t, &l)
		if len(l.Items) != 0 {
			t.Fatalf("service=%q matched %d incidents", v, len(l.Items))
		}
		r = e.get(fmt.Sprintf("/v1/incidents/%d/anomalies?kind=%s", f.open, url.QueryEscape(v)), e.viewer)
		wantCode(t, r, http.StatusOK)
	}
	// Bodies: unknown fields, trailing data, a huge note.
	path := fmt.Sprintf("/v1/incidents/%d", f.open)
	tag := e.get(path, e.viewer).header.Get("ETag")
	for _, body := range []string{`{"status":"resolved","owner":"x"}`, `{"status":"resolved"} {}`, `{}`, `[1]`,
		`{"note":"` + strings.Repeat("n", 5000) + `"}`} {
		wantCode(t, e.do("PATCH", path, e.analyst, body, "If-Match", tag), http.StatusBadRequest)
	}
	wantCode(t, e.do("PATCH", path, e.analyst, `{"status":"resolved"}`, "If-Match", "3"), http.StatusBadRequest)
	// Nothing changed.
	if in, err := e.st.GetIncident(context.Background(), f.open); err != nil || in.Triage != "open" {
		t.Fatalf("incident after hostile requests: %+v %v", in, err)
	}
}

func TestTraceURLTemplateIsChecked(t *testing.T) {
	for _, c := range []struct {
		tmpl string
		ok   bool
	}{
		{"", true},
		{"http://jaeger:16686/trace/{trace_id}", true},
		{`https://grafana.example/explore?left={"queries":[{"datasource":"tempo","query":"{trace_id}"}]}`, true},
		{"http://jaeger:16686/trace/", false},      // no placeholder
		{"javascript:alert(1)//{trace_id}", false}, // not http(s)
		{"/trace/{trace_id}", false},               // not absolute
		{"http://user:pw@host/{trace_id}", false},  // credentials in a link
	} {
		cfg := api.DefaultConfig()
		cfg.TraceURL = c.tmpl
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%q: Validate() = %v, want ok=%v", c.tmpl, err, c.ok)
		}
	}
}
