package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// env is one test's server on a fresh database with a key per role.
type env struct {
	t       testing.TB
	st      *store.Store
	srv     *api.Server
	ts      *httptest.Server
	viewer  string
	analyst string
	admin   string
	revoked string
}

func testConfig() api.Config {
	cfg := api.DefaultConfig()
	cfg.RateLimit = 1000
	cfg.RateBurst = 1000
	cfg.SSEHeartbeat = 200 * time.Millisecond
	cfg.SSEPoll = 500 * time.Millisecond
	cfg.GapGraceMin = 50 * time.Millisecond
	cfg.GapGraceMax = 3 * time.Second
	return cfg
}

func newEnv(t testing.TB, mutate ...func(*api.Config)) *env {
	t.Helper()
	st, _ := storetest.Open(t)
	cfg := testConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	var log *slog.Logger
	if os.Getenv("DRIFTLOCK_TEST_LOG") != "" {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	srv, err := api.New(st, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	e := &env{t: t, st: st, srv: srv, ts: ts}
	ctx := context.Background()
	mk := func(name, role string) string {
		k, _, err := st.CreateKey(ctx, name, role)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	e.viewer = mk("vic-viewer", store.RoleViewer)
	e.analyst = mk("ann-analyst", store.RoleAnalyst)
	e.admin = mk("ada-admin", store.RoleAdmin)
	e.revoked = mk("rex-revoked", store.RoleAdmin)
	if _, err := st.RevokeKey(ctx, "rex-revoked", "test"); err != nil {
		t.Fatal(err)
	}
	return e
}

// row describes a test anomaly; zero fields get defaults.
type row struct {
	Signal, Stream, Service, Summary, Status string
	Score, PValue                            float64
	DetectedAt                               time.Time
	ObservedAt                               time.Time // zero: DetectedAt
	Attributes, TraceID                      string    // JSON object; hex
	Record                                   string
	DetectorHash                             string
}

var fpSeq atomic.Int64

// insert writes anomalies with plain SQL and notifies like the exporter
// does, returning their ids in order.
func (e *env) insert(rows ...row) []int64 {
	e.t.Helper()
	ctx := context.Background()
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		if r.Signal == "" {
			r.Signal = "logs"
		}
		if r.Stream == "" {
			r.Stream = "svc-a/app"
		}
		if r.Service == "" {
			r.Service = "svc-a"
		}
		if r.Status == "" {
			r.Status = "open"
		}
		if r.Score == 0 {
			r.Score = 7.5
		}
		if r.PValue == 0 {
			r.PValue = 0.001
		}
		if r.DetectedAt.IsZero() {
			r.DetectedAt = time.Now()
		}
		if r.ObservedAt.IsZero() {
			r.ObservedAt = r.DetectedAt
		}
		if r.Attributes == "" {
			r.Attributes = "{}"
		}
		if r.Record == "" {
			r.Record = `{"body":"disk failure on /dev/sda"}`
		}
		if r.Summary == "" {
			r.Summary = "unusual log line"
		}
		var hash any
		if r.DetectorHash != "" {
			hash = r.DetectorHash
		}
		var id int64
		err := storetest.Pool(e.st).QueryRow(ctx, `
INSERT INTO anomalies (fingerprint, signal, stream, service, observed_at, detected_at, score, p_value,
  ncd, compression_ratio, entropy, severity, status, summary, explanation, record, resource, detector_config_hash,
  attributes, trace_id)
VALUES ($1, $2, $3, $4, $12, $5, $6, $7, 0.42, 0.31, 4.2, 'ERROR', $8, $9, 'costs 7.5 bits/token vs median 2.1', $10::jsonb,
  '{"service.name":"svc"}'::jsonb, $11, $13::jsonb, $14)
RETURNING id`, fmt.Sprintf("fp-%d-%d", time.Now().UnixNano(), fpSeq.Add(1)), r.Signal, r.Stream, r.Service,
			r.DetectedAt, r.Score, r.PValue, r.Status, r.Summary, r.Record, hash, r.ObservedAt, r.Attributes, r.TraceID).Scan(&id)
		if err != nil {
			e.t.Fatalf("insert anomaly: %v", err)
		}
		ids = append(ids, id)
	}
	if _, err := storetest.Pool(e.st).Exec(ctx, "SELECT pg_notify($1, $2)", store.NotifyChannel, fmt.Sprint(ids[len(ids)-1])); err != nil {
		e.t.Fatal(err)
	}
	return ids
}

type resp struct {
	code   int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem decodes an RFC 9457 body and checks its media type.
func (r resp) problem(t testing.TB) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (body %s)", ct, r.body)
	}
	var m map[string]any
	r.json(t, &m)
	return m
}

func (e *env) do(method, path, key string, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{code: res.StatusCode, header: res.Header, body: b}
}

func (e *env) get(path, key string) resp { return e.do(http.MethodGet, path, key, "") }

func wantCode(t testing.TB, r resp, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("status %d, want %d; body %s", r.code, code, r.body)
	}
}
