package incident

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 2, 8, 0, 0, 0, time.UTC)

// background yields routine flags: every service flags now and then at its
// own rate (some noisy, some quiet) for the given duration.
func background(rng *rand.Rand, services []string, rates []float64, from time.Time, d time.Duration) []Anomaly {
	var out []Anomaly
	for sec := 0; sec < int(d/time.Second); sec++ {
		for i, s := range services {
			if rng.Float64() < rates[i]/60 {
				out = append(out, Anomaly{Signal: SignalLogs, Service: s, ObservedAt: from.Add(time.Duration(sec) * time.Second),
					Reason: ReasonNovel, Summary: "routine line", PValue: 0.008})
			}
		}
	}
	return out
}

func feed(t testing.TB, c *Correlator, as []Anomaly) []Event {
	var out []Event
	for _, a := range as {
		ev, err := c.Add(a)
		require.NoError(t, err)
		out = append(out, ev...)
	}
	return out
}

func opened(ev []Event) []Incident {
	var out []Incident
	for _, e := range ev {
		if e.Type == Opened {
			out = append(out, e.Incident)
		}
	}
	return out
}

func TestRoutineFlagsOpenNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	services := []string{"a", "b", "c", "d", "e"}
	rates := []float64{10, 3, 1, 0.3, 0.1} // flags per minute
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	ev := feed(t, c, background(rng, services, rates, t0, 8*time.Hour))
	ev = append(ev, c.Flush()...)
	// After the first hour (the backgrounds learn), routine flags at any
	// steady rate must open nothing: the budget is 0.5 an hour.
	late := 0
	for _, inc := range opened(ev) {
		if inc.Opened.After(t0.Add(time.Hour)) {
			late++
		}
	}
	assert.LessOrEqual(t, late, 2, "routine flags opened %d incidents in 7 hours", late)
}

func TestBurstInQuietServiceOpensAndCloses(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	services := []string{"noisy", "quiet", "other"}
	as := background(rng, services, []float64{5, 0.05, 1}, t0, 3*time.Hour)
	burstAt := t0.Add(2 * time.Hour)
	for i := range 12 {
		as = append(as, Anomaly{ID: int64(1000 + i), Signal: SignalLogs, Service: "quiet", ObservedAt: burstAt.Add(time.Duration(i) * 5 * time.Second),
			Reason: ReasonErrors, Kind: "k1", Severity: "ERROR", Summary: "ERROR cannot reach contacts"})
	}
	sortByTime(as)
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	ev := feed(t, c, as)
	ev = append(ev, c.Advance(t0.Add(3*time.Hour))...)
	var hit *Event
	for i, e := range ev {
		if e.Type == Opened && e.Incident.Leader() == "quiet" {
			hit = &ev[i]
		}
	}
	require.NotNil(t, hit, "the burst must open an incident led by its service")
	assert.WithinDuration(t, burstAt, hit.Incident.Opened, time.Minute)
	assert.Contains(t, hit.Incident.Title, "quiet: burst of errors")
	assert.Contains(t, hit.Incident.Title, "cannot reach contacts")
	assert.NotEmpty(t, hit.NewMembers)
	closed := false
	for _, e := range ev {
		if e.Type == Closed && e.Incident.ID == hit.Incident.ID {
			closed = true
			assert.True(t, e.Incident.Closed.After(e.Incident.LastEvidence))
		}
	}
	assert.True(t, closed, "the incident must close after the quiet period")
	// The same burst in the noisy service is routine there... but 12 extra
	// flags on top of 5 a minute in one minute is still a burst; what must
	// not open is the noisy service's own routine.
	for _, inc := range opened(ev) {
		if inc.Leader() == "noisy" {
			assert.True(t, inc.Opened.Before(t0.Add(time.Hour)), "noisy routine opened %s", inc.Title)
		}
	}
}

func sortByTime(as []Anomaly) {
	for i := 1; i < len(as); i++ {
		for j := i; j > 0 && as[j].ObservedAt.Before(as[j-1].ObservedAt); j-- {
			as[j], as[j-1] = as[j-1], as[j]
		}
	}
}

