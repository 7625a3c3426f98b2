package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/store"
)

// Incidents: the correlator's groups of anomalies (internal/incident), read
// and triaged here. Every time is observed time.

// incidentRoutes registers the incident endpoints (see routesMux).
func (s *Server) incidentRoutes(handle func(string, http.HandlerFunc)) {
	v, a := store.RoleViewer, store.RoleAnalyst
	handle("GET /v1/incidents", s.protect(v, s.handleListIncidents))
	handle("GET /v1/incidents/stream", s.protect(v, s.handleIncidentStream))
	handle("GET /v1/incidents/{id}", s.protect(v, s.handleGetIncident))
	handle("GET /v1/incidents/{id}/anomalies", s.protect(v, s.handleIncidentAnomalies))
	handle("PATCH /v1/incidents/{id}", s.protect(a, s.handlePatchIncident))
}

// maxIncidentGroups caps the member groups of an incident's detail; the
// members endpoint pages through the rest.
const maxIncidentGroups = 200

type incidentListResponse struct {
	Items      []store.Incident `json:"items"`
	NextCursor *string          `json:"next_cursor"`
	Limit      int              `json:"limit"`
}

// incidentFilter parses the incident list's filters.
func (q *query) incidentFilter() (store.IncidentFilter, error) {
	var f store.IncidentFilter
	var err error
	if f.States, err = q.enumList("status", store.ValidIncidentState, "open, closed"); err != nil {
		return f, err
	}
	if f.Triages, err = q.enumList("triage", store.ValidStatus, "open, acknowledged, resolved, false_positive"); err != nil {
		return f, err
	}
	if f.Service, err = q.text("service", maxTextParam); err != nil {
		return f, err
	}
	f.Since, f.Until, err = q.span()
	return f, err
}

