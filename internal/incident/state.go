package incident

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// incState is an open incident as the correlator keeps it.
type incState struct {
	ID       string
	Opened   time.Time
	Last     time.Time
	Closed   time.Time
	Members  int
	Surprise float64 // bits
	// Peak is the strongest evidence of one service in one bucket so far
	// (bits): evidence stronger than it is an escalation.
	Peak     float64
	Services map[string]*svcState
	// Kinds and Traces seen in the incident: later evidence of the same
	// kind or trace in another service is related. Bounded (maxLinks).
	Kinds  map[string]bool
	Traces map[string]bool
	// Leader and Ranked are the last ranking (for "material" changes).
	Leader string
	Ranked []RankedService
}

// maxLinks bounds the kinds and trace ids an incident remembers.
const maxLinks = 256

// svcState is one service's part in an incident.
type svcState struct {
	Surprise  float64 // bits, over the buckets it joined with
	Onset     time.Time
	Last      time.Time
	Signals   [numSignals]bool
	Anomalies int
	Evidence  []Evidence
	Dropped   int // anomalies in evidence groups beyond MaxEvidence
}

func (c *Correlator) open(se *serviceEvidence) *incState {
	inc := &incState{
		ID:       se.earliest.UTC().Format("20060102T150405Z") + "-" + se.service,
		Opened:   se.earliest,
		Last:     se.earliest,
		Services: map[string]*svcState{},
		Kinds:    map[string]bool{},
		Traces:   map[string]bool{},
	}
	c.st.Open = append(c.st.Open, inc)
	return inc
}

// join adds a service's bucket evidence to inc and returns the ids of the
// anomalies that joined. counts: the evidence is at least supporting (its
// surprise counts); extends: it is significant or part of an ongoing
// episode, and keeps the incident open. Supporting evidence alone does not
// keep an incident open: in a system of 40 services, some service has a
// bucket at p < 0.01 every few minutes by chance.
//
// escalated is set when the evidence is stronger than any one service's
// in one bucket before (a material change).
func (c *Correlator) join(inc *incState, se *serviceEvidence, as []Anomaly, counts, extends bool) (ids []int64, escalated string) {
	s := inc.Services[se.service]
	if s == nil {
		s = &svcState{Onset: c.troubleSince(se)}
		inc.Services[se.service] = s
	}
	if counts {
		s.Surprise += -se.log2p
		inc.Surprise += -se.log2p
	}
	if extends && -se.log2p > inc.Peak {
		if inc.Peak > 0 {
			escalated = fmt.Sprintf("escalation: %s, %.0f bits in one minute (was at most %.0f)", se.service, -se.log2p, inc.Peak)
		}
		inc.Peak = -se.log2p
	}
	if se.earliest.Before(s.Onset) {
		s.Onset = se.earliest
	}
	if se.latest.After(s.Last) {
		s.Last = se.latest
	}
	if extends && se.latest.After(inc.Last) {
		inc.Last = se.latest
	}
	for _, ce := range se.cells {
		s.Signals[ce.signal] = true
		for _, i := range ce.members {
			a := &as[i]
			s.Anomalies++
			inc.Members++
			s.addEvidence(a, c.cfg.MaxEvidence)
			if a.ID != 0 {
				ids = append(ids, a.ID)
			}
		}
	}
	for _, k := range se.kinds {
		if len(inc.Kinds) < maxLinks {
			inc.Kinds[k] = true
		}
	}
	for _, t := range se.traces {
		if len(inc.Traces) < maxLinks {
			inc.Traces[t] = true
		}
	}
	return ids, escalated
}

func (s *svcState) addEvidence(a *Anomaly, maxGroups int) {
	peer := ""
	if a.Reason == ReasonEdgeLatency {
		peer = a.caller()
	}
	for i := range s.Evidence {
		e := &s.Evidence[i]
		if e.Signal == a.Signal && e.Reason == a.reason() && e.Kind == a.Kind && e.PeerService == peer {
			e.Count++
			if a.ObservedAt.Before(e.First) {
				e.First = a.ObservedAt
			}
			if a.ObservedAt.After(e.Last) {
				e.Last = a.ObservedAt
			}
			e.MinPValue = min(e.MinPValue, a.PValue)
			if !severe(e.ExampleSeverity) && severe(a.Severity) {
				// An error line explains more than the INFO line before it.
				e.Example, e.ExampleSeverity = a.Summary, a.Severity
			}
			return
		}
	}
	if len(s.Evidence) >= maxGroups {
		s.Dropped++
		return
	}
	s.Evidence = append(s.Evidence, Evidence{Signal: a.Signal, Reason: a.reason(), Kind: a.Kind, PeerService: peer,
		Count: 1, First: a.ObservedAt, Last: a.ObservedAt, Example: a.Summary, MinPValue: a.PValue, ExampleSeverity: a.Severity})
}

