package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/driftlock/driftlock/internal/store"
)

// principal is the authenticated caller: an API key, directly (Bearer) or
// through a web session cookie.
type principal struct {
	KeyID   int64
	Name    string
	Role    string
	Session bool // authenticated by cookie, not by Authorization header
}

type principalHolder struct{ p *principal }

func principalFrom(ctx context.Context) *principal {
	h, _ := ctx.Value(ctxPrincipal).(*principalHolder)
	if h == nil {
		return nil
	}
	return h.p
}

// sessionCookie is the web page's session. Its value is
// base64url(keyID | expiry) "." base64url(HMAC-SHA256): stateless, signed,
// short-lived, HttpOnly and SameSite=Strict; the key itself never leaves
// the login request, and revoking the key ends its sessions at once
// because every request re-checks the key row.
const sessionCookie = "driftlock_session"

// csrfHeader must accompany state-changing requests authenticated by the
// cookie. Browsers only let same-origin scripts set custom headers (CORS
// never allows it for cookie requests here), so a forged cross-site form
// or fetch cannot carry it.
const csrfHeader = "X-Driftlock-CSRF"

func (s *Server) signSession(keyID int64, exp time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(keyID))
	binary.BigEndian.PutUint64(b[8:], uint64(exp.Unix()))
	m := hmac.New(sha256.New, s.secret)
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:]) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) verifySession(v string, now time.Time) (int64, bool) {
	payload, sig, ok := strings.Cut(v, ".")
	if !ok {
		return 0, false
	}
	b, err1 := base64.RawURLEncoding.DecodeString(payload)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil || len(b) != 16 {
		return 0, false
	}
	m := hmac.New(sha256.New, s.secret)
	m.Write(b)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return 0, false
	}
	if int64(binary.BigEndian.Uint64(b[8:])) < now.Unix() {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b[:8])), true
}

// keyCache remembers verified keys briefly so that each request does not
// cost a database round trip. Failures are never cached (an attacker could
// fill the cache with random keys), and a revocation through this server
// empties it.
type keyCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]cachedKey
	touched map[int64]time.Time
}

type cachedKey struct {
	key *store.APIKey
	exp time.Time
}

func (c *keyCache) get(k string, now time.Time) *store.APIKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || now.After(e.exp) {
		return nil
	}
	return e.key
}

func (c *keyCache) put(k string, key *store.APIKey, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) > 10000 {
		c.entries = map[string]cachedKey{}
	}
	c.entries[k] = cachedKey{key: key, exp: now.Add(c.ttl)}
}

func (c *keyCache) purge() {
	c.mu.Lock()
	c.entries = map[string]cachedKey{}
	c.mu.Unlock()
}

// shouldTouch limits last_used writes to one a minute per key.
func (c *keyCache) shouldTouch(id int64, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.touched[id]; ok && now.Sub(t) < time.Minute {
		return false
	}
	c.touched[id] = now
	return true
}

// errAuth carries a 401/403 answer out of authenticate.
type errAuth struct {
	status int
	detail string
}

func (e *errAuth) Error() string { return e.detail }

// authenticate resolves the caller from the Authorization header or, when
// absent, the session cookie.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	now := time.Now()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return nil, &errAuth{http.StatusUnauthorized, "Authorization header must be 'Bearer <API key>'"}
		}
		tok = strings.TrimSpace(tok)
		ck := "h:" + store.HashKey(tok)
		k := s.keys.get(ck, now)
		if k == nil {
			var err error
			k, err = s.st.LookupKey(r.Context(), tok)
			if err != nil {
				return nil, s.keyError(err)
			}
			s.keys.put(ck, k, now)
		}
		return s.touch(&principal{KeyID: k.ID, Name: k.Name, Role: k.Role}, now), nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil, &errAuth{http.StatusUnauthorized, "missing API key: send 'Authorization: Bearer <API key>' or log in at POST /v1/session"}
	}
	id, ok := s.verifySession(c.Value, now)
	if !ok {
		return nil, &errAuth{http.StatusUnauthorized, "session expired or invalid; log in again"}
	}
	ck := "i:" + itoa(id)
	k := s.keys.get(ck, now)
	if k == nil {
		k, err = s.st.KeyByID(r.Context(), id)
		if err != nil {
			return nil, s.keyError(err)
		}
		s.keys.put(ck, k, now)
	}
	return s.touch(&principal{KeyID: k.ID, Name: k.Name, Role: k.Role, Session: true}, now), nil
}

func (s *Server) keyError(err error) error {
	switch {
	case errors.Is(err, store.ErrKeyRevoked):
		return &errAuth{http.StatusUnauthorized, "API key is revoked"}
	case errors.Is(err, store.ErrKeyNotFound), errors.Is(err, store.ErrKeyMalformed):
		return &errAuth{http.StatusUnauthorized, "unknown API key"}
	}
	return err
}

func (s *Server) touch(p *principal, now time.Time) *principal {
	if s.keys.shouldTouch(p.KeyID, now) {
		go func(id int64) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := s.st.TouchKey(ctx, id); err != nil {
				s.log.Warn("record key use", "key_id", id, "err", err)
			}
		}(p.KeyID)
	}
	return p
}

// limiters holds one token bucket per key.
type limiters struct {
	mu    sync.Mutex
	r     rate.Limit
	burst int
	m     map[int64]*rate.Limiter
}

func (l *limiters) get(id int64) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[id]
	if !ok {
		lim = rate.NewLimiter(l.r, l.burst)
		l.m[id] = lim
	}
	return lim
}

// allow takes a token or reports how many whole seconds to wait.
func (l *limiters) allow(id int64, now time.Time) (bool, int) {
	lim := l.get(id)
	if lim.AllowN(now, 1) {
		return true, 0
	}
	// Time until one token is back: (1 - tokens) / rate.
	wait := (1 - lim.TokensAt(now)) / float64(l.r)
	return false, max(1, int(math.Ceil(wait)))
}

// protect wraps a handler with authentication, the role check, the CSRF
// check for cookie sessions and the per-key rate limit.
func (s *Server) protect(minRole string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			var ea *errAuth
			if errors.As(err, &ea) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="driftlock"`)
				writeProblem(w, r, problem{Type: typeUnauthorized, Status: ea.status, Detail: ea.detail})
				return
			}
			s.internalError(w, r, err)
			return
		}
		if holder, _ := r.Context().Value(ctxPrincipal).(*principalHolder); holder != nil {
			holder.p = p
		}
		if store.RoleRank(p.Role) < store.RoleRank(minRole) {
			writeProblem(w, r, problem{Type: typeForbidden, Status: http.StatusForbidden,
				Detail: "this endpoint needs the " + minRole + " role; key " + p.Name + " has " + p.Role})
			return
		}
		if p.Session && r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get(csrfHeader) != "1" {
			writeProblem(w, r, problem{Type: typeForbidden, Status: http.StatusForbidden,
				Detail: "cookie-authenticated changes need the " + csrfHeader + ": 1 header"})
			return
		}
		if ok, wait := s.limit.allow(p.KeyID, time.Now()); !ok {
			s.metrics.rateLimited.Inc()
			writeRateLimited(w, r, wait)
			return
		}
		h(w, r)
	}
}
