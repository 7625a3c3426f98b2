package incident

import (
	"math"
	"sort"
	"strings"
	"time"
)

// Correlator turns a stream of anomalies into incidents. Feed it anomalies
// in (roughly) observed-time order with Add, call-graph edges with AddEdge,
// and let time pass with Advance; each returns the incident events it
// caused. It is deterministic: the same calls in the same order give the
// same events. It is not safe for concurrent use.
//
// How it decides is described in the package documentation (doc.go).
type Correlator struct {
	cfg  Config
	keep float64 // per-bucket decay of the backgrounds
	st   state
}

// state is everything a snapshot holds.
type state struct {
	// Backgrounds per evidence stream, keyed by streamKey.
	Backgrounds map[string]*rate
	// Services seen so far: the number of tests per bucket behind the
	// open level.
	Services map[string]bool
	Clocks   [numSignals]signalClock
	// Pooled counts the anomalies of each signal and evidence class per
	// bucket (all services), and Streams the services with such a stream:
	// together the typical stream's rate, the prior of a stream with
	// little history. Keyed by classKey.
	Pooled  map[string]*rate
	Streams map[string]int
	Graph   graph
	// Pending holds anomalies of buckets not tested yet, by bucket index.
	Pending map[int64][]Anomaly
	// Next is the index of the next bucket to test (valid once Started).
	Next    int64
	Started bool
	MaxSeen time.Time
	// Open incidents, in opening order.
	Open []*incState
	// Recent holds each service's evidence (log2 p) in the buckets before
	// the current one, for the window test (window.go).
	Recent map[string][]bucketEvidence
	// Trouble holds each service's current run of supporting evidence
	// (trouble.go): where its trouble began, for onset order.
	Trouble map[string]troubleRun
}

// signalClock counts the buckets in which a signal had data: backgrounds
// decay per counted bucket, so a gap in the data (SilenceGap without any
// anomaly of the signal) does not make every stream of it look quiet.
type signalClock struct {
	Clock      int64
	LastActive int64
	Started    bool
	// Resumed is the bucket in which the signal last came back after an
	// absence.
	Resumed int64
}

// New returns a correlator with the given settings.
func New(cfg Config) (*Correlator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Correlator{cfg: cfg, keep: keepFactor(cfg), st: state{
		Backgrounds: map[string]*rate{},
		Services:    map[string]bool{},
		Pooled:      map[string]*rate{},
		Streams:     map[string]int{},
		Graph:       newGraph(),
		Pending:     map[int64][]Anomaly{},
		Recent:      map[string][]bucketEvidence{},
		Trouble:     map[string]troubleRun{},
	}}, nil
}

func keepFactor(cfg Config) float64 {
	return math.Pow(0.5, float64(cfg.Bucket)/float64(cfg.BackgroundHalfLife))
}

// Config returns the correlator's settings.
func (c *Correlator) Config() Config { return c.cfg }

// Add feeds one anomaly. Anomalies may arrive out of order by up to
// Config.Lateness; an anomaly for a bucket already tested joins the open
// incident that holds its service, if any, and is otherwise treated as
// routine. It returns the events the anomaly caused (most calls: none), or
// an error naming what makes the anomaly unusable (nothing is changed then).
func (c *Correlator) Add(a Anomaly) ([]Event, error) {
	if err := a.validate(); err != nil {
		return nil, err
	}
	b := c.bucketOf(a.ObservedAt)
	if !c.st.Started {
		c.st.Started, c.st.Next = true, b
	}
	if a.PeerService != "" {
		c.st.Graph.add(a.Service, a.PeerService, a.ObservedAt)
	}
	if b < c.st.Next {
		return c.late(a), nil
	}
	c.st.Pending[b] = append(c.st.Pending[b], a)
	if a.ObservedAt.After(c.st.MaxSeen) {
		c.st.MaxSeen = a.ObservedAt
		return c.processUntil(c.st.MaxSeen.Add(-c.cfg.Lateness)), nil
	}
	return nil, nil
}

