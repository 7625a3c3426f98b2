package store

import (
	"encoding/json"
	"errors"
	"time"
)

// The incidents table (migration 00002): groups of anomalies that the
// correlator judged to be one condition. This file holds the types shared
// by the writer (incidents_write.go, the correlator) and the readers (the
// API); every time in them is observed time.

// Incident states, the correlator's view (incidents.state).
const (
	IncidentOpen   = "open"
	IncidentClosed = "closed"
)

// Incident triage values, people's view (incidents.triage); the same four
// words as an anomaly's status.
const (
	TriageOpen          = StatusOpen
	TriageAcknowledged  = StatusAcknowledged
	TriageResolved      = StatusResolved
	TriageFalsePositive = StatusFalsePositive
)

// ErrIncidentNotFound is returned for an incident id that does not exist.
var ErrIncidentNotFound = errors.New("store: incident not found")

// Incident is one incidents row.
type Incident struct {
	ID int64 `json:"id"`
	// Key is the correlator's deterministic id (opening time and service,
	// e.g. "20230129T084315Z-ts-basic-service"), unique.
	Key    string `json:"key"`
	State  string `json:"state"`  // IncidentOpen or IncidentClosed
	Triage string `json:"triage"` // one of the Triage* values
	Note   string `json:"note"`
	Title  string `json:"title"`
	// Leader is the first-ranked probable root-cause service; Services is
	// the ranked list with the evidence behind each rank: a JSON array of
	// RankedService written by the correlator (internal/correlator).
	Leader   string          `json:"leader"`
	Services json.RawMessage `json:"services"`
	Signals  []string        `json:"signals"`
	Severity string          `json:"severity"`
	Score    float64         `json:"score"`
	// Size is the number of member anomalies.
	Size           int        `json:"size"`
	OpenedAt       time.Time  `json:"opened_at"`
	LastEvidenceAt time.Time  `json:"last_evidence_at"`
	ClosedAt       *time.Time `json:"closed_at"`
	// Detail is the rest of the correlator's report (JSON object).
	Detail json.RawMessage `json:"detail"`
	// Revision counts material changes (opened, new leader, escalation,
	// closed); notification idempotency keys derive from it.
	Revision  int       `json:"revision"`
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// incidentCols are the columns scanned by scanIncident, over alias i.
const incidentCols = `i.id, i.key, i.state, i.triage, i.note, i.title, i.leader, i.services, i.signals,
 i.severity, i.score, i.size, i.opened_at, i.last_evidence_at, i.closed_at, i.detail,
 i.revision, i.version, i.created_at, i.updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanIncident(row scanner, in *Incident, extra ...any) error {
	var services, detail []byte
	dst := []any{&in.ID, &in.Key, &in.State, &in.Triage, &in.Note, &in.Title, &in.Leader, &services, &in.Signals,
		&in.Severity, &in.Score, &in.Size, &in.OpenedAt, &in.LastEvidenceAt, &in.ClosedAt, &detail,
		&in.Revision, &in.Version, &in.CreatedAt, &in.UpdatedAt}
	if err := row.Scan(append(dst, extra...)...); err != nil {
		return err
	}
	in.Services, in.Detail = services, detail
	if in.Signals == nil {
		in.Signals = []string{}
	}
	return nil
}

// Notification events (notification_outbox.event).
const (
	EventOpened  = "opened"
	EventChanged = "changed"
	EventClosed  = "closed"
)

// OutboxItem is one notification to deliver to one receiver.
type OutboxItem struct {
	ID         int64
	Receiver   string // the receiver's configured name
	IncidentID int64  // 0 once the incident was deleted (a rebuild)
	Event      string // EventOpened, EventChanged or EventClosed
	// IdempotencyKey is sent with every attempt, so a receiver can drop
	// the repeats that at-least-once delivery allows.
	IdempotencyKey string
	Payload        json.RawMessage
	CreatedAt      time.Time
	Attempts       int
}

// RankedService is one element of incidents.services (the JSON array the
// correlator writes and the API serves): a probable root-cause service,
// most probable first.
type RankedService struct {
	Service string `json:"service"`
	// Score orders the services; Surprise is the service's own evidence
	// against its background, in bits.
	Score    float64   `json:"score"`
	Surprise float64   `json:"surprise"`
	Onset    time.Time `json:"onset"`
	Signals  []string  `json:"signals"`
	// Anomalies is the number of member anomalies about this service.
	Anomalies int `json:"anomalies"`
	// Why says in words what raised or lowered the rank.
	Why      []string          `json:"why"`
	Evidence []ServiceEvidence `json:"evidence"`
}

// ServiceEvidence is a group of a service's member anomalies with the same
// signal, reason and kind (template).
type ServiceEvidence struct {
	Signal string `json:"signal"`
	Reason string `json:"reason"`
	Kind   string `json:"kind"`
	// PeerService is the caller that saw this service slow (edge latency).
	PeerService string    `json:"peer_service,omitempty"`
	Count       int       `json:"count"`
	First       time.Time `json:"first"`
	Last        time.Time `json:"last"`
	Example     string    `json:"example"`
	MinPValue   float64   `json:"min_p_value"`
}
