package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// protected lists every authenticated route with a concrete request and the
// weakest role allowed. TestAuthMatrixCoversEveryRoute keeps it complete.
func protected(id int64) []struct {
	pattern, method, path, body, role string
} {
	p := fmt.Sprintf("/v1/anomalies/%d", id)
	return []struct{ pattern, method, path, body, role string }{
		{"GET /metrics", "GET", "/metrics", "", "viewer"},
		{"GET /v1/openapi.json", "GET", "/v1/openapi.json", "", "viewer"},
		{"GET /v1/anomalies", "GET", "/v1/anomalies", "", "viewer"},
		{"GET /v1/anomalies/export", "GET", "/v1/anomalies/export?format=csv", "", "viewer"},
		{"GET /v1/anomalies/{id}", "GET", p, "", "viewer"},
		{"PATCH /v1/anomalies/{id}", "PATCH", p, `{"status":"acknowledged"}`, "analyst"},
		{"POST /v1/anomalies", "POST", "/v1/anomalies", `{"signal":"logs","service":"billing","observed_at":"2026-01-02T03:04:05Z","summary":"reported"}`, "analyst"},
		{"GET /v1/detectors", "GET", "/v1/detectors", "", "viewer"},
		{"GET /v1/detectors/{hash}", "GET", "/v1/detectors/h1", "", "viewer"},
		{"GET /v1/analytics/summary", "GET", "/v1/analytics/summary", "", "viewer"},
		{"GET /v1/analytics/timeline", "GET", "/v1/analytics/timeline", "", "viewer"},
		{"GET /v1/stream", "GET", "/v1/stream", "", "viewer"},
		{"GET /v1/incidents", "GET", "/v1/incidents", "", "viewer"},
		{"GET /v1/incidents/stream", "GET", "/v1/incidents/stream", "", "viewer"},
		{"GET /v1/incidents/{id}", "GET", fmt.Sprintf("/v1/incidents/%d", id), "", "viewer"},
		{"GET /v1/incidents/{id}/anomalies", "GET", fmt.Sprintf("/v1/incidents/%d/anomalies", id), "", "viewer"},
		{"PATCH /v1/incidents/{id}", "PATCH", fmt.Sprintf("/v1/incidents/%d", id), `{"status":"acknowledged"}`, "analyst"},
		{"GET /v1/session", "GET", "/v1/session", "", "viewer"},
		{"GET /v1/keys", "GET", "/v1/keys", "", "admin"},
		{"POST /v1/keys", "POST", "/v1/keys", `{"name":"new-key","role":"viewer"}`, "admin"},
		{"DELETE /v1/keys/{name}", "DELETE", "/v1/keys/vic-viewer", "", "admin"},
	}
}

// public routes need no key.
var public = map[string]bool{
	"GET /healthz": true, "GET /readyz": true, "GET /{$}": true, "GET /ui/{file}": true,
	"POST /v1/session": true, "DELETE /v1/session": true,
}

func TestAuthMatrixCoversEveryRoute(t *testing.T) {
	e := newEnv(t)
	listed := map[string]bool{}
	for _, p := range protected(1) {
		listed[p.pattern] = true
	}
	for _, r := range e.srv.Routes() {
		if !listed[r] && !public[r] {
			t.Errorf("route %s is neither in the auth matrix nor public", r)
		}
	}
}

func TestEveryEndpointRejectsMissingRevokedAndWeakKeys(t *testing.T) {
	e := newEnv(t)
	id := e.insert(row{})[0]
	keys := map[string]string{"viewer": e.viewer, "analyst": e.analyst, "admin": e.admin}
	rank := map[string]int{"viewer": 1, "analyst": 2, "admin": 3}
	for _, p := range protected(id) {
		t.Run(p.pattern, func(t *testing.T) {
			hdr := []string{"If-Match", `"1"`}
			// No key.
			r := e.do(p.method, p.path, "", p.body, hdr...)
			wantCode(t, r, http.StatusUnauthorized)
			if r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			r.problem(t)
			// A revoked key (admin role, so only revocation can refuse it).
			r = e.do(p.method, p.path, e.revoked, p.body, hdr...)
			wantCode(t, r, http.StatusUnauthorized)
			if !strings.Contains(string(r.body), "revoked") {
				t.Errorf("revoked key answer does not say so: %s", r.body)
			}
			// An unknown key and a malformed header.
			wantCode(t, e.do(p.method, p.path, "dlk_"+strings.Repeat("A", 43), p.body, hdr...), http.StatusUnauthorized)
			wantCode(t, e.do(p.method, p.path, "", p.body, "Authorization", "Basic dXNlcjpwYXNz"), http.StatusUnauthorized)
			// Every role weaker than required gets 403.
			for role, k := range keys {
				if rank[role] < rank[p.role] {
					r := e.do(p.method, p.path, k, p.body, hdr...)
					wantCode(t, r, http.StatusForbidden)
					if !strings.Contains(string(r.body), p.role) {
						t.Errorf("403 does not name the needed role %s: %s", p.role, r.body)
					}
				}
			}
		})
	}
}

