package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/driftlock/driftlock/internal/store/storetest"
)

// A panicking handler must become a logged 500 problem, not a dropped
// connection or a crashed server.
func TestPanicRecovery(t *testing.T) {
	st, _ := storetest.Open(t)
	var logs bytes.Buffer
	s, err := New(st, DefaultConfig(), slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h := s.outer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		panic("handler bug: secret internals")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/anomalies", nil))
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var p problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.RequestID == "" || strings.Contains(rec.Body.String(), "secret internals") {
		t.Fatalf("problem %s (%v): must carry a request id and no internals", rec.Body.String(), err)
	}
	if !strings.Contains(logs.String(), "panic serving request") || !strings.Contains(logs.String(), p.RequestID) {
		t.Fatalf("panic not logged with its request id:\n%s", logs.String())
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]func(*Config){
		"addr":    func(c *Config) { c.Addr = "" },
		"rate":    func(c *Config) { c.RateLimit = 0 },
		"burst":   func(c *Config) { c.RateBurst = 0 },
		"body":    func(c *Config) { c.MaxBodyBytes = 10 },
		"timeout": func(c *Config) { c.ReadHeaderTimeout = 0 },
		"sse":     func(c *Config) { c.SSEMaxClients = 0 },
		"ttl":     func(c *Config) { c.SessionTTL = 0 },
		"secret":  func(c *Config) { c.SessionSecret = []byte("short") },
		"cors":    func(c *Config) { c.CORSOrigins = []string{"*"} },
	} {
		cfg := DefaultConfig()
		c(&cfg)
		if err := cfg.Validate(); err == nil {
			t.Errorf("%s: invalid config accepted", name)
		}
	}
}