// A slow callee: its callers see it slow (edge latency) and log errors,
// while it shows nothing of its own. The callee must rank first.
func TestCallGraphRanksSlowCallee(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	for _, caller := range []string{"front", "orders", "travel"} {
		c.AddEdge(caller, "price", t0)
	}
	c.AddEdge("front", "orders", t0)
	c.AddEdge("front", "travel", t0)
	rng := rand.New(rand.NewPCG(5, 6))
	as := background(rng, []string{"front", "orders", "travel", "price"}, []float64{1, 1, 1, 0.2}, t0, 2*time.Hour)
	at := t0.Add(90 * time.Minute)
	for i := range 8 {
		ts := at.Add(time.Duration(i) * 7 * time.Second)
		as = append(as,
			Anomaly{Signal: SignalTraces, Service: "orders", PeerService: "price", Reason: ReasonEdgeLatency, ObservedAt: ts, Summary: "GET /price"},
			Anomaly{Signal: SignalTraces, Service: "travel", PeerService: "price", Reason: ReasonEdgeLatency, ObservedAt: ts.Add(time.Second), Summary: "GET /price"},
			Anomaly{Signal: SignalLogs, Service: "orders", Reason: ReasonErrors, ObservedAt: ts.Add(2 * time.Second), Summary: "ERROR timeout calling price"},
			Anomaly{Signal: SignalLogs, Service: "front", Reason: ReasonErrors, ObservedAt: ts.Add(3 * time.Second), Summary: "ERROR upstream failed"},
		)
	}
	sortByTime(as)
	ev := append(feed(t, c, as), c.Flush()...)
	var last *Incident
	for i := range ev {
		if ev[i].Incident.Opened.After(at.Add(-time.Minute)) && ev[i].Incident.Rank("price") > 0 {
			last = &ev[i].Incident
		}
	}
	require.NotNil(t, last, "an incident must hold the slow callee")
	assert.Equal(t, "price", last.Leader(), "ranking: %+v", last.Services)
	assert.Contains(t, last.Title, "latency of calls to it from")
	assert.Greater(t, last.Rank("front"), 1)
}

func TestDeterministicAndRestartSafe(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	as := background(rng, []string{"a", "b", "c"}, []float64{2, 0.2, 0.5}, t0, 3*time.Hour)
	for i := range 10 {
		as = append(as, Anomaly{ID: int64(i + 1), Signal: SignalMetrics, Service: "b", Reason: ReasonValue, ObservedAt: t0.Add(100*time.Minute + time.Duration(i)*20*time.Second)})
	}
	sortByTime(as)
	run := func() []Event {
		c, err := New(DefaultConfig())
		require.NoError(t, err)
		return append(feed(t, c, as), c.Flush()...)
	}
	a, b := run(), run()
	require.NotEmpty(t, opened(a))
	assert.True(t, reflect.DeepEqual(a, b), "same input, different events")

	// Stop half way, snapshot, restore, continue: the same events.
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	half := len(as) / 2
	got := feed(t, c, as[:half])
	snap, err := c.Snapshot()
	require.NoError(t, err)
	c2, err := Restore(snap)
	require.NoError(t, err)
	got = append(got, feed(t, c2, as[half:])...)
	got = append(got, c2.Flush()...)
	require.Equal(t, len(a), len(got))
	for i := range a {
		assert.Equal(t, a[i].Type, got[i].Type)
		assert.Equal(t, a[i].Incident.ID, got[i].Incident.ID)
		assert.Equal(t, a[i].Incident.Title, got[i].Incident.Title)
		assert.Equal(t, a[i].NewMembers, got[i].NewMembers)
	}
}

