package api

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/driftlock/driftlock/internal/store"
)

type listResponse struct {
	Items      []store.StoredAnomaly `json:"items"`
	NextCursor *string               `json:"next_cursor"`
	Limit      int                   `json:"limit"`
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q, f, err := filteredQuery(r.URL.RawQuery, "limit", "cursor")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := q.limit()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after, err := decodeCursor(q.v.Get("cursor"), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.respond(w, r, func(ctx context.Context) (any, error) {
		items, more, err := s.st.ListAnomalies(ctx, f, after, limit)
		if err != nil {
			return nil, err
		}
		resp := listResponse{Items: items, Limit: limit}
		if more {
			last := items[len(items)-1]
			c := encodeCursor(store.Keyset{ObservedAt: last.ObservedAt, ID: last.ID}, f)
			resp.NextCursor = &c
		}
		return resp, nil
	})
}

// respond runs one store query under QueryTimeout and answers 200 with its
// result as JSON, or the error as a problem.
func (s *Server) respond(w http.ResponseWriter, r *http.Request, query func(ctx context.Context) (any, error)) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	v, err := query(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

type getResponse struct {
	*store.StoredAnomaly
	History []store.AuditEntry `json:"history"`
	// TraceURL and ValueExplanation are as on incident members.
	TraceURL         string `json:"trace_url,omitempty"`
	ValueExplanation string `json:"value_explanation,omitempty"`
}

func writeNotFound(w http.ResponseWriter, r *http.Request, id int64) {
	writeProblem(w, r, problem{Type: typeNotFound, Status: http.StatusNotFound, Detail: "no anomaly with id " + itoa(id)})
}

func etag(version int) string { return `"` + strconv.Itoa(version) + `"` }

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	a, hist, err := s.st.GetAnomaly(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		writeNotFound(w, r, id)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(a.Version))
	writeJSON(w, http.StatusOK, getResponse{StoredAnomaly: a, History: hist, TraceURL: s.traceURL(a.TraceID),
		ValueExplanation: explainAttributes(a.Attributes)})
}

type patchBody struct {
	Status *string `json:"status"`
	Note   *string `json:"note"`
}

const maxNote = 4000

func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	version, body, ok := s.readTriage(w, r, "/v1/anomalies/"+itoa(id))
	if !ok {
		return
	}
	im := r.Header.Get("If-Match")
	p := principalFrom(r.Context())
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	a, err := s.st.UpdateAnomaly(ctx, id, version, store.AnomalyUpdate{Status: body.Status, Note: body.Note}, p.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeNotFound(w, r, id)
		return
	case errors.Is(err, store.ErrVersionMismatch):
		var current *int
		if cur, _, gerr := s.st.GetAnomaly(ctx, id); gerr == nil {
			current = &cur.Version
		}
		writeVersionConflict(w, r, "the anomaly changed since you read it (If-Match "+im+"); reload it and apply your change again", current)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(a.Version))
	writeJSON(w, http.StatusOK, a)
}

// writeVersionConflict answers 412 to a triage whose If-Match is stale,
// with the current version (when it could be read) as ETag and in the
// problem, so the client can re-read and retry.
func writeVersionConflict(w http.ResponseWriter, r *http.Request, detail string, current *int) {
	pr := problem{Type: typeConflict, Status: http.StatusPreconditionFailed, Detail: detail, CurrentVersion: current}
	if current != nil {
		w.Header().Set("ETag", etag(*current))
	}
	writeProblem(w, r, pr)
}

