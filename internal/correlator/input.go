package correlator

import (
	"encoding/json"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/store"
)

// Input turns a stored anomaly into the correlator's input: the columns,
// plus the detector's verdict attributes (reason, kind, episode, peer
// service) from its stored attributes.
func Input(m *store.MemberAnomaly) incident.Anomaly {
	a := incident.Anomaly{
		ID: m.ID, Signal: m.Signal, Stream: m.Stream, Service: m.Service, ObservedAt: m.ObservedAt.UTC(),
		Score: m.Score, PValue: m.PValue, TraceID: m.TraceID, Severity: m.Severity,
		Summary: m.Summary, Explanation: m.Explanation,
	}
	if len(m.Attributes) == 0 {
		return a
	}
	var doc map[string]any
	if json.Unmarshal(m.Attributes, &doc) != nil {
		return a // a document PostgreSQL accepted but Go does not: keep the columns
	}
	str := func(k string) string {
		s, _ := doc[k].(string)
		return s
	}
	a.Reason, a.Kind, a.PeerService, a.Caller = str(attrs.Reason), str(attrs.Kind), str(attrs.PeerService), str(attrs.CallerService)
	if ep := str(attrs.Episode); ep != "" {
		if t, err := time.Parse(time.RFC3339Nano, ep); err == nil {
			a.Episode = t.UTC()
		}
	}
	return a
}
