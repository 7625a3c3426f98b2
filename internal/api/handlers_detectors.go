package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/driftlock/driftlock/internal/store"
)

type detectorList struct {
	Items []store.Detector `json:"items"`
	Limit int              `json:"limit"`
}

// handleDetectors serves GET /v1/detectors: the detector settings that
// produced stored anomalies, most recently seen first.
func (s *Server) handleDetectors(w http.ResponseWriter, r *http.Request) {
	limit, err := limitOnly(r.URL.RawQuery)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.respond(w, r, func(ctx context.Context) (any, error) {
		items, err := s.st.ListDetectors(ctx, limit)
		if items == nil {
			items = []store.Detector{}
		}
		return detectorList{Items: items, Limit: limit}, err
	})
}

// handleDetector serves GET /v1/detectors/{hash}.
func (s *Server) handleDetector(w http.ResponseWriter, r *http.Request) {
	if _, err := newQuery(r.URL.RawQuery); err != nil {
		s.fail(w, r, err)
		return
	}
	hash := r.PathValue("hash")
	if len(hash) > store.MaxIndexedBytes || !utf8.ValidString(hash) || strings.ContainsRune(hash, 0) {
		s.fail(w, r, badParam("hash", "must be a detector config hash as listed by GET /v1/detectors"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	d, err := s.st.GetDetector(ctx, hash)
	if errors.Is(err, store.ErrDetectorNotFound) {
		writeProblem(w, r, problem{Type: typeNotFound, Status: http.StatusNotFound, Detail: "no detector with config hash " + hash})
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}
