package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

type listBody struct {
	Items      []store.StoredAnomaly `json:"items"`
	NextCursor *string               `json:"next_cursor"`
	Limit      int                   `json:"limit"`
}

func TestListFiltersAndOrder(t *testing.T) {
	e := newEnv(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	e.insert(
		row{Service: "checkout", Stream: "checkout/api", Signal: "logs", Score: 9, PValue: 0.0001, Summary: "Payment GATEWAY timeout", DetectedAt: base.Add(1 * time.Minute)},
		row{Service: "checkout", Stream: "checkout/db", Signal: "traces", Score: 3, PValue: 0.04, Summary: "slow span", DetectedAt: base.Add(2 * time.Minute)},
		row{Service: "auth", Stream: "auth/api", Signal: "logs", Score: 6, PValue: 0.002, Summary: "100% cpu_burn", Status: "resolved", DetectedAt: base.Add(3 * time.Minute)},
		row{Service: "auth", Stream: "auth/api", Signal: "metrics", Score: 12, PValue: 0.00001, Summary: "latency spike", DetectedAt: base.Add(4 * time.Minute)},
	)
	cases := []struct {
		query string
		want  []string // summaries, newest first
	}{
		{"", []string{"latency spike", "100% cpu_burn", "slow span", "Payment GATEWAY timeout"}},
		{"service=checkout", []string{"slow span", "Payment GATEWAY timeout"}},
		{"stream=auth%2Fapi", []string{"latency spike", "100% cpu_burn"}},
		{"signal=logs,metrics", []string{"latency spike", "100% cpu_burn", "Payment GATEWAY timeout"}},
		{"status=resolved", []string{"100% cpu_burn"}},
		{"status=open,acknowledged", []string{"latency spike", "slow span", "Payment GATEWAY timeout"}},
		{"min_score=6", []string{"latency spike", "100% cpu_burn", "Payment GATEWAY timeout"}},
		{"max_p_value=0.001", []string{"latency spike", "Payment GATEWAY timeout"}},
		{"q=gateway", []string{"Payment GATEWAY timeout"}},
		{"q=100%25", []string{"100% cpu_burn"}}, // % matches itself
		{"q=cpu_b", []string{"100% cpu_burn"}},  // _ matches itself
		{"q=cpu%25b", nil},                      // no wildcard expansion
		{"since=" + url.QueryEscape(base.Add(2*time.Minute).Format(time.RFC3339)), []string{"latency spike", "100% cpu_burn", "slow span"}},
		{"until=" + url.QueryEscape(base.Add(2*time.Minute).Format(time.RFC3339)), []string{"Payment GATEWAY timeout"}},
		{"service=auth&signal=logs&min_score=1", []string{"100% cpu_burn"}},
		{"service=nobody", nil},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			r := e.get("/v1/anomalies?"+c.query, e.viewer)
			wantCode(t, r, http.StatusOK)
			var lb listBody
			r.json(t, &lb)
			var got []string
			for _, it := range lb.Items {
				got = append(got, it.Summary)
				if it.Record != nil {
					t.Errorf("list item %d carries its record; lists must stay small", it.ID)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestListPaginationCoversAllRowsOnce(t *testing.T) {
	e := newEnv(t)
	// Many rows share a detected_at, so the id tiebreak is exercised.
	base := time.Now().Add(-time.Hour)
	var rows []row
	for i := range 95 {
		rows = append(rows, row{DetectedAt: base.Add(time.Duration(i/10) * time.Second), Summary: fmt.Sprint("row ", i)})
	}
	e.insert(rows...)
	seen := map[int64]bool{}
	cursor := ""
	pages := 0
	var prev *store.StoredAnomaly
	for {
		q := "/v1/anomalies?limit=10"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		var lb listBody
		r := e.get(q, e.viewer)
		wantCode(t, r, http.StatusOK)
		r.json(t, &lb)
		pages++
		for i := range lb.Items {
			it := lb.Items[i]
			if seen[it.ID] {
				t.Fatalf("id %d returned twice", it.ID)
			}
			seen[it.ID] = true
			if prev != nil && (it.DetectedAt.After(prev.DetectedAt) || (it.DetectedAt.Equal(prev.DetectedAt) && it.ID > prev.ID)) {
				t.Fatalf("order broken: %d@%v after %d@%v", it.ID, it.DetectedAt, prev.ID, prev.DetectedAt)
			}
			prev = &it
		}
		if lb.NextCursor == nil {
			break
		}
		cursor = *lb.NextCursor
	}
	if len(seen) != 95 || pages != 10 {
		t.Fatalf("saw %d rows in %d pages, want 95 in 10", len(seen), pages)
	}
}

// Rows inserted while a client pages (newer ones at the top, and late rows
// with old detected_at in the middle) must never duplicate or hide the rows
// that existed when paging began.
func TestPaginationStableUnderConcurrentInserts(t *testing.T) {
	e := newEnv(t)
	base := time.Now().Add(-2 * time.Hour)
	var rows []row
	for i := range 300 {
		rows = append(rows, row{DetectedAt: base.Add(time.Duration(i) * 10 * time.Second)})
	}
	initial := map[int64]bool{}
	for _, id := range e.insert(rows...) {
		initial[id] = true
	}
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			// One brand-new row and one late row landing inside the range
			// already paged through.
			e.insert(row{}, row{DetectedAt: base.Add(time.Duration(n%300)*10*time.Second + 5*time.Second)})
			n += 2
		}
	}()
	seen := map[int64]bool{}
	cursor := ""
	for {
		q := "/v1/anomalies?limit=7"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		var lb listBody
		r := e.get(q, e.viewer)
		wantCode(t, r, http.StatusOK)
		r.json(t, &lb)
		for _, it := range lb.Items {
			if seen[it.ID] {
				t.Fatalf("id %d seen twice while rows were being inserted", it.ID)
			}
			seen[it.ID] = true
		}
		if lb.NextCursor == nil {
			break
		}
		cursor = *lb.NextCursor
	}
	close(stop)
	inserted := <-done
	if inserted == 0 {
		t.Fatal("no concurrent inserts happened; the test proves nothing")
	}
	for id := range initial {
		if !seen[id] {
			t.Fatalf("row %d that existed before paging was never returned", id)
		}
	}
	t.Logf("paged %d rows (%d initial) while %d rows were inserted", len(seen), len(initial), inserted)
}

func TestGetPatchETagAndAudit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.st.UpsertDetector(ctx, "cfg-abc", []byte(`{"p_value":0.001,"window":256}`)); err != nil {
		t.Fatal(err)
	}
	id := e.insert(row{DetectorHash: "cfg-abc", Record: `{"body":"kernel panic","attrs":{"host":"h1"}}`})[0]
	path := fmt.Sprintf("/v1/anomalies/%d", id)

	r := e.get(path, e.viewer)
	wantCode(t, r, http.StatusOK)
	var got struct {
		store.StoredAnomaly
		History []store.AuditEntry `json:"history"`
	}
	r.json(t, &got)
	if r.header.Get("ETag") != `"1"` || got.Version != 1 {
		t.Fatalf("ETag %q version %d, want \"1\" and 1", r.header.Get("ETag"), got.Version)
	}
	var rec struct {
		Body  string            `json:"body"`
		Attrs map[string]string `json:"attrs"`
	}
	if err := json.Unmarshal(got.Record, &rec); err != nil || rec.Body != "kernel panic" || rec.Attrs["host"] != "h1" {
		t.Fatalf("record %s (%v)", got.Record, err)
	}
	if got.Detector == nil || got.Detector.ConfigHash != "cfg-abc" || string(got.Detector.Config) == "{}" {
		t.Fatalf("detector settings not joined: %+v", got.Detector)
	}
	if got.Explanation == "" || got.NCD == nil || *got.NCD != 0.42 {
		t.Fatalf("explanation/scores missing: %+v", got.StoredAnomaly)
	}

	// An analyst acknowledges with the right version.
	r = e.do(http.MethodPatch, path, e.analyst, `{"status":"acknowledged","note":"looking"}`, "If-Match", `"1"`)
	wantCode(t, r, http.StatusOK)
	if r.header.Get("ETag") != `"2"` {
		t.Fatalf("ETag after patch %q", r.header.Get("ETag"))
	}
	// A second writer with the stale version is refused.
	r = e.do(http.MethodPatch, path, e.admin, `{"status":"resolved"}`, "If-Match", `"1"`)
	wantCode(t, r, http.StatusPreconditionFailed)
	if p := r.problem(t); p["current_version"] != float64(2) {
		t.Fatalf("412 problem lacks current_version 2: %v", p)
	}
	// Missing If-Match.
	wantCode(t, e.do(http.MethodPatch, path, e.analyst, `{"status":"resolved"}`), http.StatusPreconditionRequired)
	// The change and who made it are in the audit log and in GET.
	var actor, action string
	var details string
	if err := storetest.Pool(e.st).QueryRow(ctx, "SELECT actor, action, details::text FROM audit_log WHERE anomaly_id = $1", id).Scan(&actor, &action, &details); err != nil {
		t.Fatal(err)
	}
	if actor != "ann-analyst" || action != "status_change" {
		t.Fatalf("audit row %s %s %s", actor, action, details)
	}
	r = e.get(path, e.viewer)
	r.json(t, &got)
	if got.Status != "acknowledged" || got.Note != "looking" || len(got.History) != 1 || got.History[0].Actor != "ann-analyst" {
		t.Fatalf("after patch: status %q note %q history %+v", got.Status, got.Note, got.History)
	}
	wantCode(t, e.get("/v1/anomalies/999999", e.viewer), http.StatusNotFound)
	wantCode(t, e.do(http.MethodPatch, "/v1/anomalies/999999", e.analyst, `{"status":"resolved"}`, "If-Match", `"1"`), http.StatusNotFound)
}

func TestPatchBadInput(t *testing.T) {
	e := newEnv(t)
	id := e.insert(row{})[0]
	path := fmt.Sprintf("/v1/anomalies/%d", id)
	cases := []struct {
		body, ifMatch, param string
		code                 int
	}{
		{`{"status":"deleted"}`, `"1"`, "status", 400},
		{`{"status":"resolved","owner":"x"}`, `"1"`, "body", 400},
		{`{}`, `"1"`, "body", 400},
		{`not json`, `"1"`, "body", 400},
		{`{"status":"resolved"} {}`, `"1"`, "body", 400},
		{`{"note":"a\u0000b"}`, `"1"`, "note", 400},
		{`{"status":"resolved"}`, `abc`, "If-Match", 400},
		{`{"status":"resolved"}`, `1`, "If-Match", 400},
	}
	for _, c := range cases {
		r := e.do(http.MethodPatch, path, e.analyst, c.body, "If-Match", c.ifMatch)
		wantCode(t, r, c.code)
		p := r.problem(t)
		params, _ := p["invalid_params"].([]any)
		if len(params) != 1 || params[0].(map[string]any)["name"] != c.param {
			t.Fatalf("body %s: problem %v does not name %s", c.body, p, c.param)
		}
	}
	// Wrong media type, too large a body.
	r := e.do(http.MethodPatch, path, e.analyst, `{"status":"resolved"}`, "If-Match", `"1"`, "Content-Type", "text/plain")
	wantCode(t, r, http.StatusUnsupportedMediaType)
	big := `{"note":"` + string(make([]byte, 0)) + fmt.Sprintf("%070000d", 0) + `"}`
	wantCode(t, e.do(http.MethodPatch, path, e.analyst, big, "If-Match", `"1"`), http.StatusRequestEntityTooLarge)
	// Nothing changed.
	var v int
	_ = storetest.Pool(e.st).QueryRow(context.Background(), "SELECT version FROM anomalies WHERE id=$1", id).Scan(&v)
	if v != 1 {
		t.Fatalf("bad requests changed the row: version %d", v)
	}
}

func TestSearchIndexKeepsResults(t *testing.T) {
	e := newEnv(t)
	e.insert(row{Summary: "Disk 100% full"}, row{Summary: "disk_io slow"}, row{Summary: "net down"})
	ok, err := e.st.EnsureSearchIndex(context.Background())
	if err != nil || !ok {
		t.Fatalf("EnsureSearchIndex: %v %v", ok, err)
	}
	if ok, err := e.st.EnsureSearchIndex(context.Background()); err != nil || !ok {
		t.Fatalf("second EnsureSearchIndex: %v %v", ok, err)
	}
	for q, want := range map[string]int{"disk": 2, "100%25": 1, "k_i": 1, "K%25": 0, "net": 1} {
		var lb listBody
		r := e.get("/v1/anomalies?q="+q, e.viewer)
		wantCode(t, r, http.StatusOK)
		r.json(t, &lb)
		if len(lb.Items) != want {
			t.Fatalf("q=%s: %d rows, want %d", q, len(lb.Items), want)
		}
	}
}

// TestListUpdatedSince: updated_since lists by triage time, whatever the
// detection time: only the anomaly changed after the mark is listed.
func TestListUpdatedSince(t *testing.T) {
	e := newEnv(t)
	old := time.Now().Add(-48 * time.Hour)
	ids := e.insert(
		row{Summary: "triaged later", DetectedAt: old},
		row{Summary: "left alone", DetectedAt: old.Add(time.Minute)},
	)
	var mark time.Time
	if err := storetest.Pool(e.st).QueryRow(context.Background(), "SELECT now()").Scan(&mark); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the PATCH transaction's now() is later
	r := e.do(http.MethodPatch, fmt.Sprintf("/v1/anomalies/%d", ids[0]), e.analyst, `{"status":"false_positive"}`, "If-Match", `"1"`)
	wantCode(t, r, http.StatusOK)

	q := "/v1/anomalies?updated_since=" + url.QueryEscape(mark.Format(time.RFC3339Nano))
	r = e.get(q, e.viewer)
	wantCode(t, r, http.StatusOK)
	var lb listBody
	r.json(t, &lb)
	if len(lb.Items) != 1 || lb.Items[0].ID != ids[0] {
		t.Fatalf("updated_since listed %+v, want only anomaly %d", lb.Items, ids[0])
	}
	// Before both rows were written, both are listed.
	r = e.get("/v1/anomalies?updated_since="+url.QueryEscape(mark.Add(-time.Hour).Format(time.RFC3339)), e.viewer)
	r.json(t, &lb)
	if len(lb.Items) != 2 {
		t.Fatalf("updated_since an hour back listed %d anomalies, want 2", len(lb.Items))
	}
	wantCode(t, e.get("/v1/anomalies?updated_since=yesterday", e.viewer), http.StatusBadRequest)
}