func TestRolesAllowedWhereTheyShouldBe(t *testing.T) {
	e := newEnv(t)
	id := e.insert(row{})[0]
	if err := e.st.UpsertDetector(t.Context(), "h1", nil); err != nil { // GET /v1/detectors/h1
		t.Fatal(err)
	}
	if in := e.incident(store.Incident{Key: "k", OpenedAt: time.Now(), LastEvidenceAt: time.Now()}, []int64{id}); in != id {
		t.Fatalf("fresh database: incident %d and anomaly %d should both be the first", in, id) // protected(id) uses one id
	}
	for _, p := range protected(id) {
		if strings.HasSuffix(p.pattern, "/stream") || p.method != "GET" {
			continue
		}
		for _, k := range []string{e.viewer, e.analyst, e.admin} {
			if p.role != "viewer" && k == e.viewer || p.role == "admin" && k == e.analyst {
				continue
			}
			wantCode(t, e.get(p.path, k), http.StatusOK)
		}
	}
	// An admin may also triage.
	wantCode(t, e.do("PATCH", fmt.Sprintf("/v1/anomalies/%d", id), e.admin, `{"status":"resolved"}`, "If-Match", `"1"`), http.StatusOK)
}

func TestHealthIsPublicAndReadyChecksDB(t *testing.T) {
	e := newEnv(t)
	wantCode(t, e.get("/healthz", ""), http.StatusOK)
	wantCode(t, e.get("/readyz", ""), http.StatusOK)
	e.st.Close() // the database goes away
	r := e.get("/readyz", "")
	wantCode(t, r, http.StatusServiceUnavailable)
	r.problem(t)
	wantCode(t, e.get("/healthz", ""), http.StatusOK)
}

func TestRateLimitPerKey(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.RateLimit = 1; c.RateBurst = 3 })
	for i := range 3 {
		wantCode(t, e.get("/v1/anomalies", e.viewer), http.StatusOK)
		_ = i
	}
	r := e.get("/v1/anomalies", e.viewer)
	wantCode(t, r, http.StatusTooManyRequests)
	if ra := r.header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After %q, want 1", ra)
	}
	r.problem(t)
	// Another key has its own bucket.
	wantCode(t, e.get("/v1/anomalies", e.analyst), http.StatusOK)
	time.Sleep(1100 * time.Millisecond)
	wantCode(t, e.get("/v1/anomalies", e.viewer), http.StatusOK)
}

func TestKeysOverTheAPI(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/v1/keys", e.admin, `{"name":"ci-bot","role":"analyst"}`)
	wantCode(t, r, http.StatusCreated)
	var created struct {
		Key  string `json:"key"`
		Name string `json:"name"`
		Role string `json:"role"`
	}
	r.json(t, &created)
	if !strings.HasPrefix(created.Key, "dlk_") || created.Role != "analyst" {
		t.Fatalf("created %+v", created)
	}
	// Only the hash is stored.
	var n int
	_ = storetest.Pool(e.st).QueryRow(t.Context(), "SELECT count(*) FROM api_keys WHERE key_hash = $1 OR key_hash = $2", created.Key, "x").Scan(&n)
	if n != 0 {
		t.Fatal("the clear key is in the database")
	}
	wantCode(t, e.get("/v1/anomalies", created.Key), http.StatusOK)
	wantCode(t, e.do("POST", "/v1/keys", e.admin, `{"name":"ci-bot","role":"viewer"}`), http.StatusConflict)
	r = e.do("POST", "/v1/keys", e.admin, `{"name":"x y","role":"viewer"}`)
	wantCode(t, r, http.StatusBadRequest)
	r = e.do("POST", "/v1/keys", e.admin, `{"name":"ok","role":"root"}`)
	wantCode(t, r, http.StatusBadRequest)
	if p := r.problem(t); !strings.Contains(fmt.Sprint(p["invalid_params"]), "role") {
		t.Fatalf("problem does not name role: %v", p)
	}
	var list struct {
		Items []struct {
			Name      string     `json:"name"`
			RevokedAt *time.Time `json:"revoked_at"`
		} `json:"items"`
	}
	r = e.get("/v1/keys", e.admin)
	wantCode(t, r, http.StatusOK)
	r.json(t, &list)
	if len(list.Items) != 5 || strings.Contains(string(r.body), "hash") {
		t.Fatalf("key list %s", r.body)
	}
	// Revocation applies at once, even though the key was just cached.
	wantCode(t, e.do("DELETE", "/v1/keys/ci-bot", e.admin, ""), http.StatusOK)
	wantCode(t, e.get("/v1/anomalies", created.Key), http.StatusUnauthorized)
	wantCode(t, e.do("DELETE", "/v1/keys/nobody", e.admin, ""), http.StatusNotFound)
	var actions int
	_ = storetest.Pool(e.st).QueryRow(t.Context(), "SELECT count(*) FROM audit_log WHERE actor = 'ada-admin' AND action IN ('key_create','key_revoke')").Scan(&actions)
	if actions != 2 {
		t.Fatalf("audit rows for key management: %d, want 2", actions)
	}
}

