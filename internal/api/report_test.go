package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/driftlock/driftlock/internal/store/storetest"
)

const reportBody = `{"signal":"logs","service":"billing","observed_at":"2026-03-04T05:06:07.123Z",
 "score":9.5,"p_value":0.002,"severity":"ERROR",
 "summary":"login failed for ada password=hunter2 \u0000",
 "explanation":"rare template, Authorization: Bearer abc.def.ghi",
 "attributes":{"db.password":"hunter2","host":"web-1"},
 "record":{"body":"card 4111 1111 1111 1111 declined"}}`

// A reported anomaly takes the exporter's path: sanitized and redacted,
// announced on the live feed, idempotent by fingerprint, audited.
func TestReportAnomaly(t *testing.T) {
	e := newEnv(t)
	live := e.openStream("", "")
	waitClients(t, e, 1)

	r := e.do(http.MethodPost, "/v1/anomalies", e.analyst, reportBody)
	wantCode(t, r, http.StatusCreated)
	var got struct {
		ID          int64  `json:"id"`
		Fingerprint string `json:"fingerprint"`
		Stream      string `json:"stream"`
		Status      string `json:"status"`
		Summary     string `json:"summary"`
		History     []struct {
			Actor, Action string
		} `json:"history"`
	}
	r.json(t, &got)
	if loc := r.header.Get("Location"); loc != fmt.Sprintf("/v1/anomalies/%d", got.ID) || got.ID == 0 {
		t.Fatalf("Location %q for id %d", loc, got.ID)
	}
	if !strings.HasPrefix(got.Fingerprint, "report:") || got.Stream != "billing" || got.Status != "open" {
		t.Fatalf("stored %+v", got)
	}
	if len(got.History) != 1 || got.History[0].Actor != "ann-analyst" || got.History[0].Action != "report" {
		t.Fatalf("history %+v", got.History)
	}
	if strings.ContainsRune(got.Summary, 0) || !strings.Contains(got.Summary, "login failed for ada") {
		t.Fatalf("summary %q", got.Summary)
	}
	// No secret reached any column.
	var all string
	if err := storetest.Pool(e.st).QueryRow(context.Background(),
		"SELECT summary || explanation || attributes::text || record::text FROM anomalies WHERE id = $1", got.ID).Scan(&all); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "abc.def.ghi", "4111 1111 1111 1111"} {
		if strings.Contains(all, secret) {
			t.Errorf("secret %q stored: %s", secret, all)
		}
	}
	if ev := live.next(1); ev[0].id != got.ID {
		t.Fatalf("live feed announced %d, want %d", ev[0].id, got.ID)
	}

	// The same report again: nothing new, the stored row answers.
	r = e.do(http.MethodPost, "/v1/anomalies", e.analyst, reportBody)
	wantCode(t, r, http.StatusOK)
	var again struct{ ID int64 }
	r.json(t, &again)
	// A different observation time is a different anomaly.
	r = e.do(http.MethodPost, "/v1/anomalies", e.analyst, strings.Replace(reportBody, "05:06:07.123Z", "05:06:08Z", 1))
	wantCode(t, r, http.StatusCreated)
	var n int
	if err := storetest.Pool(e.st).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&n); err != nil || n != 2 || again.ID != got.ID {
		t.Fatalf("rows %d (%v), repeat answered id %d for %d", n, err, again.ID, got.ID)
	}
}

// Hostile and malformed bodies get a 4xx naming the problem and store nothing.
func TestReportAnomalyRejectsBadBodies(t *testing.T) {
	e := newHostileEnv(t)
	ok := `"signal":"logs","service":"s","observed_at":"2026-01-02T03:04:05Z","summary":"x"`
	long := strings.Repeat("é", 600) // 1200 bytes
	for _, c := range []struct {
		name, body, param string
		code              int
	}{
		{"empty object", `{}`, "signal", 400},
		{"unknown signal", `{"signal":"profiles","service":"s","observed_at":"2026-01-02T03:04:05Z","summary":"x"}`, "signal", 400},
		{"no service", `{"signal":"logs","observed_at":"2026-01-02T03:04:05Z","summary":"x"}`, "service", 400},
		{"blank summary", `{"signal":"logs","service":"s","observed_at":"2026-01-02T03:04:05Z","summary":"  "}`, "summary", 400},
		{"no observed_at", `{"signal":"logs","service":"s","summary":"x"}`, "observed_at", 400},
		{"observed_at far future", `{"signal":"logs","service":"s","observed_at":"2999-01-01T00:00:00Z","summary":"x"}`, "observed_at", 400},
		{"observed_at before 1970", `{"signal":"logs","service":"s","observed_at":"1969-01-01T00:00:00Z","summary":"x"}`, "observed_at", 400},
		{"observed_at not a time", `{"signal":"logs","service":"s","observed_at":"yesterday","summary":"x"}`, "body", 400},
		{"p_value over 1", `{` + ok + `,"p_value":1.5}`, "p_value", 400},
		{"negative score", `{` + ok + `,"score":-1}`, "score", 400},
		{"negative ncd", `{` + ok + `,"ncd":-0.1}`, "ncd", 400},
		{"score as string", `{` + ok + `,"score":"9"}`, "body", 400},
		{"huge number", `{` + ok + `,"score":1e400}`, "body", 400},
		{"service too long", `{"signal":"logs","service":"` + long + `","observed_at":"2026-01-02T03:04:05Z","summary":"x"}`, "service", 400},
		{"unknown field", `{` + ok + `,"status":"resolved"}`, "body", 400},
		{"server-side field", `{` + ok + `,"fingerprint":"abc"}`, "body", 400},
		{"attributes not an object", `{` + ok + `,"attributes":[1,2]}`, "body", 400},
		{"array body", `[{` + ok + `}]`, "body", 400},
		{"trailing data", `{` + ok + `} {"x":1}`, "body", 400},
		{"truncated", `{` + ok, "body", 400},
		{"deep nesting", `{` + ok + `,"record":` + strings.Repeat(`{"a":`, 20000) + `1` + strings.Repeat(`}`, 20000) + `}`, "body", 400},
		{"over the body limit", `{` + ok + `,"explanation":"` + strings.Repeat("A", 1<<20) + `"}`, "", 413},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/v1/anomalies", e.analyst, c.body)
			wantCode(t, r, c.code)
			p := r.problem(t)
			if c.param != "" && !strings.Contains(fmt.Sprint(p["invalid_params"]), "name:"+c.param+" ") {
				t.Fatalf("problem does not name %s: %v", c.param, p)
			}
		})
	}
	r := e.do(http.MethodPost, "/v1/anomalies", e.analyst, `{`+ok+`}`, "Content-Type", "text/plain")
	wantCode(t, r, http.StatusUnsupportedMediaType)
	var n int
	if err := storetest.Pool(e.st).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows stored from refused bodies (%v)", n, err)
	}
	// Deeply nested but within what JSON decoding follows: stored, with
	// the part past the store's depth cap flattened, not refused.
	deep := `{` + ok + `,"record":` + strings.Repeat(`{"a":`, 40) + `"leaf"` + strings.Repeat(`}`, 40) + `}`
	r = e.do(http.MethodPost, "/v1/anomalies", e.analyst, deep)
	wantCode(t, r, http.StatusCreated)
	if !strings.Contains(string(r.body), "flattened") {
		t.Fatalf("40 levels of nesting not flattened: %.300s", r.body)
	}
}