// AddEdge records that caller called callee at the observed time at. A
// tier that sees whole traces learns edges from parent and child spans of
// different services; edge-latency anomalies add their own.
func (c *Correlator) AddEdge(caller, callee string, at time.Time) {
	c.st.Graph.add(caller, callee, at)
}

// Advance declares that every anomaly observed before t has been fed: the
// buckets ending at or before t are tested and incidents quiet since
// t - Quiet are closed.
func (c *Correlator) Advance(t time.Time) []Event {
	if !c.st.Started {
		return nil
	}
	return c.processUntil(t)
}

// Flush tests every pending bucket (the end of a replay). Open incidents
// stay open.
func (c *Correlator) Flush() []Event {
	if !c.st.Started {
		return nil
	}
	last := c.st.Next - 1
	for b := range c.st.Pending {
		last = max(last, b)
	}
	return c.processUntil(c.bucketStart(last + 1))
}

// Incidents returns copies of the open incidents, in opening order.
func (c *Correlator) Incidents() []Incident {
	out := make([]Incident, 0, len(c.st.Open))
	for _, inc := range c.st.Open {
		out = append(out, inc.export(c))
	}
	return out
}

// Watermark is the end of the last tested bucket: evidence before it has
// been weighed.
func (c *Correlator) Watermark() time.Time {
	if !c.st.Started {
		return time.Time{}
	}
	return c.bucketStart(c.st.Next)
}

func (c *Correlator) bucketOf(t time.Time) int64 {
	ns, w := t.UnixNano(), int64(c.cfg.Bucket)
	b := ns / w
	if ns%w < 0 {
		b--
	}
	return b
}

func (c *Correlator) bucketStart(b int64) time.Time {
	return time.Unix(0, b*int64(c.cfg.Bucket)).UTC()
}

func (c *Correlator) gapBuckets() int64 {
	return max(int64(c.cfg.SilenceGap/c.cfg.Bucket), 1)
}

// processUntil tests the buckets that end at or before t, in order.
func (c *Correlator) processUntil(t time.Time) []Event {
	var events []Event
	for {
		end := c.bucketStart(c.st.Next + 1)
		if end.After(t) {
			break
		}
		if skip := c.idleUntil(t); skip > c.st.Next {
			c.st.Next = skip
			continue
		}
		events = c.processBucket(c.st.Next, events)
		c.st.Next++
	}
	if c.cfg.EdgeTTL > 0 && c.st.Next%64 == 0 {
		c.st.Graph.forget(c.bucketStart(c.st.Next).Add(-c.cfg.EdgeTTL))
	}
	if c.st.Next%64 == 0 {
		c.forgetStale()
		c.forgetRecent(c.st.Next)
		c.forgetTrouble(c.bucketStart(c.st.Next))
	}
	return events
}

// forgetStale drops the backgrounds of streams without an anomaly for
// four half-lives (what they learned has decayed to a sixteenth: such a
// stream is as good as new), and the services left without any, so that
// memory follows the services seen recently, not every name ever seen.
func (c *Correlator) forgetStale() {
	horizon := int64(4 * c.cfg.BackgroundHalfLife / c.cfg.Bucket)
	live := map[string]bool{}
	for k, bg := range c.st.Backgrounds {
		parts := strings.SplitN(k, "\x00", 3)
		sig := signalIndex(parts[1])
		if c.st.Clocks[sig].Clock-bg.Clock > horizon {
			delete(c.st.Backgrounds, k)
			if ck := classKey(sig, parts[2]); c.st.Streams[ck] > 0 {
				c.st.Streams[ck]--
			}
			continue
		}
		live[parts[0]] = true
	}
	for s := range c.st.Services {
		if !live[s] {
			delete(c.st.Services, s)
		}
	}
}

// idleUntil returns the bucket to jump to when nothing can happen before
// it (no pending anomalies, no open incident, every signal silent past its
// gap), or Next when the next bucket must be visited.
func (c *Correlator) idleUntil(t time.Time) int64 {
	if len(c.st.Open) > 0 {
		return c.st.Next
	}
	if _, ok := c.st.Pending[c.st.Next]; ok {
		return c.st.Next
	}
	for _, ck := range c.st.Clocks {
		if ck.Started && c.st.Next-ck.LastActive <= c.gapBuckets() {
			return c.st.Next
		}
	}
	target := c.bucketOf(t) // the bucket containing t has not ended
	for b := range c.st.Pending {
		target = min(target, b)
	}
	return max(target, c.st.Next)
}

