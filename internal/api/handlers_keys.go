package api

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"time"

	"github.com/driftlock/driftlock/internal/store"
)

// loginLimiterID is the rate-limit bucket shared by all login attempts
// (they have no key yet to be limited by).
const loginLimiterID = -1

// decodeJSON reads a small JSON object body strictly.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeProblem(w, r, problem{Type: typeUnsupported, Status: http.StatusUnsupportedMediaType, Detail: "send the body as application/json"})
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeProblem(w, r, problem{Type: typeTooLarge, Status: http.StatusRequestEntityTooLarge, Detail: "request body too large"})
			return false
		}
		writeParamProblem(w, r, &paramError{Name: "body", Reason: "malformed JSON object: " + err.Error()})
		return false
	}
	if dec.More() {
		writeParamProblem(w, r, &paramError{Name: "body", Reason: "trailing data after the JSON object"})
		return false
	}
	return true
}

type loginBody struct {
	Key string `json:"key"`
}

type sessionInfo struct {
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// handleLogin trades an API key for a session cookie (for the web page:
// EventSource cannot send an Authorization header).
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	if ok, wait := s.limit.allow(loginLimiterID, time.Now()); !ok {
		writeRateLimited(w, r, wait)
		return
	}
	var b loginBody
	if !decodeJSON(w, r, &b) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	k, err := s.st.LookupKey(ctx, b.Key)
	if err != nil {
		var ea *errAuth
		if errors.As(s.keyError(err), &ea) {
			writeProblem(w, r, problem{Type: typeUnauthorized, Status: http.StatusUnauthorized, Detail: ea.detail})
			return
		}
		s.fail(w, r, err)
		return
	}
	if holder, _ := r.Context().Value(ctxPrincipal).(*principalHolder); holder != nil {
		holder.p = &principal{KeyID: k.ID, Name: k.Name, Role: k.Role}
	}
	exp := time.Now().Add(s.cfg.SessionTTL).Truncate(time.Second)
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: s.signSession(k.ID, exp), Path: "/", Expires: exp,
		MaxAge: int(s.cfg.SessionTTL.Seconds()), HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	})
	writeJSON(w, http.StatusOK, sessionInfo{Name: k.Name, Role: k.Role, ExpiresAt: &exp})
}

func (s *Server) handleWhoAmI(w http.ResponseWriter, r *http.Request) {
	p := principalFrom(r.Context())
	writeJSON(w, http.StatusOK, sessionInfo{Name: p.Name, Role: p.Role})
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleListKeys(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	keys, err := s.st.ListKeys(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": keys})
}

type createKeyBody struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type createdKey struct {
	Key string `json:"key"`
	*store.APIKey
}

func (s *Server) handleCreateKey(w http.ResponseWriter, r *http.Request) {
	var b createKeyBody
	if !decodeJSON(w, r, &b) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	key, k, err := s.st.CreateKey(ctx, b.Name, b.Role)
	switch {
	case errors.Is(err, store.ErrBadKeyName):
		s.fail(w, r, badParam("name", "1-64 characters of letters, digits, '.', '_', '-' or '@'"))
		return
	case errors.Is(err, store.ErrBadRole):
		s.fail(w, r, badParam("role", "must be viewer, analyst or admin"))
		return
	case errors.Is(err, store.ErrKeyExists):
		writeProblem(w, r, problem{Type: typeConflict, Status: http.StatusConflict, Detail: "a key named " + b.Name + " already exists"})
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	if err := s.st.AuditKeyCreate(ctx, principalFrom(r.Context()).Name, k); err != nil {
		s.log.Error("audit key creation", "err", err)
	}
	writeJSON(w, http.StatusCreated, createdKey{Key: key, APIKey: k})
}

func (s *Server) handleRevokeKey(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	k, err := s.st.RevokeKey(ctx, name, principalFrom(r.Context()).Name)
	if errors.Is(err, store.ErrKeyNotFound) {
		writeProblem(w, r, problem{Type: typeNotFound, Status: http.StatusNotFound, Detail: "no key named " + name})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.keys.purge()
	writeJSON(w, http.StatusOK, k)
}
