package nezhaeval

import (
	"math"
	"slices"
	"time"

	"github.com/driftlock/driftlock/internal/incident"
)

// The trivial rules (issue 12) that any detector must beat, run over the
// same records the processor sees:
//
//   - error_count (logs): per service and minute, the number of WARN-or-worse
//     records; a minute whose count exceeds the mean + 3 sigma of the
//     service's previous 60 minutes with log data flags its WARN/ERROR records.
//   - metric_3sigma (metrics): a point further than 3 sigma from the mean of
//     its series' previous 60 points (at least 10) is flagged.
//   - span_2x_p99 (traces): a span slower than twice the p99 of the previous
//     1,024 durations (at least 50) of its service and operation is flagged.
type rules struct {
	flags [numSignals][]incident.Anomaly

	// error_count
	logMinute int64
	logSvc    map[string]*errorCounter

	// metric_3sigma
	series map[string]*ring

	// span_2x_p99
	ops map[string]*opDurations
}

// Rule names, in the order their rows print.
var ruleNames = [numSignals]string{"error_count", "span_2x_p99", "metric_3sigma"}

type errorCounter struct {
	history *ring       // per-minute counts of past minutes with log data
	cur     []time.Time // WARN/ERROR record times of the current minute
	example string
}

func newRules() *rules {
	return &rules{logMinute: math.MinInt64, logSvc: map[string]*errorCounter{}, series: map[string]*ring{}, ops: map[string]*opDurations{}}
}

// ring is a fixed-size window of recent values.
type ring struct {
	v    []float64
	next int
	full bool
}

func newRing(n int) *ring { return &ring{v: make([]float64, n)} }

func (r *ring) push(x float64) {
	r.v[r.next] = x
	r.next++
	if r.next == len(r.v) {
		r.next, r.full = 0, true
	}
}

func (r *ring) values() []float64 {
	if r.full {
		return r.v
	}
	return r.v[:r.next]
}

func meanSD(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	m := 0.0
	for _, x := range xs {
		m += x
	}
	m /= float64(len(xs))
	v := 0.0
	for _, x := range xs {
		v += (x - m) * (x - m)
	}
	return m, math.Sqrt(v / float64(len(xs)))
}

func (r *rules) log(service string, t time.Time, warn bool, body string) {
	minute := t.Unix() / 60
	if minute > r.logMinute {
		r.closeLogMinute()
		r.logMinute = minute
	}
	c := r.logSvc[service]
	if c == nil {
		c = &errorCounter{history: newRing(60)}
		r.logSvc[service] = c
	}
	if warn {
		if len(c.cur) == 0 {
			c.example = firstLine(body)
		}
		c.cur = append(c.cur, t)
	}
}

// closeLogMinute judges the minute that just ended, for every service.
func (r *rules) closeLogMinute() {
	if r.logMinute == math.MinInt64 {
		return
	}
	for _, svc := range sortedKeys(r.logSvc) {
		c := r.logSvc[svc]
		n := float64(len(c.cur))
		hist := c.history.values()
		if n > 0 && len(hist) >= 3 {
			m, sd := meanSD(hist)
			if n > m+3*sd {
				for _, t := range c.cur {
					r.flags[sigLogs] = append(r.flags[sigLogs], incident.Anomaly{Signal: incident.SignalLogs, Service: svc,
						ObservedAt: t.UTC(), Reason: incident.ReasonErrors, Summary: c.example, PValue: ruleP})
				}
			}
		}
		c.history.push(n)
		c.cur = c.cur[:0]
	}
}

func (r *rules) metric(service, name string, t time.Time, v float64) {
	key := service + "\x00" + name
	s := r.series[key]
	if s == nil {
		s = newRing(60)
		r.series[key] = s
	}
	if hist := s.values(); len(hist) >= 10 {
		m, sd := meanSD(hist)
		if sd > 0 && math.Abs(v-m) > 3*sd {
			r.flags[sigMetrics] = append(r.flags[sigMetrics], incident.Anomaly{Signal: incident.SignalMetrics, Service: service,
				ObservedAt: t.UTC(), Reason: incident.ReasonValue, Summary: name, PValue: ruleP})
		}
	}
	s.push(v)
}

type opDurations struct {
	window *ring
	p99    float64
	since  int // values pushed since p99 was computed
}

func (r *rules) span(service, op string, t time.Time, d time.Duration) {
	key := service + "\x00" + op
	o := r.ops[key]
	if o == nil {
		o = &opDurations{window: newRing(1024)}
		r.ops[key] = o
	}
	hist := o.window.values()
	if len(hist) >= 50 {
		if o.since >= 32 || o.p99 == 0 {
			sorted := slices.Clone(hist)
			slices.Sort(sorted)
			o.p99 = sorted[int(0.99*float64(len(sorted)-1))]
			o.since = 0
		}
		if o.p99 > 0 && float64(d) > 2*o.p99 {
			r.flags[sigTraces] = append(r.flags[sigTraces], incident.Anomaly{Signal: incident.SignalTraces, Service: service,
				ObservedAt: t.UTC(), Reason: incident.ReasonLatency, Summary: op, PValue: ruleP})
		}
	}
	o.window.push(float64(d))
	o.since++
}

// finish judges the last open minute.
func (r *rules) finish() { r.closeLogMinute() }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ruleP is the p-value the rules' flags carry: they have none, and 1 says
// so to the correlator (their flags are weighed by count alone; a p-value
// of 0 would read as the strongest evidence there is).
const ruleP = 1.0
