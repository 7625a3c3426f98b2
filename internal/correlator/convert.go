package correlator

import (
	"encoding/json"
	"fmt"

	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/store"
)

// Severities of incidents (the severity label of their alerts).
const (
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Severity grades an incident: critical when its evidence spans two or
// more signals or three or more services (corroborated, or spreading),
// warning otherwise. A rise is an escalation: notifications go out.
func Severity(in *incident.Incident) string {
	if len(in.Signals) >= 2 || len(in.Services) >= 3 {
		return SeverityCritical
	}
	return SeverityWarning
}

// detail is incidents.detail.
type detail struct {
	// Surprise is the incident's total evidence against the background, in bits.
	Surprise float64 `json:"surprise"`
	// Change is the last change in words.
	Change string `json:"change,omitempty"`
}

// toStore converts the correlator's incident to its row (ID, revision,
// triage and note are left to the caller and the database).
func toStore(in *incident.Incident, change string) (*store.Incident, error) {
	ranked := make([]store.RankedService, 0, len(in.Services))
	for _, s := range in.Services {
		r := store.RankedService{Service: s.Service, Score: s.Score, Surprise: s.Surprise, Onset: s.Onset.UTC(),
			Signals: nonNil(s.Signals), Anomalies: s.Anomalies, Why: nonNil(s.Why),
			Evidence: make([]store.ServiceEvidence, 0, len(s.Evidence))}
		for _, e := range s.Evidence {
			r.Evidence = append(r.Evidence, store.ServiceEvidence{Signal: e.Signal, Reason: e.Reason, Kind: e.Kind,
				PeerService: e.PeerService, Count: e.Count, First: e.First.UTC(), Last: e.Last.UTC(),
				Example: e.Example, MinPValue: e.MinPValue})
		}
		ranked = append(ranked, r)
	}
	services, err := json.Marshal(ranked)
	if err != nil {
		return nil, fmt.Errorf("correlator: encode ranked services of %s: %w", in.ID, err)
	}
	det, err := json.Marshal(detail{Surprise: in.Surprise, Change: change})
	if err != nil {
		return nil, fmt.Errorf("correlator: encode detail of %s: %w", in.ID, err)
	}
	out := &store.Incident{Key: in.ID, State: store.IncidentOpen, Title: in.Title, Leader: in.Leader(),
		Services: services, Signals: nonNil(in.Signals), Severity: Severity(in), Score: in.Surprise,
		Size: in.Members, OpenedAt: in.Opened.UTC(), LastEvidenceAt: in.LastEvidence.UTC(), Detail: det}
	if !in.Open() {
		c := in.Closed.UTC()
		out.State, out.ClosedAt = store.IncidentClosed, &c
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
