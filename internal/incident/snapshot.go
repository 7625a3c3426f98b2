package incident

import (
	"encoding/json"
	"fmt"
	"sort"
)

// snapshotVersion changes when the snapshot layout does.
const snapshotVersion = 1

type snapshot struct {
	Version int
	Config  Config
	State   state
}

// Snapshot encodes the correlator's whole state (backgrounds, call graph,
// pending buckets, open incidents) so that a restarted process continues
// where this one stopped: Restore(Snapshot()) then the same calls give
// the same events as without the restart.
func (c *Correlator) Snapshot() ([]byte, error) {
	return json.Marshal(snapshot{Version: snapshotVersion, Config: c.cfg, State: c.st})
}

// Restore rebuilds a correlator from a Snapshot. The snapshot's settings
// are used; an unknown version or invalid settings are an error.
func Restore(data []byte) (*Correlator, error) {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("incident snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("incident snapshot: version %d, this build reads %d", s.Version, snapshotVersion)
	}
	if err := s.Config.Validate(); err != nil {
		return nil, fmt.Errorf("incident snapshot: %w", err)
	}
	c := &Correlator{cfg: s.Config, keep: keepFactor(s.Config), st: s.State}
	if c.st.Backgrounds == nil {
		c.st.Backgrounds = map[string]*rate{}
	}
	if c.st.Pooled == nil {
		c.st.Pooled = map[string]*rate{}
	}
	if c.st.Streams == nil {
		c.st.Streams = map[string]int{}
	}
	if c.st.Services == nil {
		c.st.Services = map[string]bool{}
	}
	if c.st.Trouble == nil {
		c.st.Trouble = map[string]troubleRun{}
	}
	if c.st.Recent == nil {
		c.st.Recent = map[string][]bucketEvidence{}
	}
	if c.st.Pending == nil {
		c.st.Pending = map[int64][]Anomaly{}
	}
	if c.st.Graph.Callees == nil {
		c.st.Graph = newGraph()
	}
	for _, inc := range c.st.Open {
		if inc.Services == nil {
			inc.Services = map[string]*svcState{}
		}
		if inc.Kinds == nil {
			inc.Kinds = map[string]bool{}
		}
		if inc.Traces == nil {
			inc.Traces = map[string]bool{}
		}
	}
	return c, nil
}

// Rebuild runs a fresh correlator over anomalies (sorted by observed time,
// then id; the slice is sorted in place) after the given edges, flushes
// it, and returns every event and the incidents still open. It is what
// `driftlock incidents rebuild` computes from the store.
func Rebuild(cfg Config, anomalies []Anomaly, edges []Edge) ([]Event, []Incident, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	for _, e := range edges {
		c.AddEdge(e.Caller, e.Callee, e.At)
	}
	sort.SliceStable(anomalies, func(i, j int) bool {
		if !anomalies[i].ObservedAt.Equal(anomalies[j].ObservedAt) {
			return anomalies[i].ObservedAt.Before(anomalies[j].ObservedAt)
		}
		return anomalies[i].ID < anomalies[j].ID
	})
	var events []Event
	for _, a := range anomalies {
		ev, err := c.Add(a)
		if err != nil {
			return nil, nil, err
		}
		events = append(events, ev...)
	}
	events = append(events, c.Flush()...)
	return events, c.Incidents(), nil
}
