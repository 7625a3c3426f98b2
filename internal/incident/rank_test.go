package incident

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lastWith is the last state of the incident opened after from that ranks
// service.
func lastWith(ev []Event, from time.Time, service string) *Incident {
	var last *Incident
	for i := range ev {
		if ev[i].Incident.Opened.After(from) && ev[i].Incident.Rank(service) > 0 {
			last = &ev[i].Incident
		}
	}
	return last
}

// A callee's first errors are supporting evidence that joins nothing (no
// incident is open yet); two minutes later its caller's burst opens the
// incident and the callee's trouble goes on. Its onset is the start of its
// trouble, before the caller's, so it leads: the callee explains the
// caller. Without the remembered onset it would join late and look
// inherited.
func TestOnsetIsStartOfTrouble(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	c.AddEdge("front", "contacts", t0)
	rng := rand.New(rand.NewPCG(13, 14))
	as := background(rng, []string{"front", "contacts", "other", "more"}, []float64{1, 0.3, 1, 1}, t0, 2*time.Hour)
	at := t0.Add(90 * time.Minute)
	for m := range 5 {
		ts := at.Add(time.Duration(m)*time.Minute + 5*time.Second)
		as = append(as, Anomaly{Signal: SignalLogs, Service: "contacts", Reason: ReasonNovel, Severity: "ERROR", PValue: 0.005,
			ObservedAt: ts, Kind: "no-contacts", Summary: "ERROR No contacts according to contactsId"})
	}
	for i := range 12 {
		as = append(as, Anomaly{Signal: SignalLogs, Service: "front", Reason: ReasonErrors, Severity: "ERROR", PValue: 1e-6,
			ObservedAt: at.Add(2*time.Minute + time.Duration(i)*4*time.Second), Kind: "upstream", Summary: "ERROR upstream failed"})
	}
	sortByTime(as)
	ev := append(feed(t, c, as), c.Flush()...)
	inc := lastWith(ev, at.Add(-time.Minute), "contacts")
	require.NotNil(t, inc, "an incident must hold the callee")
	assert.Equal(t, "contacts", inc.Leader(), "ranking: %+v", inc.Services)
	r := inc.Services[inc.Rank("contacts")-1]
	assert.True(t, r.Onset.Before(at.Add(2*time.Minute)), "the callee's onset %s is the start of its trouble, before the caller's burst at %s", r.Onset, at.Add(2*time.Minute))
}

// A callee credited with its callers' evidence cannot lead on their
// evidence alone: its credit is at most its own surprise.
func TestCalleeCreditCapped(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	for _, caller := range []string{"a", "b", "cpu-starved"} {
		c.AddEdge(caller, "shared-db", t0)
	}
	inc := &incState{Services: map[string]*svcState{
		"a":           {Surprise: 30, Onset: t0.Add(time.Minute)},
		"b":           {Surprise: 30, Onset: t0.Add(time.Minute)},
		"cpu-starved": {Surprise: 25, Onset: t0.Add(time.Minute), Signals: [numSignals]bool{false, true, true}},
		"shared-db":   {Surprise: 4, Onset: t0},
	}}
	inc.rerank(c)
	assert.Equal(t, "cpu-starved", inc.Leader, "ranking: %+v", inc.Ranked)
	for _, r := range inc.Ranked {
		if r.Service == "shared-db" {
			assert.LessOrEqual(t, r.Score, 2*4*1.2+1e-9, "credit beyond its own surprise")
		}
	}
}

// An edge_latency flag names the caller that saw the callee slow: the
// caller the detector named, or the flagged span's service when that is
// the caller's. A flag on the callee's own span without a named caller
// does not know it, and the title must not name the callee as its own
// caller.
func TestEdgeEvidenceNamesOnlyAKnownCaller(t *testing.T) {
	var s svcState
	s.addEvidence(&Anomaly{Signal: SignalTraces, Service: "orders", PeerService: "price", Reason: ReasonEdgeLatency}, 8)
	s.addEvidence(&Anomaly{Signal: SignalTraces, Service: "price", PeerService: "price", Reason: ReasonEdgeLatency}, 8)
	// The detector names the caller on either span (driftlock.caller.service).
	s.addEvidence(&Anomaly{Signal: SignalTraces, Service: "price", PeerService: "price", Caller: "travel", Reason: ReasonEdgeLatency}, 8)
	require.Len(t, s.Evidence, 3)
	assert.Equal(t, "latency of calls to it from orders, 1 span", describe(s.Evidence[0]))
	assert.Equal(t, "latency of calls to it, 1 span", describe(s.Evidence[1]))
	assert.Equal(t, "latency of calls to it from travel, 1 span", describe(s.Evidence[2]))
}
