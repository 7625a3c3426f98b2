package incident

import "time"

// Onset order is evidence of cause: trouble that starts first explains
// what follows (rank.go). A service's first sign of trouble is often
// supporting evidence (p below JoinPValue) that joined nothing, because no
// incident was open yet or none was related: a callee's first error lines
// a minute before its callers' burst opens the incident. So the correlator
// remembers each service's current run of supporting evidence, and a
// service that joins an incident has its onset at the start of that run:
// buckets with supporting evidence no more than GroupGap apart form one
// run. The evidence of the earlier buckets is not added to the incident
// (their anomalies were routine for the incidents of their time); only
// the time trouble began is kept.

// troubleRun is one service's run of supporting evidence.
type troubleRun struct {
	First, Last time.Time
}

// noteTrouble extends (or starts) the service's run with se.
func (c *Correlator) noteTrouble(se *serviceEvidence) {
	r, ok := c.st.Trouble[se.service]
	if !ok || se.earliest.Sub(r.Last) > c.cfg.GroupGap {
		r = troubleRun{First: se.earliest}
	}
	if se.earliest.Before(r.First) {
		r.First = se.earliest
	}
	if se.latest.After(r.Last) {
		r.Last = se.latest
	}
	c.st.Trouble[se.service] = r
}

// troubleSince is the onset of se's service when it joins an incident:
// the start of its current run of supporting evidence, or se's own
// earliest anomaly.
func (c *Correlator) troubleSince(se *serviceEvidence) time.Time {
	if r, ok := c.st.Trouble[se.service]; ok && r.First.Before(se.earliest) && se.earliest.Sub(r.Last) <= c.cfg.GroupGap {
		return r.First
	}
	return se.earliest
}

// forgetTrouble drops the runs that ended more than GroupGap before now.
func (c *Correlator) forgetTrouble(now time.Time) {
	for s, r := range c.st.Trouble {
		if now.Sub(r.Last) > c.cfg.GroupGap {
			delete(c.st.Trouble, s)
		}
	}
}