// readTriage reads a triage request (PATCH of an anomaly or an incident):
// a JSON body with status and/or note, and If-Match with the version the
// client read from GET getPath. It answers the problem itself and returns
// ok false when the request is not acceptable.
func (s *Server) readTriage(w http.ResponseWriter, r *http.Request, getPath string) (version int, body patchBody, ok bool) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil ||
		(mt != "application/json" && mt != "application/merge-patch+json") {
		writeProblem(w, r, problem{Type: typeUnsupported, Status: http.StatusUnsupportedMediaType,
			Detail: "send the body as application/json"})
		return 0, body, false
	}
	im := r.Header.Get("If-Match")
	if im == "" {
		writeProblem(w, r, problem{Type: typePrecondReq, Status: http.StatusPreconditionRequired,
			Detail: "send If-Match with the ETag from GET " + getPath + " so concurrent edits are not lost"})
		return 0, body, false
	}
	version, err := strconv.Atoi(strings.Trim(strings.TrimSpace(im), `"`))
	if err != nil || version < 1 || !strings.HasPrefix(strings.TrimSpace(im), `"`) {
		s.fail(w, r, badParam("If-Match", `must be an ETag such as "3" as returned by GET`))
		return 0, body, false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, r, err)
			return 0, body, false
		}
		reason := "body must be a JSON object with status and/or note"
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			reason = strings.TrimPrefix(err.Error(), "json: ")
		}
		s.fail(w, r, badParam("body", reason))
		return 0, body, false
	}
	if dec.More() {
		s.fail(w, r, badParam("body", "trailing data after the JSON object"))
		return 0, body, false
	}
	if body.Status == nil && body.Note == nil {
		s.fail(w, r, badParam("body", "nothing to change: give status and/or note"))
		return 0, body, false
	}
	if body.Status != nil && !store.ValidStatus(*body.Status) {
		s.fail(w, r, badParam("status", "must be one of open, acknowledged, resolved, false_positive"))
		return 0, body, false
	}
	if body.Note != nil && (len(*body.Note) > maxNote || !utf8.ValidString(*body.Note) || strings.ContainsRune(*body.Note, 0)) {
		s.fail(w, r, badParam("note", "must be UTF-8 text without NUL bytes, at most 4000 bytes"))
		return 0, body, false
	}
	return version, body, true
}

// exportFlushRows is how many rows are buffered before a flush to the
// client: the buffer, not the result, bounds memory.
const exportFlushRows = 500

var csvHeader = []string{"id", "detected_at", "observed_at", "signal", "stream", "service", "score", "p_value",
	"ncd", "compression_ratio", "entropy", "severity", "status", "note", "summary", "explanation", "trace_id", "span_id", "version"}

func (s *Server) handleExport(w http.ResponseWriter, r *http.Request) {
	q, f, err := filteredQuery(r.URL.RawQuery, "format")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	format := q.v.Get("format")
	if format == "" {
		format = "ndjson"
	}
	if format != "csv" && format != "ndjson" {
		s.fail(w, r, badParam("format", "must be csv or ndjson"))
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	name := "driftlock-anomalies-" + time.Now().UTC().Format("20060102T150405Z") + "." + format
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	bw := bufio.NewWriterSize(w, 64<<10)
	var cw *csv.Writer
	if format == "csv" {
		cw = csv.NewWriter(bw)
		_ = cw.Write(csvHeader)
	}
	enc := json.NewEncoder(bw)
	n := 0
	// No deadline while the query looks for rows (the request context
	// still ends it if the client leaves); each flush then grants the next
	// WriteTimeout, so a stalled client is dropped but a long export is not.
	_ = rc.SetWriteDeadline(time.Time{})
	lastFlush := time.Now()
	flush := func() error {
		lastFlush = time.Now()
		if cw != nil {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
		}
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	err = s.st.ExportAnomalies(r.Context(), f, func(a *store.StoredAnomaly) error {
		if cw != nil {
			if err := cw.Write(csvRow(a)); err != nil {
				return err
			}
		} else if err := enc.Encode(a); err != nil {
			return err
		}
		n++
		if n%exportFlushRows == 0 || time.Since(lastFlush) > time.Second {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		if r.Context().Err() == nil {
			s.log.Error("export failed mid-stream", "request_id", requestIDFrom(r.Context()), "rows", n, "err", err)
		}
		// Headers are gone: abort the connection so the client sees a
		// truncated transfer rather than a short file that looks complete.
		panic(http.ErrAbortHandler)
	}
}

func csvRow(a *store.StoredAnomaly) []string {
	fl := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	return []string{
		itoa(a.ID), a.DetectedAt.UTC().Format(time.RFC3339Nano), a.ObservedAt.UTC().Format(time.RFC3339Nano),
		a.Signal, csvSafe(a.Stream), csvSafe(a.Service), fl(&a.Score), fl(&a.PValue), fl(a.NCD), fl(a.CompressionRatio),
		fl(a.Entropy), csvSafe(a.Severity), a.Status, csvSafe(a.Note), csvSafe(a.Summary), csvSafe(a.Explanation),
		csvSafe(a.TraceID), csvSafe(a.SpanID), strconv.Itoa(a.Version),
	}
}

// csvSafe defuses spreadsheet formulas in text cells (CSV injection): a
// cell starting with = + - @ or a control character gets a leading quote.
func csvSafe(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
