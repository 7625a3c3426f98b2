package correlator_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/correlator"
	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/store"
)

func TestInputReadsTheDetectorVerdict(t *testing.T) {
	at := time.Date(2023, 1, 29, 8, 43, 15, 0, time.FixedZone("x", 3600))
	doc, _ := json.Marshal(map[string]any{attrs.Reason: attrs.ReasonEdgeLatency, attrs.Kind: "k9",
		attrs.PeerService: "ts-basic-service", attrs.Episode: "2023-01-29T07:40:00Z", "http.route": "/x"})
	m := store.MemberAnomaly{StoredAnomaly: store.StoredAnomaly{ID: 7, Signal: "traces", Stream: "traces/ts-travel",
		Service: "ts-travel-service", ObservedAt: at, Score: 3, PValue: 0.001, TraceID: "abc", Summary: "GET /x",
		Attributes: doc}}
	a := correlator.Input(&m)
	want := incident.Anomaly{ID: 7, Signal: "traces", Stream: "traces/ts-travel", Service: "ts-travel-service",
		ObservedAt: at.UTC(), Score: 3, PValue: 0.001, TraceID: "abc", Summary: "GET /x",
		Reason: attrs.ReasonEdgeLatency, Kind: "k9", PeerService: "ts-basic-service",
		Episode: time.Date(2023, 1, 29, 7, 40, 0, 0, time.UTC)}
	if a != want {
		t.Fatalf("Input:\n got  %+v\n want %+v", a, want)
	}
	// Attributes that are not the expected types, or not JSON, leave the columns.
	m.Attributes = json.RawMessage(`{"driftlock.kind": 5, "driftlock.episode": "yesterday"}`)
	if a := correlator.Input(&m); a.Kind != "" || !a.Episode.IsZero() || a.Service != "ts-travel-service" {
		t.Fatalf("odd attributes: %+v", a)
	}
	m.Attributes = json.RawMessage(`not json`)
	if a := correlator.Input(&m); a.Reason != "" || a.ID != 7 {
		t.Fatalf("bad attributes: %+v", a)
	}
}

func TestSeverity(t *testing.T) {
	one := incident.Incident{Signals: []string{"logs"}, Services: []incident.RankedService{{Service: "a"}}}
	two := incident.Incident{Signals: []string{"logs", "traces"}, Services: []incident.RankedService{{Service: "a"}}}
	spread := incident.Incident{Signals: []string{"logs"}, Services: []incident.RankedService{{Service: "a"}, {Service: "b"}, {Service: "c"}}}
	if correlator.Severity(&one) != correlator.SeverityWarning || correlator.Severity(&two) != correlator.SeverityCritical ||
		correlator.Severity(&spread) != correlator.SeverityCritical {
		t.Fatal("severity rule: warning for one signal and few services, critical for 2+ signals or 3+ services")
	}
}