func TestSessionCookieLogin(t *testing.T) {
	e := newEnv(t)
	id := e.insert(row{})[0]
	r := e.do("POST", "/v1/session", "", `{"key":"`+e.analyst+`"}`)
	wantCode(t, r, http.StatusOK)
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "driftlock_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || strings.Contains(cookie.Value, e.analyst) {
		t.Fatalf("session cookie %+v", cookie)
	}
	ck := "driftlock_session=" + cookie.Value
	wantCode(t, e.do("GET", "/v1/anomalies", "", "", "Cookie", ck), http.StatusOK)
	// A state change by cookie needs the CSRF header.
	path := fmt.Sprintf("/v1/anomalies/%d", id)
	r = e.do("PATCH", path, "", `{"status":"resolved"}`, "Cookie", ck, "If-Match", `"1"`)
	wantCode(t, r, http.StatusForbidden)
	wantCode(t, e.do("PATCH", path, "", `{"status":"resolved"}`, "Cookie", ck, "If-Match", `"1"`, "X-Driftlock-CSRF", "1"), http.StatusOK)
	// A tampered cookie fails.
	bad := []byte(cookie.Value)
	bad[3] ^= 1
	wantCode(t, e.do("GET", "/v1/anomalies", "", "", "Cookie", "driftlock_session="+string(bad)), http.StatusUnauthorized)
	// Wrong key at login.
	wantCode(t, e.do("POST", "/v1/session", "", `{"key":"dlk_nope"}`), http.StatusUnauthorized)
	wantCode(t, e.do("POST", "/v1/session", "", `{"key":"`+e.revoked+`"}`), http.StatusUnauthorized)
	// Revoking the key ends its sessions.
	wantCode(t, e.do("DELETE", "/v1/keys/ann-analyst", e.admin, ""), http.StatusOK)
	wantCode(t, e.do("GET", "/v1/anomalies", "", "", "Cookie", ck), http.StatusUnauthorized)
	// Logout clears the cookie.
	r = e.do("DELETE", "/v1/session", "", "")
	wantCode(t, r, http.StatusNoContent)
	if !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout Set-Cookie %q", r.header.Get("Set-Cookie"))
	}
}

func TestCORSOffUnlessConfigured(t *testing.T) {
	e := newEnv(t)
	r := e.do("OPTIONS", "/v1/anomalies", "", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS header sent with no origins configured")
	}
	e2 := newEnv(t, func(c *api.Config) { c.CORSOrigins = []string{"https://ops.example"} })
	r = e2.do("OPTIONS", "/v1/anomalies", "", "", "Origin", "https://ops.example", "Access-Control-Request-Method", "GET")
	wantCode(t, r, http.StatusNoContent)
	if r.header.Get("Access-Control-Allow-Origin") != "https://ops.example" || r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight headers %v", r.header)
	}
	r = e2.do("GET", "/v1/anomalies", e2.viewer, "", "Origin", "https://evil.example")
	if r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS allowed an unlisted origin")
	}
}

func TestRequestIDAndUnknownRoute(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/anomalies", e.viewer, "", "X-Request-ID", "abc-123")
	if r.header.Get("X-Request-ID") != "abc-123" {
		t.Fatalf("request id not echoed: %q", r.header.Get("X-Request-ID"))
	}
	r = e.do("GET", "/v1/anomalies", e.viewer, "", "X-Request-ID", "bad id <script>")
	if id := r.header.Get("X-Request-ID"); id == "" || strings.Contains(id, " ") {
		t.Fatalf("bad request id kept: %q", id)
	}
	r = e.get("/v1/nothing", e.viewer)
	wantCode(t, r, http.StatusNotFound)
	if p := r.problem(t); p["request_id"] == "" {
		t.Fatal("problem without request id")
	}
	wantCode(t, e.do("PUT", "/v1/anomalies", e.viewer, ""), http.StatusMethodNotAllowed)
}

func TestQueryTimeoutIs503(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.QueryTimeout = time.Nanosecond })
	r := e.get("/v1/anomalies", e.viewer)
	wantCode(t, r, http.StatusServiceUnavailable)
	if p := r.problem(t); !strings.Contains(p["detail"].(string), "too long") {
		t.Fatalf("problem %v", p)
	}
}