// cell is the anomalies of one evidence stream in one bucket (a service,
// a signal and an evidence class: the reason, split by severity).
type cell struct {
	key     string
	service string // the blamed service
	signal  int
	reason  string
	members []int // indices into the bucket's anomalies
	level   int   // strength level of its strongest anomaly (strength.go)
	log2p   float64
}

// priorRate is the prior mean of a stream of the signal and evidence
// class: the typical such stream's flags per bucket (all the class's
// anomalies over its streams; errors are rarer than unfamiliar INFO lines),
// shrunk toward PriorRate while the signal is young. A detector that flags
// little makes a few flags strong evidence; one that flags a lot, weak.
func (c *Correlator) priorRate(signal int, class string) float64 {
	k := classKey(signal, class)
	p := c.st.Pooled[k]
	if p == nil {
		return c.cfg.PriorRate
	}
	p.catchUp(c.st.Clocks[signal].Clock+1, c.keep)
	perStream := p.X / float64(max(c.st.Streams[k], 1))
	w0 := c.cfg.PriorBuckets
	return (perStream + c.cfg.PriorRate*w0) / (p.W + w0)
}

// minLog2P bounds a stream's evidence in one bucket (p >= 2^-1000), so
// that one huge burst stays a finite number of bits.
const minLog2P = -1000

// classKey names a signal's evidence class ("logs\x00errors/severe").
func classKey(signal int, class string) string { return signalNames[signal] + "\x00" + class }

func signalOfClassKey(k string) int {
	if i := strings.IndexByte(k, 0); i >= 0 {
		return signalIndex(k[:i])
	}
	return 0
}

func streamKey(service string, signal int, reason string) string {
	return service + "\x00" + signalNames[signal] + "\x00" + reason
}

// serviceEvidence is one service's evidence in one bucket.
type serviceEvidence struct {
	service string
	cells   []*cell
	log2p   float64 // Fisher-combined over its cells
	// window is the window test's log2 p-value (window.go): what decides
	// whether the evidence is significant; log2p alone is what it adds to
	// the incident's surprise.
	window   float64
	episode  bool // some anomaly belongs to an ongoing episode
	settling bool // all its signals came back from an absence just now
	kinds    []string
	traces   []string
	earliest time.Time
	latest   time.Time
}

func (c *Correlator) processBucket(b int64, events []Event) []Event {
	as := c.st.Pending[b]
	delete(c.st.Pending, b)
	var has [numSignals]bool
	for i := range as {
		has[signalIndex(as[i].Signal)] = true
	}
	for s := range c.st.Clocks {
		ck := &c.st.Clocks[s]
		if has[s] {
			switch {
			case !ck.Started:
				ck.Resumed = math.MinInt64 / 2 // a first appearance is not a resumption
			case b-ck.LastActive > c.gapBuckets():
				ck.Resumed = b
			}
			ck.Started, ck.LastActive = true, b
		}
		if ck.Started && b-ck.LastActive <= c.gapBuckets() {
			ck.Clock++
		}
	}
	var strengths map[string][]int
	if len(as) > 0 {
		events, strengths = c.evaluate(b, as, events)
	}
	// The pooled rates learn the bucket after it was judged, so that a
	// burst does not raise its own prior (classes without anomalies in the
	// bucket count it as zero when next seen).
	if len(as) > 0 {
		pooled := map[string]int{}
		for i := range as {
			pooled[classKey(signalIndex(as[i].Signal), as[i].evidenceClass())]++
		}
		for _, k := range sortedKeys(pooled) {
			p := c.st.Pooled[k]
			if p == nil {
				p = &rate{}
				c.st.Pooled[k] = p
			}
			p.add(c.st.Clocks[signalOfClassKey(k)].Clock, float64(pooled[k]), c.keep)
			for _, level := range strengths[k] {
				p.markStrength(level, 1)
			}
		}
	}
	end := c.bucketStart(b + 1)
	kept := c.st.Open[:0]
	for _, inc := range c.st.Open {
		if !inc.Last.Add(c.cfg.Quiet).After(end) {
			inc.Closed = inc.Last.Add(c.cfg.Quiet)
			events = append(events, Event{Type: Closed, Incident: inc.export(c), At: inc.Closed, Material: true,
				Change: "closed after " + c.cfg.Quiet.String() + " without evidence"})
			continue
		}
		kept = append(kept, inc)
	}
	for i := len(kept); i < len(c.st.Open); i++ {
		c.st.Open[i] = nil
	}
	c.st.Open = kept
	return events
}

