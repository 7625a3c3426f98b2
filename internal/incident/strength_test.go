package incident

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStrengthLevel(t *testing.T) {
	assert.Equal(t, noStrength, strengthLevel(0.5))
	assert.Equal(t, noStrength, strengthLevel(0.1))
	assert.Equal(t, 0, strengthLevel(0.05))
	assert.Equal(t, 1, strengthLevel(0.008))
	assert.Equal(t, 3, strengthLevel(1e-5))
	assert.Equal(t, strengthLevels-1, strengthLevel(0), "p = 0 reaches every level")
	assert.Equal(t, strengthLevels-1, strengthLevel(1e-320))
	assert.Equal(t, noStrength, strengthLevel(nan()), "a missing p-value is no strength")
	for p, prev := 0.09, -1; p > 1e-300; p /= 3 {
		l := strengthLevel(p)
		assert.GreaterOrEqual(t, l, prev, "levels grow as p falls (p=%g)", p)
		prev = l
	}
}

// metricBackground: every service's metrics flag now and then, mildly
// (p about 0.01, as a detector flags routine wobbles).
func metricBackground(rng *rand.Rand, services []string, from time.Time, d time.Duration, p float64) []Anomaly {
	var out []Anomaly
	for sec := 0; sec < int(d/time.Second); sec++ {
		for _, s := range services {
			if rng.Float64() < 0.2/60 {
				out = append(out, Anomaly{Signal: SignalMetrics, Service: s, Stream: "metrics/" + s + "/cpu",
					ObservedAt: from.Add(time.Duration(sec) * time.Second), Reason: ReasonValue, PValue: p * (0.5 + rng.Float64()),
					Summary: "cpu = 12"})
			}
		}
	}
	return out
}

func services(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	return out
}

func byTime(as []Anomaly) {
	sort.SliceStable(as, func(i, j int) bool { return as[i].ObservedAt.Before(as[j].ObservedAt) })
}

// One metric flag far stronger than the stream's (and its class's) usual
// flags opens an incident; the same flag at the usual strength does not.
// Without the strength test both are one flag in a bucket and neither
// opens.
func TestStrengthOpensOnRareExtreme(t *testing.T) {
	svc := services(20)
	for _, tc := range []struct {
		p    float64
		open bool
	}{{1e-30, true}, {0.01, false}} {
		rng := rand.New(rand.NewPCG(5, 6))
		as := metricBackground(rng, svc, t0, 6*time.Hour, 0.01)
		at := t0.Add(5*time.Hour + 30*time.Second)
		as = append(as, Anomaly{Signal: SignalMetrics, Service: "ab", Stream: "metrics/ab/cpu", ObservedAt: at,
			Reason: ReasonValue, PValue: tc.p, Summary: "cpu = 499"})
		assert.Equal(t, tc.open, opensLedBy(t, as, "ab", at), "p=%g", tc.p)
	}
}

// A stream whose flags are always extreme (an unfamiliar log template
// scores p = 1e-100 every time) gains nothing from one more.
func TestStrengthRoutineExtremesAreWeak(t *testing.T) {
	svc := services(20)
	rng := rand.New(rand.NewPCG(7, 8))
	as := metricBackground(rng, svc, t0, 6*time.Hour, 1e-100)
	byTime(as)
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	ev := append(feed(t, c, as), c.Flush()...)
	late := 0
	for _, inc := range opened(ev) {
		if inc.Opened.After(t0.Add(time.Hour)) {
			late++
		}
	}
	assert.LessOrEqual(t, late, 3, "routinely extreme flags opened %d incidents in 5 hours", late)
}

func nan() float64 { var z float64; return z / z }

// Each metric is its own evidence stream: a service whose client latency
// routinely flags at extreme p-values still opens an incident when its
// CPU, which never does, flags at one.
func TestStrengthPerMetric(t *testing.T) {
	svc := services(20)
	rng := rand.New(rand.NewPCG(11, 12))
	as := metricBackground(rng, svc, t0, 6*time.Hour, 0.01)
	for m := 0; m < 6*60; m += 5 {
		as = append(as, Anomaly{Signal: SignalMetrics, Service: "ab", Stream: "metrics/ab/client_latency",
			ObservedAt: t0.Add(time.Duration(m)*time.Minute + 20*time.Second), Reason: ReasonValue, PValue: 1e-100, Summary: "client_latency = 3600"})
	}
	at := t0.Add(5*time.Hour + 32*time.Minute + 40*time.Second)
	as = append(as, Anomaly{Signal: SignalMetrics, Service: "ab", Stream: "metrics/ab/cpu", ObservedAt: at,
		Reason: ReasonValue, PValue: 1e-30, Summary: "cpu = 499"})
	assert.True(t, opensLedBy(t, as, "ab", at), "the CPU flag opened no incident")
}

// opensLedBy feeds as (in time order) to a fresh correlator and reports
// whether an incident led by service opens within a minute of at.
func opensLedBy(t *testing.T, as []Anomaly, service string, at time.Time) bool {
	t.Helper()
	byTime(as)
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	for _, inc := range opened(append(feed(t, c, as), c.Flush()...)) {
		if inc.Services[0].Service == service && !inc.Opened.Before(at.Add(-time.Minute)) && inc.Opened.Before(at.Add(time.Minute)) {
			return true
		}
	}
	return false
}
