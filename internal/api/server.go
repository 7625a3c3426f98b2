// Package api is `driftlock serve`: the HTTP API and web page over the
// PostgreSQL anomaly store. See docs/api.md for the reference.
package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/driftlock/driftlock/internal/store"
)

// Server serves the API. Create it with New, call Start (or Serve), and
// Close when done.
type Server struct {
	cfg     Config
	st      *store.Store
	log     *slog.Logger
	metrics *metrics
	keys    *keyCache
	limit   *limiters
	secret  []byte
	hub     *hub
	handler http.Handler
	routes  []string

	// incidents fans incident changes out to /v1/incidents/stream.
	incidents *incidentHub

	startOnce sync.Once
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// New builds a server over st. It does not start anything.
func New(st *store.Store, cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		st:      st,
		log:     log,
		metrics: newMetrics(st),
		keys:    &keyCache{ttl: cfg.KeyCacheTTL, entries: map[string]cachedKey{}, touched: map[int64]time.Time{}},
		limit:   &limiters{r: rate.Limit(cfg.RateLimit), burst: cfg.RateBurst, m: map[int64]*rate.Limiter{}},
		secret:  cfg.SessionSecret,
	}
	if len(s.secret) == 0 {
		s.secret = make([]byte, 32)
		if _, err := rand.Read(s.secret); err != nil {
			return nil, fmt.Errorf("api: session secret: %w", err)
		}
	}
	s.hub = newHub(s)
	s.incidents = newIncidentHub(s)
	s.handler = s.outer(problems(s.routesMux()))
	return s, nil
}

// routesMux registers every route. Keep it in sync with openapi.json (a
// test checks both ways).
func (s *Server) routesMux() *http.ServeMux {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, h)
		s.routes = append(s.routes, pattern)
	}
	v, a, ad := store.RoleViewer, store.RoleAnalyst, store.RoleAdmin
	handle("GET /healthz", s.handleHealth)
	handle("GET /readyz", s.handleReady)
	handle("GET /metrics", s.protect(v, promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP))
	handle("GET /v1/openapi.json", s.protect(v, s.handleOpenAPI))
	handle("GET /v1/anomalies", s.protect(v, s.handleList))
	handle("GET /v1/anomalies/export", s.protect(v, s.handleExport))
	handle("GET /v1/anomalies/{id}", s.protect(v, s.handleGet))
	handle("POST /v1/anomalies", s.protect(a, s.handleReport))
	handle("PATCH /v1/anomalies/{id}", s.protect(a, s.handlePatch))
	handle("GET /v1/detectors", s.protect(v, s.handleDetectors))
	handle("GET /v1/detectors/{hash}", s.protect(v, s.handleDetector))
	handle("GET /v1/analytics/summary", s.protect(v, s.handleSummary))
	handle("GET /v1/analytics/timeline", s.protect(v, s.handleTimeline))
	handle("GET /v1/stream", s.protect(v, s.handleStream))
	s.incidentRoutes(handle)
	handle("POST /v1/session", s.handleLogin)
	handle("GET /v1/session", s.protect(v, s.handleWhoAmI))
	handle("DELETE /v1/session", s.handleLogout)
	handle("GET /v1/keys", s.protect(ad, s.handleListKeys))
	handle("POST /v1/keys", s.protect(ad, s.handleCreateKey))
	handle("DELETE /v1/keys/{name}", s.protect(ad, s.handleRevokeKey))
	handle("GET /{$}", s.handleWeb)
	handle("GET /ui/{file}", s.handleWeb)
	return mux
}

// problems answers unmatched requests with problem+json: 405 with Allow
// when the path exists under other methods, else 404.
func problems(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pat := mux.Handler(r); pat != "" {
			mux.ServeHTTP(w, r)
			return
		}
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, pat := mux.Handler(r2); pat != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, r, problem{Type: typeBadMethod, Status: http.StatusMethodNotAllowed,
				Detail: r.Method + " is not allowed here; use " + strings.Join(allow, " or ")})
			return
		}
		writeProblem(w, r, problem{Type: typeNotFound, Status: http.StatusNotFound, Detail: "no such endpoint: " + r.URL.Path})
	})
}

// Handler returns the root handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Routes lists the registered route patterns.
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// Start launches the live-stream hub. It is idempotent.
func (s *Server) Start() {
	s.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.hub.run(ctx) }()
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.incidents.run(ctx) }()
	})
}

// Close stops the hub (ending live streams) and waits for it.
func (s *Server) Close() {
	s.Start() // so that cancel is set and done gets closed
	s.cancel()
	s.wg.Wait()
}

// HTTPServer returns an http.Server with the configured timeouts.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Addr:              s.cfg.Addr,
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Serve listens on ln until ctx ends, then shuts down gracefully: live
// streams are closed first, then in-flight requests get up to 10 s.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.Start()
	hs := s.HTTPServer()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		s.log.Warn("readiness: database ping failed", "err", err)
		writeProblem(w, r, problem{Type: typeUnavailable, Status: http.StatusServiceUnavailable, Detail: "database unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// fail answers an error: parameter errors become 400 naming the parameter,
// the rest 500 (logged with the request id, never shown to the caller).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pe *paramError
	if errors.As(err, &pe) {
		writeParamProblem(w, r, pe)
		return
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeProblem(w, r, problem{Type: typeTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)})
		return
	}
	if errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil {
		writeProblem(w, r, problem{Type: typeUnavailable, Status: http.StatusServiceUnavailable,
			Detail: "the query took too long; narrow the filters"})
		return
	}
	if store.IsTransient(err) && r.Context().Err() == nil {
		s.log.Warn("database unavailable", "request_id", requestIDFrom(r.Context()), "err", err)
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, problem{Type: typeUnavailable, Status: http.StatusServiceUnavailable,
			Detail: "the database is temporarily unavailable; retry shortly"})
		return
	}
	s.internalError(w, r, err)
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away
	}
	s.log.Error("request failed", "request_id", requestIDFrom(r.Context()), "err", err)
	writeProblem(w, r, problem{Type: typeInternal, Status: http.StatusInternalServerError,
		Detail: "internal error; quote the request id when reporting it"})
}
