package api

import (
	"errors"
	"fmt"
	"time"
)

// Config errors.
var (
	ErrNoAddr         = errors.New("api: listen address is empty")
	ErrBadRate        = errors.New("api: rate_limit must be > 0 requests/s and burst >= 1")
	ErrBadTimeouts    = errors.New("api: timeouts must be > 0")
	ErrBadBodyLimit   = errors.New("api: max_body_bytes must be between 1 KiB and 64 MiB")
	ErrBadSSE         = errors.New("api: sse max_clients must be >= 1 and heartbeat > 0")
	ErrBadSessionTTL  = errors.New("api: session_ttl must be between 1 minute and 7 days")
	ErrBadSecret      = errors.New("api: session_secret must be at least 32 bytes when set")
	ErrBadCORSOrigins = errors.New("api: cors origins must be absolute http(s) origins")
	ErrBadTraceURL    = errors.New("api: trace_url must be an absolute http(s) URL template containing {trace_id}")
)

// Config is the API server's configuration. DefaultConfig gives values fit
// for production; every field is checked by Validate.
type Config struct {
	// Addr is the listen address of Serve (e.g. "127.0.0.1:8080").
	Addr string
	// RateLimit is each key's sustained requests per second and RateBurst
	// its bucket size.
	RateLimit float64
	RateBurst int
	// MaxBodyBytes caps request bodies (PATCH, POST).
	MaxBodyBytes int64
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout go to
	// http.Server. Streaming endpoints (SSE, export) lift the write deadline
	// for their own responses.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// QueryTimeout bounds each database query of a non-streaming request.
	QueryTimeout time.Duration
	// SSEMaxClients caps concurrent live-stream clients per server (503
	// beyond); SSEHeartbeat is the interval of keep-alive comments.
	SSEMaxClients int
	SSEHeartbeat  time.Duration
	// SSEPoll is the fallback poll interval of the live stream when no
	// notification arrives (notifications can be lost on reconnects).
	SSEPoll time.Duration
	// GapGraceMin and GapGraceMax bound how long the live stream holds rows
	// behind an id gap waiting for a slower transaction to commit.
	GapGraceMin time.Duration
	GapGraceMax time.Duration
	// SessionTTL is the lifetime of a web session cookie.
	SessionTTL time.Duration
	// SessionSecret signs session cookies. Empty: a random secret per
	// process (sessions do not survive restarts or span servers).
	SessionSecret []byte
	// SecureCookies sets the Secure attribute on the session cookie (turn
	// on behind TLS).
	SecureCookies bool
	// CORSOrigins lists origins allowed to call the API from browsers;
	// empty disables CORS (same-origin only).
	CORSOrigins []string
	// KeyCacheTTL is how long a verified key is trusted before it is looked
	// up again (revocations through this server apply at once).
	KeyCacheTTL time.Duration
	// TraceURL is the link template of trace ids on the page and in
	// incident answers: {trace_id} is replaced by the (escaped) trace id,
	// e.g. Jaeger "http://jaeger:16686/trace/{trace_id}", Tempo through
	// Grafana's explore URL. Empty: no links.
	TraceURL string
}

// DefaultConfig returns the defaults documented in docs/api.md.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		RateLimit:         20,
		RateBurst:         60,
		MaxBodyBytes:      64 << 10,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		QueryTimeout:      10 * time.Second,
		SSEMaxClients:     100,
		SSEHeartbeat:      15 * time.Second,
		SSEPoll:           2 * time.Second,
		GapGraceMin:       200 * time.Millisecond,
		GapGraceMax:       10 * time.Second,
		SessionTTL:        12 * time.Hour,
		KeyCacheTTL:       5 * time.Second,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return ErrNoAddr
	}
	if !(c.RateLimit > 0) || c.RateBurst < 1 {
		return ErrBadRate
	}
	if c.MaxBodyBytes < 1<<10 || c.MaxBodyBytes > 64<<20 {
		return ErrBadBodyLimit
	}
	for _, d := range []time.Duration{c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout, c.QueryTimeout, c.SSEPoll, c.GapGraceMin, c.GapGraceMax} {
		if d <= 0 {
			return ErrBadTimeouts
		}
	}
	if c.SSEMaxClients < 1 || c.SSEHeartbeat <= 0 {
		return ErrBadSSE
	}
	if c.SessionTTL < time.Minute || c.SessionTTL > 7*24*time.Hour {
		return ErrBadSessionTTL
	}
	if len(c.SessionSecret) > 0 && len(c.SessionSecret) < 32 {
		return ErrBadSecret
	}
	for _, o := range c.CORSOrigins {
		if !validOrigin(o) {
			return fmt.Errorf("%w: %q", ErrBadCORSOrigins, o)
		}
	}
	if c.KeyCacheTTL < 0 {
		return ErrBadTimeouts
	}
	if c.TraceURL != "" && !validTraceURL(c.TraceURL) {
		return fmt.Errorf("%w: %q", ErrBadTraceURL, c.TraceURL)
	}
	return nil
}