func TestLateAnomalyJoinsOpenIncident(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	var as []Anomaly
	for i := range 10 {
		as = append(as, Anomaly{ID: int64(i + 1), Signal: SignalLogs, Service: "x", Reason: ReasonErrors, ObservedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	as = append(as, Anomaly{ID: 50, Signal: SignalLogs, Service: "y", Reason: ReasonNovel, ObservedAt: t0.Add(3 * time.Minute)})
	ev := feed(t, c, as)
	require.Len(t, opened(ev), 1)
	ev, err = c.Add(Anomaly{ID: 99, Signal: SignalLogs, Service: "x", Reason: ReasonErrors, ObservedAt: t0.Add(20 * time.Second)})
	require.NoError(t, err)
	require.Len(t, ev, 1)
	assert.Equal(t, Updated, ev[0].Type)
	assert.Equal(t, []int64{99}, ev[0].NewMembers)
	assert.Equal(t, 11, ev[0].Incident.Members)
}

func TestBadInput(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	for _, a := range []Anomaly{
		{Signal: "profiles", Service: "x", ObservedAt: t0},
		{Signal: SignalLogs, ObservedAt: t0},
		{Signal: SignalLogs, Service: "x"},
	} {
		_, err := c.Add(a)
		assert.Error(t, err)
	}
	bad := DefaultConfig()
	bad.Bucket = 0
	bad.JoinPValue = 2
	_, err = New(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "bucket")
	assert.Contains(t, err.Error(), "join_p_value")
	_, err = Restore([]byte(`{"Version":99}`))
	assert.ErrorContains(t, err, "version 99")
	_, err = Restore([]byte(`not json`))
	assert.Error(t, err)
}

// log2Tail against a direct sum of the pmf.
func TestLog2Tail(t *testing.T) {
	poisson := func(n int, m float64) float64 {
		cdf := 0.0
		for k := 0; k < n; k++ {
			lg, _ := math.Lgamma(float64(k) + 1)
			cdf += math.Exp(float64(k)*math.Log(m) - m - lg)
		}
		return 1 - cdf
	}
	for _, tc := range []struct {
		n int
		m float64
	}{{1, 0.1}, {3, 0.5}, {5, 2}, {2, 3}, {10, 1}} {
		want := math.Log2(poisson(tc.n, tc.m))
		assert.InDelta(t, want, log2Tail(tc.n, tc.m, tc.m), 1e-6, "n=%d m=%v", tc.n, tc.m)
	}
	// Overdispersion makes a burst less surprising.
	assert.Greater(t, log2Tail(10, 1, 5), log2Tail(10, 1, 1))
	// Huge bursts stay finite.
	assert.False(t, math.IsInf(log2Tail(100000, 0.01, 0.01), 0))
	assert.Equal(t, 0.0, log2Tail(0, 1, 1))
	// Fisher with one test is the test itself; with more, weaker than the sum.
	assert.Equal(t, -10.0, fisherLog2(-10, 1))
	assert.Greater(t, fisherLog2(-20, 2), -20.0)
}

func TestSnapshotIsJSON(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	_, err = c.Add(Anomaly{Signal: SignalLogs, Service: "x", ObservedAt: t0})
	require.NoError(t, err)
	b, err := c.Snapshot()
	require.NoError(t, err)
	assert.True(t, json.Valid(b))
	assert.True(t, strings.Contains(string(b), `"Version":1`))
}

// A long outage: a burst opens the incident, then the detector admits the
// kind and the records keep coming one a minute, annotated with their
// episode. The incident must stay open as long as they come (a person must
// never see an outage go quiet while it lasts), and close after they stop.
func TestEpisodeKeepsOutageOpen(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	start := t0.Add(time.Hour)
	var as []Anomaly
	for i := range 10 {
		as = append(as, Anomaly{Signal: SignalLogs, Service: "db", Reason: ReasonErrors, Severity: "ERROR", Kind: "conn-refused",
			ObservedAt: start.Add(time.Duration(i) * 3 * time.Second), Episode: start, Summary: "ERROR connection refused"})
	}
	end := start.Add(40 * time.Minute)
	for at := start.Add(time.Minute); at.Before(end); at = at.Add(time.Minute) {
		as = append(as, Anomaly{Signal: SignalLogs, Service: "db", Reason: ReasonRate, Severity: "ERROR", Kind: "conn-refused",
			ObservedAt: at, Episode: start, Summary: "ERROR connection refused"})
	}
	// Something else, much later, moves time on.
	as = append(as, Anomaly{Signal: SignalLogs, Service: "other", ObservedAt: end.Add(20 * time.Minute)})
	ev := feed(t, c, as)
	var openedN, closedN int
	var closed Incident
	for _, e := range ev {
		if e.Incident.Leader() != "db" {
			continue
		}
		switch e.Type {
		case Opened:
			openedN++
		case Closed:
			closedN++
			closed = e.Incident
		}
	}
	require.Equal(t, 1, openedN, "one outage, one incident")
	require.Equal(t, 1, closedN)
	assert.False(t, closed.LastEvidence.Before(end.Add(-2*time.Minute)), "last evidence %s must reach the outage's end %s", closed.LastEvidence, end)
	assert.Equal(t, closed.LastEvidence.Add(DefaultConfig().Quiet), closed.Closed)
	assert.Equal(t, 10+39, closed.Members)
}

// Two troubled callers of a quiet callee: the callee is listed as a
// suspect (no evidence of its own), a caller with its own evidence first.
func TestSuspectCallee(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	c.AddEdge("web", "cart", t0)
	c.AddEdge("web", "pay", t0)
	c.AddEdge("cart", "pay", t0)
	c.AddEdge("web", "auth", t0)
	var as []Anomaly
	at := t0.Add(2 * time.Hour)
	for i := range 8 {
		ts := at.Add(time.Duration(i) * 5 * time.Second)
		as = append(as,
			Anomaly{Signal: SignalLogs, Service: "web", Reason: ReasonErrors, Severity: "ERROR", ObservedAt: ts, Summary: "ERROR checkout failed"},
			Anomaly{Signal: SignalLogs, Service: "cart", Reason: ReasonErrors, Severity: "ERROR", ObservedAt: ts.Add(time.Second), Summary: "ERROR pay timeout"})
	}
	ev := append(feed(t, c, as), c.Flush()...)
	require.NotEmpty(t, opened(ev))
	last := ev[len(ev)-1].Incident
	k := last.Rank("pay")
	require.Positive(t, k, "the common callee must be ranked: %+v", last.Services)
	assert.Contains(t, last.Services[k-1].Why[0], "called by 2 troubled services")
	assert.Zero(t, last.Services[k-1].Anomalies)
	assert.Zero(t, last.Rank("auth"), "a callee of one troubled caller is not a suspect")
}

// A second, stronger burst in an open incident is an escalation: a
// material update a person should hear about.
func TestEscalationIsMaterial(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	var as []Anomaly
	for i := range 6 {
		as = append(as, Anomaly{Signal: SignalLogs, Service: "x", Reason: ReasonErrors, ObservedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	for i := range 60 {
		as = append(as, Anomaly{Signal: SignalLogs, Service: "x", Reason: ReasonErrors, ObservedAt: t0.Add(2*time.Minute + time.Duration(i)*time.Second)})
	}
	ev := append(feed(t, c, as), c.Flush()...)
	require.Len(t, opened(ev), 1)
	var esc *Event
	for i := range ev {
		if ev[i].Type == Updated && strings.Contains(ev[i].Change, "escalation") {
			esc = &ev[i]
		}
	}
	require.NotNil(t, esc, "events: %+v", ev)
	assert.True(t, esc.Material)
	assert.Contains(t, esc.Change, "escalation: x")
}

// Data that resumes after a gap carries artifacts in every service at
// once: its first bucket cannot open an incident, the next one can.
func TestResumedSignalSettles(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(11, 12))
	as := background(rng, []string{"a", "b"}, []float64{1, 1}, t0, time.Hour)
	resume := t0.Add(time.Hour + 30*time.Minute) // 30 min without any log anomaly
	for i := range 10 {
		as = append(as, Anomaly{Signal: SignalLogs, Service: "q", Reason: ReasonErrors, ObservedAt: resume.Add(time.Duration(i) * time.Second)})
	}
	ev := append(feed(t, c, as), c.Advance(resume.Add(time.Minute))...)
	for _, inc := range opened(ev) {
		assert.NotEqual(t, "q", inc.Leader(), "the resumption bucket opened %s", inc.Title)
	}
	later := resume.Add(time.Minute)
	var more []Anomaly
	for i := range 10 {
		more = append(more, Anomaly{Signal: SignalLogs, Service: "r", Reason: ReasonErrors, ObservedAt: later.Add(time.Duration(i) * time.Second)})
	}
	ev = append(feed(t, c, more), c.Flush()...)
	require.Len(t, opened(ev), 1)
	assert.Equal(t, "r", opened(ev)[0].Leader())
}

// Memory follows the services seen recently: 10,000 one-off service names
// are forgotten once they have been quiet for four half-lives.
func TestStaleStreamsForgotten(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	for i := range 10000 {
		_, err := c.Add(Anomaly{Signal: SignalLogs, Service: fmt.Sprintf("pod-%05d", i), ObservedAt: t0.Add(time.Duration(i) * 100 * time.Millisecond)})
		require.NoError(t, err)
	}
	require.Greater(t, len(c.st.Backgrounds), 9000)
	// One steady service keeps the signal present for 26 hours.
	for m := range 26 * 60 {
		_, err := c.Add(Anomaly{Signal: SignalLogs, Service: "steady", ObservedAt: t0.Add(20*time.Minute + time.Duration(m)*time.Minute)})
		require.NoError(t, err)
	}
	c.Flush()
	assert.Equal(t, 1, len(c.st.Backgrounds))
	assert.Equal(t, 1, len(c.st.Services))
	assert.Equal(t, 1, c.st.Streams[classKey(0, ReasonNovel)])
}