// touch remembers an incident's ranking before a bucket changed it.
type touch struct {
	leader    string
	ranked    []RankedService
	opened    bool
	joined    []int64
	escalated string
}

func (t *touch) event(c *Correlator, inc *incState) Event {
	ex := inc.export(c)
	ev := Event{Type: Updated, Incident: ex, At: inc.Last, NewMembers: t.joined}
	if t.opened {
		ev.Type, ev.At, ev.Material, ev.Change = Opened, inc.Opened, true, "opened: "+ex.Title
		return ev
	}
	var changes []string
	if inc.Leader != t.leader {
		changes = append(changes, fmt.Sprintf("new leader %s (was %s)", inc.Leader, t.leader))
	}
	if t.escalated != "" {
		changes = append(changes, t.escalated)
	}
	known := map[string]bool{}
	for _, r := range t.ranked {
		known[r.Service] = true
	}
	for _, r := range inc.Ranked {
		if !known[r.Service] {
			changes = append(changes, r.Service+" joined")
		}
	}
	if len(changes) > 0 {
		ev.Material = true
		ev.Change = strings.Join(changes, "; ")
	} else {
		ev.Change = fmt.Sprintf("%d anomalies in %d services", inc.Members, len(inc.Services))
	}
	return ev
}

// export copies inc into the public form.
func (inc *incState) export(c *Correlator) Incident {
	out := Incident{
		ID: inc.ID, Opened: inc.Opened, LastEvidence: inc.Last, Closed: inc.Closed,
		Members: inc.Members, Surprise: inc.Surprise,
	}
	var sig [numSignals]bool
	for _, s := range inc.Services {
		for i, on := range s.Signals {
			sig[i] = sig[i] || on
		}
	}
	for i, on := range sig {
		if on {
			out.Signals = append(out.Signals, signalNames[i])
		}
	}
	out.Services = make([]RankedService, len(inc.Ranked))
	for i, r := range inc.Ranked {
		r.Signals = append([]string(nil), r.Signals...)
		r.Why = append([]string(nil), r.Why...)
		r.Evidence = append([]Evidence(nil), r.Evidence...)
		out.Services[i] = r
	}
	out.Title = title(&out)
	return out
}

// title is "<leader>: <what was seen there>[; <what else>]".
func title(inc *Incident) string {
	if len(inc.Services) == 0 {
		return "incident"
	}
	lead := inc.Services[0]
	var parts []string
	for i, e := range lead.Evidence {
		if i == 2 {
			break
		}
		parts = append(parts, describe(e))
	}
	t := lead.Service + ": " + strings.Join(parts, "; ")
	if n := len(inc.Services) - 1; n > 0 {
		t += fmt.Sprintf(" (+%d more service%s)", n, plural(n))
	}
	return t
}

func describe(e Evidence) string {
	ex := e.Example
	if len(ex) > 60 {
		ex = ex[:57] + "..."
	}
	q := ""
	if ex != "" {
		q = " `" + ex + "`"
	}
	n := e.Count
	switch e.Reason {
	case ReasonErrors:
		return fmt.Sprintf("burst of errors, %d record%s%s", n, plural(n), q)
	case ReasonRate:
		return fmt.Sprintf("burst of a known kind, %d record%s%s", n, plural(n), q)
	case ReasonLatency:
		return fmt.Sprintf("slow operations, %d span%s%s", n, plural(n), q)
	case ReasonEdgeLatency:
		if e.PeerService == "" {
			return fmt.Sprintf("latency of calls to it, %d span%s", n, plural(n))
		}
		return fmt.Sprintf("latency of calls to it from %s, %d span%s", e.PeerService, n, plural(n))
	case ReasonValue:
		return fmt.Sprintf("metric out of its range%s", q)
	case ReasonDrift:
		return fmt.Sprintf("%s drifted from the baseline, %d record%s", e.Signal, n, plural(n))
	}
	return fmt.Sprintf("unfamiliar %s, %d record%s%s", recordNoun(e.Signal), n, plural(n), q)
}

func recordNoun(signal string) string {
	switch signal {
	case SignalTraces:
		return "spans"
	case SignalMetrics:
		return "metric values"
	}
	return "log lines"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// sortEvidence orders evidence groups largest first (then earliest).
func sortEvidence(ev []Evidence) {
	sort.SliceStable(ev, func(i, j int) bool {
		if ev[i].Count != ev[j].Count {
			return ev[i].Count > ev[j].Count
		}
		return ev[i].First.Before(ev[j].First)
	})
}