// evaluate weighs one bucket's anomalies against the backgrounds and
// assigns the significant ones to incidents.
func (c *Correlator) evaluate(b int64, as []Anomaly, events []Event) ([]Event, map[string][]int) {
	cells := map[string]*cell{}
	for i := range as {
		a := &as[i]
		svc, sig, reason := a.blamed(), signalIndex(a.Signal), a.evidenceClass()
		k := streamKey(svc, sig, reason)
		ce := cells[k]
		if ce == nil {
			ce = &cell{key: k, service: svc, signal: sig, reason: reason}
			cells[k] = ce
		}
		ce.members = append(ce.members, i)
	}
	// Test each stream against its background, then learn the bucket.
	byService := map[string]*serviceEvidence{}
	strengths := map[string][]int{} // class -> the levels its streams reached
	for _, k := range sortedKeys(cells) {
		ce := cells[k]
		bg := c.st.Backgrounds[k]
		if bg == nil {
			bg = &rate{}
			c.st.Backgrounds[k] = bg
			c.st.Streams[classKey(ce.signal, ce.reason)]++
		}
		clock := c.st.Clocks[ce.signal].Clock
		ce.level = noStrength
		for _, i := range ce.members {
			ce.level = max(ce.level, strengthLevel(as[i].PValue))
		}
		pi := c.strengthPrior(ce.signal, ce.reason, ce.level)
		ce.log2p = max(bg.test(clock, len(ce.members), ce.level, pi, c.keep, c.priorRate(ce.signal, ce.reason), c.cfg.PriorBuckets), minLog2P)
		if ce.level >= 0 {
			strengths[classKey(ce.signal, ce.reason)] = append(strengths[classKey(ce.signal, ce.reason)], ce.level)
		}
		c.st.Services[ce.service] = true

		se := byService[ce.service]
		if se == nil {
			se = &serviceEvidence{service: ce.service}
			byService[ce.service] = se
		}
		se.cells = append(se.cells, ce)
		for _, i := range ce.members {
			a := &as[i]
			if !a.Episode.IsZero() {
				se.episode = true
			}
			if k := a.kind(); k != "" {
				se.kinds = append(se.kinds, k)
			}
			if a.TraceID != "" {
				se.traces = append(se.traces, a.TraceID)
			}
			if se.earliest.IsZero() || a.ObservedAt.Before(se.earliest) {
				se.earliest = a.ObservedAt
			}
			if a.ObservedAt.After(se.latest) {
				se.latest = a.ObservedAt
			}
		}
	}
	ordered := make([]*serviceEvidence, 0, len(byService))
	for _, se := range byService {
		sum := 0.0
		se.settling = true
		for _, ce := range se.cells {
			sum += ce.log2p
			if b-c.st.Clocks[ce.signal].Resumed >= settleBuckets {
				se.settling = false
			}
		}
		se.log2p = fisherLog2(sum, len(se.cells))
		se.window = c.windowTest(b, se.service, se.log2p)
		ordered = append(ordered, se)
	}
	sort.Slice(ordered, func(i, j int) bool {
		if ordered[i].log2p != ordered[j].log2p {
			return ordered[i].log2p < ordered[j].log2p
		}
		return ordered[i].service < ordered[j].service
	})

	openLevel := c.openLevel()
	joinLevel := math.Log2(c.cfg.JoinPValue)
	start := c.bucketStart(b)
	touched := map[*incState]*touch{}
	var order []*incState
	for _, se := range ordered {
		strong := se.window <= openLevel && !se.settling
		support := min(se.log2p, se.window) <= joinLevel
		if !strong && !support && !se.episode {
			continue
		}
		if support {
			c.noteTrouble(se)
		}
		inc := c.relatedIncident(se, start, support)
		if inc == nil {
			if !strong {
				continue
			}
			inc = c.open(se)
		}
		t := touched[inc]
		if t == nil {
			t = &touch{leader: inc.Leader, ranked: inc.Ranked, opened: inc.Members == 0}
			touched[inc] = t
			order = append(order, inc)
		}
		ids, escalated := c.join(inc, se, as, support, strong || se.episode)
		t.joined = append(t.joined, ids...)
		if escalated != "" && !t.opened {
			t.escalated = escalated
		}
	}
	for _, inc := range order {
		t := touched[inc]
		inc.rerank(c)
		events = append(events, t.event(c, inc))
	}
	return events, strengths
}