func (s *Server) handleListIncidents(w http.ResponseWriter, r *http.Request) {
	q, err := newQuery(r.URL.RawQuery, []string{"status", "triage", "service", "since", "until", "limit", "cursor"})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	f, err := q.incidentFilter()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := q.limit()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, id, ok, err := decodeKey(q.v.Get("cursor"), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var after *store.IncidentKeyset
	if ok {
		after = &store.IncidentKeyset{OpenedAt: t, ID: id}
	}
	s.respond(w, r, func(ctx context.Context) (any, error) {
		items, more, err := s.st.ListIncidents(ctx, f, after, limit)
		if err != nil {
			return nil, err
		}
		resp := incidentListResponse{Items: items, Limit: limit}
		if more {
			last := items[len(items)-1]
			c := encodeKey(last.OpenedAt, last.ID, f)
			resp.NextCursor = &c
		}
		return resp, nil
	})
}

// incidentResponse is GET /v1/incidents/{id}: the row, then what its
// members show.
type incidentResponse struct {
	*store.Incident
	Signals     []store.SignalEvidence `json:"evidence_by_signal"`
	Bucket      string                 `json:"timeline_bucket"`
	Timeline    []store.Series         `json:"timeline"`
	Groups      []memberGroupView      `json:"groups"`
	GroupsTotal int                    `json:"groups_total"`
	History     []store.AuditEntry     `json:"history"`
}

type memberGroupView struct {
	store.MemberGroup
	Example memberView `json:"example"`
}

// memberView is a member anomaly with its trace link and, on numeric
// anomalies, a sentence explaining the value.
type memberView struct {
	store.IncidentMember
	TraceURL         string `json:"trace_url,omitempty"`
	ValueExplanation string `json:"value_explanation,omitempty"`
}

func (s *Server) view(m store.IncidentMember) memberView {
	return memberView{IncidentMember: m, TraceURL: s.traceURL(m.TraceID),
		ValueExplanation: explainValue(m.Observed, m.ExpectedLow, m.ExpectedHigh)}
}

func writeIncidentNotFound(w http.ResponseWriter, r *http.Request, id int64) {
	writeProblem(w, r, problem{Type: typeNotFound, Status: http.StatusNotFound, Detail: "no incident with id " + itoa(id)})
}

func (s *Server) handleGetIncident(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	in, err := s.st.GetIncident(ctx, id)
	if errors.Is(err, store.ErrIncidentNotFound) {
		writeIncidentNotFound(w, r, id)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.st.IncidentDetailOf(ctx, in, maxIncidentGroups)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := incidentResponse{Incident: in, Signals: d.Signals, Bucket: d.Bucket, Timeline: d.Timeline,
		Groups: make([]memberGroupView, len(d.Groups)), GroupsTotal: d.GroupsTotal, History: d.History}
	for i, g := range d.Groups {
		resp.Groups[i] = memberGroupView{MemberGroup: g, Example: s.view(g.Example)}
	}
	w.Header().Set("ETag", etag(in.Version))
	writeJSON(w, http.StatusOK, resp)
}

type memberListResponse struct {
	Items      []memberView `json:"items"`
	NextCursor *string      `json:"next_cursor"`
	Limit      int          `json:"limit"`
}

func (s *Server) handleIncidentAnomalies(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q, err := newQuery(r.URL.RawQuery, []string{"service", "signal", "kind", "summary", "limit", "cursor"})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var f store.MemberFilter
	for _, p := range []struct {
		name string
		dst  *string
		max  int
	}{{"service", &f.Service, maxTextParam}, {"kind", &f.Kind, maxTextParam}, {"summary", &f.Summary, 4096}} {
		if *p.dst, err = q.text(p.name, p.max); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if f.Signal = q.v.Get("signal"); f.Signal != "" && !store.ValidSignal(f.Signal) {
		s.fail(w, r, badParam("signal", "must be one of logs, traces, metrics"))
		return
	}
	limit, err := q.limit()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, after, ok, err := decodeKey(q.v.Get("cursor"), []any{id, f})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var key *store.ObservedKey
	if ok {
		key = &store.ObservedKey{ObservedAt: t, ID: after}
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	if _, err := s.st.GetIncident(ctx, id); errors.Is(err, store.ErrIncidentNotFound) {
		writeIncidentNotFound(w, r, id)
		return
	} else if err != nil {
		s.fail(w, r, err)
		return
	}
	items, more, err := s.st.IncidentMembers(ctx, id, f, key, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := memberListResponse{Items: make([]memberView, len(items)), Limit: limit}
	for i, m := range items {
		resp.Items[i] = s.view(m)
	}
	if more {
		last := items[len(items)-1]
		c := encodeKey(last.ObservedAt, last.ID, []any{id, f})
		resp.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, resp)
}

// incidentPatchResponse is the PATCH answer: the incident and how many of
// its member anomalies took the new status.
type incidentPatchResponse struct {
	*store.Incident
	MembersChanged int64 `json:"members_changed"`
}

func (s *Server) handlePatchIncident(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	version, body, ok := s.readTriage(w, r, "/v1/incidents/"+itoa(id))
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
	defer cancel()
	in, n, err := s.st.TriageIncident(ctx, id, version, store.IncidentTriage{Triage: body.Status, Note: body.Note}, principalFrom(r.Context()).Name)
	switch {
	case errors.Is(err, store.ErrIncidentNotFound):
		writeIncidentNotFound(w, r, id)
		return
	case errors.Is(err, store.ErrVersionMismatch):
		var current *int
		if cur, gerr := s.st.GetIncident(ctx, id); gerr == nil {
			current = &cur.Version
		}
		writeVersionConflict(w, r, "the incident changed since you read it (new evidence or another person's triage); reload it and apply your change again", current)
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.incidents.poke()
	w.Header().Set("ETag", etag(in.Version))
	writeJSON(w, http.StatusOK, incidentPatchResponse{Incident: in, MembersChanged: n})
}

// traceURL links a trace id through the configured template; "" when no
// template is set or there is no trace id.
func (s *Server) traceURL(traceID string) string {
	if s.cfg.TraceURL == "" || traceID == "" {
		return ""
	}
	return strings.ReplaceAll(s.cfg.TraceURL, traceIDPlaceholder, url.PathEscape(traceID))
}

const traceIDPlaceholder = "{trace_id}"

func validTraceURL(t string) bool {
	if !strings.Contains(t, traceIDPlaceholder) {
		return false
	}
	u, err := url.Parse(strings.ReplaceAll(t, traceIDPlaceholder, "0af7651916cd43dd8448eb211c80319c"))
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// explainValue says in words how a numeric anomaly's value compares with
// the range the detector expected; "" when the detector gave no value.
func explainValue(observed, low, high *float64) string {
	if observed == nil {
		return ""
	}
	v := *observed
	switch {
	case low != nil && high != nil && v > *high:
		return fmt.Sprintf("Observed %s, above the expected range %s to %s%s.", num(v), num(*low), num(*high), ratio(v, *high))
	case low != nil && high != nil && v < *low:
		return fmt.Sprintf("Observed %s, below the expected range %s to %s%s.", num(v), num(*low), num(*high), ratio(*low, v))
	case low != nil && high != nil:
		return fmt.Sprintf("Observed %s, inside the expected range %s to %s: flagged for how often such values came together, not for this one value.", num(v), num(*low), num(*high))
	case high != nil && v > *high:
		return fmt.Sprintf("Observed %s, above the expected maximum %s%s.", num(v), num(*high), ratio(v, *high))
	case low != nil && v < *low:
		return fmt.Sprintf("Observed %s, below the expected minimum %s%s.", num(v), num(*low), ratio(*low, v))
	}
	return fmt.Sprintf("Observed %s.", num(v))
}

// explainAttributes is explainValue over a stored attributes document.
func explainAttributes(doc json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(doc, &m) != nil {
		return ""
	}
	f := func(k string) *float64 {
		if v, ok := m[k].(float64); ok {
			return &v
		}
		return nil
	}
	return explainValue(f(attrs.Observed), f(attrs.ExpectedLow), f(attrs.ExpectedHigh))
}

// ratio is " (x8.2)" when a/b is a meaningful factor, else "".
func ratio(a, b float64) string {
	if b <= 0 || a <= 0 || math.IsInf(a/b, 0) || a/b < 1.5 {
		return ""
	}
	return " (x" + strconv.FormatFloat(a/b, 'g', 3, 64) + ")"
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// incidentEventName is the SSE event type of incident changes.
const incidentEventName = "incident"

// writeIncidentEvent writes one incident change; its id is the change's
// position (updated_at in microseconds, then the incident id), which a
// client sends back as Last-Event-ID to resume.
func writeIncidentEvent(write func([]byte) error, in *store.Incident, data []byte) error {
	b := make([]byte, 0, len(data)+64)
	b = fmt.Appendf(b, "id: %d-%d\nevent: %s\ndata: ", in.UpdatedAt.UnixMicro(), in.ID, incidentEventName)
	b = append(b, data...)
	b = append(b, '\n', '\n')
	return write(b)
}

// parseChangeKey parses a Last-Event-ID of the incident stream.
func parseChangeKey(s string) (*store.ChangeKey, error) {
	if s == "" {
		return nil, nil
	}
	us, id, ok := strings.Cut(s, "-")
	t, err1 := strconv.ParseInt(us, 10, 64)
	n, err2 := strconv.ParseInt(id, 10, 64)
	if !ok || err1 != nil || err2 != nil || t < 0 || n < 0 || t > 253402300799999999 {
		return nil, badParam("Last-Event-ID", "must be an event id of this stream, such as 1764460800000000-42")
	}
	return &store.ChangeKey{UpdatedAt: time.UnixMicro(t).UTC(), ID: n}, nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
