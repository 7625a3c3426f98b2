package incident

import (
	"fmt"
	"sort"
	"time"
)

// rerank orders the incident's services by how well each explains the
// whole incident:
//
//   - its own surprise (bits of evidence against its background),
//   - for a service with no evidence of its own (a suspect): called by two
//     or more troubled services, it may be what they have in common (a
//     callee made slow by the network or failing quietly shows only in
//     its callers),
//   - agreement across signals (evidence in two or three signals),
//   - onset order (trouble that starts first is more likely the cause),
//   - the call graph: a service whose callers are also in trouble, and
//     whose trouble started no later than theirs, explains them and is
//     credited part of their evidence (at most as much as its own); a
//     service whose own callee started
//     first is discounted (its trouble is probably inherited).
func (inc *incState) rerank(c *Correlator) {
	names := sortedKeys(inc.Services)
	var first time.Time
	for _, n := range names {
		if s := inc.Services[n]; first.IsZero() || s.Onset.Before(first) {
			first = s.Onset
		}
	}
	slack := c.cfg.Bucket
	ranked := make([]RankedService, 0, len(names))
	for _, n := range names {
		s := inc.Services[n]
		r := RankedService{Service: n, Surprise: s.Surprise, Onset: s.Onset, Anomalies: s.Anomalies}
		nsig := 0
		for i, on := range s.Signals {
			if on {
				nsig++
				r.Signals = append(r.Signals, signalNames[i])
			}
		}
		score := s.Surprise
		if nsig > 1 {
			score *= 1 + 0.25*float64(nsig-1)
			r.Why = append(r.Why, fmt.Sprintf("evidence in %d signals", nsig))
		}
		if !s.Onset.After(first.Add(slack)) {
			score *= 1.2
			r.Why = append(r.Why, "among the first to show trouble")
		}
		callers, inherited := 0, false
		credit := 0.0
		for _, m := range names {
			if m == n {
				continue
			}
			o := inc.Services[m]
			if c.st.Graph.calls(m, n) && !s.Onset.After(o.Onset.Add(slack)) {
				callers++
				credit += 0.5 * o.Surprise
			}
			if c.st.Graph.calls(n, m) && !o.Onset.After(s.Onset.Add(slack)) {
				inherited = true
			}
		}
		if callers > 0 {
			// A callee explains its callers' trouble only as far as it
			// shows trouble itself: a barely flagged callee of busy
			// callers must not lead on their evidence alone (a callee
			// with none of its own is a suspect, below).
			score += min(credit, s.Surprise)
			r.Why = append(r.Why, fmt.Sprintf("callee of %d troubled service%s", callers, plural(callers)))
		}
		if inherited {
			score *= 0.7
			r.Why = append(r.Why, "calls a service in trouble since no later")
		}
		r.Score = score
		r.Evidence = append([]Evidence(nil), s.Evidence...)
		sortEvidence(r.Evidence)
		ranked = append(ranked, r)
	}
	ranked = append(ranked, inc.suspects(c, first)...)
	sort.SliceStable(ranked, func(i, j int) bool {
		if ranked[i].Score != ranked[j].Score {
			return ranked[i].Score > ranked[j].Score
		}
		if !ranked[i].Onset.Equal(ranked[j].Onset) {
			return ranked[i].Onset.Before(ranked[j].Onset)
		}
		return ranked[i].Service < ranked[j].Service
	})
	inc.Ranked = ranked
	inc.Leader = ""
	if len(ranked) > 0 {
		inc.Leader = ranked[0].Service
	}
}

// suspects are services without evidence of their own that two or more of
// the incident's troubled services call: a callee slowed down by the
// network, or failing without logging, shows only in its callers. Each
// troubled caller lends half its surprise, split over the callees it has,
// so a caller with many callees blames each of them little. At most
// maxSuspects are kept, most credited first.
func (inc *incState) suspects(c *Correlator, first time.Time) []RankedService {
	credit := map[string]float64{}
	callers := map[string]int{}
	for _, m := range sortedKeys(inc.Services) {
		s := inc.Services[m]
		if s.Surprise <= 0 {
			continue
		}
		callees := c.st.Graph.callees(m)
		for _, x := range callees {
			if _, member := inc.Services[x]; member {
				continue
			}
			credit[x] += 0.5 * s.Surprise / float64(len(callees))
			callers[x]++
		}
	}
	var out []RankedService
	for _, x := range sortedKeys(credit) {
		if callers[x] < 2 {
			continue
		}
		out = append(out, RankedService{Service: x, Score: credit[x], Onset: first,
			Why: []string{fmt.Sprintf("no evidence of its own; called by %d troubled services", callers[x])}})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	if len(out) > maxSuspects {
		out = out[:maxSuspects]
	}
	return out
}

// maxSuspects bounds the suspects listed per incident.
const maxSuspects = 3
