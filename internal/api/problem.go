package api

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// problem is an RFC 9457 problem detail. InvalidParams follows the RFC's
// own example extension: which request parameter was wrong and why.
type problem struct {
	Type          string         `json:"type"`
	Title         string         `json:"title"`
	Status        int            `json:"status"`
	Detail        string         `json:"detail,omitempty"`
	Instance      string         `json:"instance,omitempty"`
	RequestID     string         `json:"request_id,omitempty"`
	InvalidParams []invalidParam `json:"invalid_params,omitempty"`
	// CurrentVersion is set on 412 so a client can re-read and retry.
	CurrentVersion *int `json:"current_version,omitempty"`
}

type invalidParam struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Problem type URIs (documented in docs/api.md).
const (
	typeInvalidParam  = "urn:driftlock:problem:invalid-parameter"
	typeUnauthorized  = "urn:driftlock:problem:unauthorized"
	typeForbidden     = "urn:driftlock:problem:forbidden"
	typeNotFound      = "urn:driftlock:problem:not-found"
	typeConflict      = "urn:driftlock:problem:version-conflict"
	typePrecondReq    = "urn:driftlock:problem:precondition-required"
	typeRateLimited   = "urn:driftlock:problem:rate-limited"
	typeTooLarge      = "urn:driftlock:problem:body-too-large"
	typeUnavailable   = "urn:driftlock:problem:unavailable"
	typeInternal      = "urn:driftlock:problem:internal"
	typeBadMethod     = "urn:driftlock:problem:method-not-allowed"
	typeUnsupported   = "urn:driftlock:problem:unsupported-media-type"
	typeUnprocessable = "urn:driftlock:problem:unprocessable"
)

// paramError is a bad request parameter; handlers return it and
// writeError turns it into a 400 naming the parameter.
type paramError struct {
	Name   string
	Reason string
}

func (e *paramError) Error() string { return "invalid parameter " + e.Name + ": " + e.Reason }

func badParam(name, reason string) error { return &paramError{Name: name, Reason: reason} }

func writeProblem(w http.ResponseWriter, r *http.Request, p problem) {
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Type == "" {
		p.Type = "about:blank"
	}
	p.Instance = r.URL.Path
	p.RequestID = requestIDFrom(r.Context())
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeParamProblem(w http.ResponseWriter, r *http.Request, pe *paramError) {
	writeProblem(w, r, problem{Type: typeInvalidParam, Title: "Invalid request parameter", Status: http.StatusBadRequest,
		Detail: pe.Error(), InvalidParams: []invalidParam{{Name: pe.Name, Reason: pe.Reason}}})
}

func writeRateLimited(w http.ResponseWriter, r *http.Request, retryAfterSec int) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfterSec))
	writeProblem(w, r, problem{Type: typeRateLimited, Title: "Too many requests", Status: http.StatusTooManyRequests,
		Detail: "this API key exceeded its rate limit; retry after " + strconv.Itoa(retryAfterSec) + "s"})
}