// openLevel is log2 of the per-service, per-bucket level of the open test:
// the false-alarm budget per hour spread over the tests an hour makes
// (one per known service per bucket).
func (c *Correlator) openLevel() float64 {
	perHour := float64(time.Hour) / float64(c.cfg.Bucket)
	tests := perHour * float64(max(len(c.st.Services), 1))
	return math.Log2(c.cfg.FalseIncidentsPerHour / tests)
}

// relatedIncident is the open incident se's evidence belongs to, among
// those with evidence within GroupGap: the one that holds the service; or,
// for significant evidence of a service not yet in one, within JoinWindow
// of its opening, one with a service adjacent to it in the call graph that
// showed trouble within GroupGap, a record of the same kind, or an anomaly
// of the same trace. Episode-only evidence (not significant) only
// continues an incident that holds its own service.
func (c *Correlator) relatedIncident(se *serviceEvidence, start time.Time, significant bool) *incState {
	var best *incState
	for _, inc := range c.st.Open {
		if inc.Last.Before(start.Add(-c.cfg.GroupGap)) {
			continue
		}
		if _, ok := inc.Services[se.service]; ok {
			return inc
		}
		if !significant || best != nil || !start.Before(inc.Opened.Add(c.cfg.JoinWindow)) {
			continue
		}
		if c.linked(inc, se, start) {
			best = inc
		}
	}
	return best
}

func (c *Correlator) linked(inc *incState, se *serviceEvidence, start time.Time) bool {
	for _, m := range sortedKeys(inc.Services) {
		if inc.Services[m].Last.Before(start.Add(-c.cfg.GroupGap)) {
			continue
		}
		if c.st.Graph.adjacent(m, se.service) {
			return true
		}
	}
	for _, k := range se.kinds {
		if inc.Kinds[k] {
			return true
		}
	}
	for _, tr := range se.traces {
		if inc.Traces[tr] {
			return true
		}
	}
	return false
}

// late handles an anomaly for a bucket already tested: it joins the open
// incident that holds its service, if any.
func (c *Correlator) late(a Anomaly) []Event {
	svc := a.blamed()
	for _, inc := range c.st.Open {
		s, ok := inc.Services[svc]
		if !ok || a.ObservedAt.Before(inc.Opened.Add(-c.cfg.GroupGap)) {
			continue
		}
		inc.Members++
		s.Anomalies++
		s.addEvidence(&a, c.cfg.MaxEvidence)
		s.Signals[signalIndex(a.Signal)] = true
		var ids []int64
		if a.ID != 0 {
			ids = []int64{a.ID}
		}
		return []Event{{Type: Updated, Incident: inc.export(c), At: a.ObservedAt, Change: "late evidence for " + svc, NewMembers: ids}}
	}
	return nil
}

// settleBuckets: evidence in the first bucket of a signal that came back
// after an absence (SilenceGap without any anomaly of it) cannot open an
// incident by itself: data resuming after a gap (a collector restart, a
// healed partition, a drained backlog) carries artifacts in every
// service at once. It still joins incidents as supporting evidence.
const settleBuckets = 1
