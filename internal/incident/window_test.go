package incident

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A quiet service with moderate evidence in three consecutive minutes, in
// a different signal each minute (unfamiliar lines, then slow spans, then
// a metric), opens an incident, although no minute alone clears the open
// level (and no stream has evidence in more than one minute, so the count
// test's own window does not see it); the same evidence in one minute
// only does not.
func TestWindowCombinesConsecutiveBuckets(t *testing.T) {
	svc := services(20)
	for _, minutes := range []int{1, 3} {
		rng := rand.New(rand.NewPCG(9, 10))
		as := background(rng, svc, func() []float64 {
			r := make([]float64, len(svc))
			for i := range r {
				r[i] = 0.3
			}
			return r
		}(), t0, 4*time.Hour)
		at := t0.Add(3 * time.Hour)
		signals := []string{SignalLogs, SignalTraces, SignalMetrics}
		reasons := []string{ReasonNovel, ReasonLatency, ReasonValue}
		for m := range minutes {
			for k := range 2 {
				as = append(as, Anomaly{Signal: signals[m], Service: "target", ObservedAt: at.Add(time.Duration(m)*time.Minute + time.Duration(k)*10*time.Second),
					Reason: reasons[m], PValue: 0.008, Summary: "moderate evidence"})
			}
		}
		byTime(as)
		c, err := New(DefaultConfig())
		require.NoError(t, err)
		// The target service is known (it flagged once, long before).
		_, err = c.Add(Anomaly{Signal: SignalLogs, Service: "target", ObservedAt: t0, Reason: ReasonNovel, PValue: 0.008})
		require.NoError(t, err)
		ev := append(feed(t, c, as), c.Flush()...)
		found := false
		for _, inc := range opened(ev) {
			if inc.Services[0].Service == "target" {
				found = true
			}
		}
		assert.Equal(t, minutes == 3, found, "evidence over %d minute(s)", minutes)
	}
}

func TestWindowForgetsQuietServices(t *testing.T) {
	c, err := New(DefaultConfig())
	require.NoError(t, err)
	c.windowTest(10, "a", -5)
	c.windowTest(11, "b", -5)
	assert.Len(t, c.st.Recent, 2)
	c.forgetRecent(13)
	assert.Len(t, c.st.Recent, 1, "a's last evidence is a window old")
	// Evidence a window ago is not combined.
	assert.Equal(t, -5.0, c.windowTest(14, "b", -5))
}
