package incident

import "time"

// Incident is a group of related anomalies that, together, are unlikely
// under the background rates of their streams: one problem, with the
// services that probably caused it, ranked.
//
// All times are observed times (the records' own clocks).
type Incident struct {
	// ID is deterministic: the opening time (UTC, seconds) and the service
	// whose evidence opened it, e.g. "20230129T084315Z-ts-contacts-service"
	// (a "-2", "-3" suffix only if that pair repeats). The same anomalies in
	// the same order give the same ids.
	ID string
	// Opened is the time of the first evidence, LastEvidence the time of
	// the latest; Closed is zero while the incident is open.
	Opened       time.Time
	LastEvidence time.Time
	Closed       time.Time
	// Title is one line a person understands: the leading service and
	// what was seen there.
	Title string
	// Services are the probable root-cause services, most probable first,
	// each with the evidence behind its rank.
	Services []RankedService
	// Signals are the signals with evidence, in logs, traces, metrics order.
	Signals []string
	// Members is the number of anomalies that belong to the incident.
	Members int
	// Surprise is the incident's total evidence against the background,
	// in bits (-log2 of the bucket p-values, summed).
	Surprise float64
}

// Open reports whether the incident has not closed.
func (i *Incident) Open() bool { return i.Closed.IsZero() }

// Leader is the most probable root-cause service ("" when none).
func (i *Incident) Leader() string {
	if len(i.Services) == 0 {
		return ""
	}
	return i.Services[0].Service
}

// Rank is the 1-based rank of service among the incident's ranked services,
// 0 when it is not among them.
func (i *Incident) Rank(service string) int {
	for k, s := range i.Services {
		if s.Service == service {
			return k + 1
		}
	}
	return 0
}

// RankedService is one candidate root cause.
type RankedService struct {
	Service string
	// Score orders the candidates (higher first); it is the service's own
	// surprise plus what the call graph and onset order credit it with.
	Score float64
	// Surprise is the service's own evidence, in bits.
	Surprise float64
	// Onset is the time of the service's first significant evidence.
	Onset time.Time
	// Signals are the signals with evidence about this service.
	Signals []string
	// Anomalies is the number of member anomalies about this service.
	Anomalies int
	// Why lists, in words, what raised (or lowered) the rank: "first to
	// show trouble", "callee of 3 troubled services", "evidence in 2 signals".
	Why []string
	// Evidence is what was seen, grouped by signal, reason and kind,
	// largest first (at most MaxEvidence groups per service).
	Evidence []Evidence
}

// Evidence is a group of member anomalies of one service with the same
// signal, reason and kind.
type Evidence struct {
	Signal string
	Reason string
	Kind   string
	// PeerService is set on edge-latency evidence: the caller that saw this
	// service slow (the evidence is about the callee, this service).
	PeerService string
	Count       int
	First, Last time.Time
	// Example is the summary of the group's first anomaly (its first
	// WARN-or-worse one, when there is one); MinPValue the smallest
	// record-level p-value in the group.
	Example   string
	MinPValue float64
	// ExampleSeverity is the example's severity ("" when none).
	ExampleSeverity string
}

// EventType says what happened to an incident.
type EventType uint8

// Event types.
const (
	Opened EventType = iota + 1
	Updated
	Closed
)

func (t EventType) String() string {
	switch t {
	case Opened:
		return "opened"
	case Updated:
		return "updated"
	case Closed:
		return "closed"
	}
	return "unknown"
}

// Event reports a change of one incident. Incident is a copy, safe to keep.
type Event struct {
	Type     EventType
	Incident Incident
	// At is the observed time of the change.
	At time.Time
	// Material is set on Opened and Closed, and on an update that a person
	// should hear about: a new leading service, a new service among the
	// ranked ones, or an escalation (one service's evidence in one bucket
	// stronger than any before in the incident). Routine growth (more
	// anomalies of known groups) is not.
	Material bool
	// Change says in words what changed ("opened", "new leader ts-x (was
	// ts-y)", "ts-z joined", "closed after 5m0s without evidence").
	Change string
	// NewMembers are the ids of the anomalies that joined the incident with
	// this event (ids of 0 are left out).
	NewMembers []int64
}
