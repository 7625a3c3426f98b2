// Package servicegraph learns the service call graph from spans. It is the
// one definition of "an edge from spans", used by the driftlock exporter
// (which stores the graph for `driftlock serve`'s incident correlator) and
// by `driftlock eval nezha` (which feeds it to the correlator in process).
//
// An edge is a call: a span whose parent span belongs to another service is
// a call from the parent's service (the caller) to the span's service (the
// callee), observed at the child span's start time. Parent and child are
// joined in whichever order they arrive, within one batch or across
// batches: the learner keeps a bounded memory of recent span ids (see
// Options.SpanMemory). Both spans of a call must pass through the same
// learner, so in a fleet it belongs on the tier that receives whole traces
// (behind a load-balancing exporter routed by trace id).
package servicegraph

import (
	"cmp"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Edge is one caller -> callee relation as seen in one period (between two
// Drain calls): the observed times of its first and last call (the callee
// span's start) and the number of calls.
type Edge struct {
	Caller, Callee string
	First, Last    time.Time
	Calls          int64
}

// Defaults and bounds.
const (
	// DefaultSpanMemory is the default number of span ids remembered, for
	// each of the two tables (spans seen, and children waiting for a
	// parent not seen yet): 131,072 slots of 24 bytes, 6 MiB in all. At
	// 20,000 spans/s it covers the last ~6 s of spans, far more than the
	// gap between a call's spans in one export (they end within the
	// parent's duration and travel in the same or the next batches).
	DefaultSpanMemory = 1 << 17
	// DefaultMaxEdges bounds the distinct edges held between two Drain
	// calls; calls of edges past it are counted in Dropped.
	DefaultMaxEdges = 10_000
	// maxServices bounds the interned service names; past it the learner
	// starts over (it forgets its span memory, not its edges).
	maxServices = 1 << 16
	// ways is the associativity of the span tables: a span id may sit in
	// any of the ways slots of its bucket, and a new one replaces the
	// oldest of them.
	ways = 8
)

// Options sizes a Learner; zero values take the defaults.
type Options struct {
	// SpanMemory is the number of slots of each span table, rounded up to
	// a power of two (at least 64).
	SpanMemory int
	// MaxEdges bounds the distinct edges between two Drain calls.
	MaxEdges int
}

// Learner joins child spans to their parents and accumulates the edges.
// Its memory is fixed at construction (two tables of SpanMemory slots)
// plus the service names and at most MaxEdges edges; observing spans
// allocates nothing once a service and an edge have been seen. Not safe
// for concurrent use.
type Learner struct {
	spans   table // span id -> its service
	orphans table // parent span id -> service and time of a child whose parent was not seen yet
	seq     uint32

	ids   map[string]uint32
	names []string

	edges    map[pair]tally
	spill    []Edge // edges of names forgotten by a restart, until the next Drain
	maxEdges int
	dropped  int64
}

type pair struct{ caller, callee uint32 }

type tally struct {
	first, last int64 // unix ns
	calls       int64
}

// New returns a learner sized by opt.
func New(opt Options) *Learner {
	n := opt.SpanMemory
	if n <= 0 {
		n = DefaultSpanMemory
	}
	if opt.MaxEdges <= 0 {
		opt.MaxEdges = DefaultMaxEdges
	}
	return &Learner{
		spans: newTable(n), orphans: newTable(n),
		ids: map[string]uint32{}, edges: map[pair]tally{}, maxEdges: opt.MaxEdges,
	}
}

// ObserveTraces learns the edges of a batch of spans. fallback is the
// observed time of a call whose callee span has no timestamps (the
// exporter passes its receive time). Resources without service.name are
// skipped.
func (l *Learner) ObserveTraces(td ptrace.Traces, fallback time.Time) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		v, ok := rs.Resource().Attributes().Get("service.name")
		if !ok || v.Type() != pcommon.ValueTypeStr || v.Str() == "" {
			continue
		}
		svc := l.intern(v.Str())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				at := int64(sp.StartTimestamp())
				if at == 0 {
					at = int64(sp.EndTimestamp())
				}
				if at == 0 {
					at = fallback.UnixNano()
				}
				l.observe(spanKey(sp.SpanID()), spanKey(sp.ParentSpanID()), svc, at)
			}
		}
	}
}

// observe joins one span (id, parent) of service svc started at at.
func (l *Learner) observe(id, parent uint64, svc uint32, at int64) {
	l.seq++
	if parent != 0 {
		if caller, ok := l.spans.lookup(parent); ok {
			if caller != svc {
				l.record(caller, svc, at)
			}
		} else {
			l.orphans.insert(parent, svc, at, l.seq, false)
		}
	}
	if id == 0 {
		return
	}
	l.spans.insert(id, svc, 0, l.seq, true)
	l.orphans.take(id, func(child uint32, childAt int64) {
		if child != svc {
			l.record(svc, child, childAt)
		}
	})
}

func (l *Learner) record(caller, callee uint32, at int64) {
	k := pair{caller, callee}
	t, ok := l.edges[k]
	if !ok {
		if len(l.edges) >= l.maxEdges {
			l.dropped++
			return
		}
		t = tally{first: at, last: at}
	}
	t.first, t.last, t.calls = min(t.first, at), max(t.last, at), t.calls+1
	l.edges[k] = t
}

// Drain appends the edges learned since the last Drain to dst, sorted by
// caller then callee, and starts a new period.
func (l *Learner) Drain(dst []Edge) []Edge {
	start := len(dst)
	dst = append(dst, l.spill...)
	l.spill = l.spill[:0]
	for k, t := range l.edges {
		dst = append(dst, Edge{Caller: l.names[k.caller], Callee: l.names[k.callee],
			First: time.Unix(0, t.first).UTC(), Last: time.Unix(0, t.last).UTC(), Calls: t.calls})
	}
	clear(l.edges)
	// Merge writes behind where it reads, so it may work in place.
	return Merge(dst[:start], dst[start:])
}

// Restore puts edges back into the current period (e.g. after a write of
// a drained period failed), within MaxEdges.
func (l *Learner) Restore(edges []Edge) {
	for _, e := range edges {
		if e.Caller == "" || e.Callee == "" || e.Caller == e.Callee || e.Calls <= 0 {
			continue
		}
		caller, callee := l.intern(e.Caller), l.intern(e.Callee)
		k := pair{caller, callee}
		t, ok := l.edges[k]
		if !ok {
			if len(l.edges) >= l.maxEdges {
				l.dropped += e.Calls
				continue
			}
			t = tally{first: e.First.UnixNano(), last: e.Last.UnixNano()}
		}
		t.first, t.last, t.calls = min(t.first, e.First.UnixNano()), max(t.last, e.Last.UnixNano()), t.calls+e.Calls
		l.edges[k] = t
	}
}

// Dropped is the number of calls not counted because MaxEdges distinct
// edges were already held (since New).
func (l *Learner) Dropped() int64 { return l.dropped }

// Merge appends src to dst, sorted by caller and callee, with the edges
// of one caller -> callee pair combined into one (first of the firsts,
// last of the lasts, calls summed). dst's own elements before the call
// are left in place; src is reordered.
func Merge(dst, src []Edge) []Edge {
	slices.SortStableFunc(src, func(a, b Edge) int {
		return cmp.Or(cmp.Compare(a.Caller, b.Caller), cmp.Compare(a.Callee, b.Callee))
	})
	start := len(dst)
	for _, e := range src {
		if n := len(dst); n > start && dst[n-1].Caller == e.Caller && dst[n-1].Callee == e.Callee {
			p := &dst[n-1]
			if e.First.Before(p.First) {
				p.First = e.First
			}
			if e.Last.After(p.Last) {
				p.Last = e.Last
			}
			p.Calls += e.Calls
			continue
		}
		dst = append(dst, e)
	}
	return dst
}

// intern returns the number of a service name. Past maxServices names the
// learner starts over: the edges held so far are kept (spilled by name),
// the span memory is forgotten.
func (l *Learner) intern(name string) uint32 {
	if id, ok := l.ids[name]; ok {
		return id
	}
	if len(l.names) >= maxServices {
		for k, t := range l.edges {
			l.spill = append(l.spill, Edge{Caller: l.names[k.caller], Callee: l.names[k.callee],
				First: time.Unix(0, t.first).UTC(), Last: time.Unix(0, t.last).UTC(), Calls: t.calls})
		}
		clear(l.edges)
		clear(l.ids)
		l.names = l.names[:0]
		l.spans.reset()
		l.orphans.reset()
	}
	id := uint32(len(l.names))
	l.names = append(l.names, name)
	l.ids[name] = id
	return id
}

// spanKey is a span id as a table key; 0 is the empty id (OTel forbids
// an all-zero span id, so it never names a span).
func spanKey(id pcommon.SpanID) uint64 {
	return uint64(id[0]) | uint64(id[1])<<8 | uint64(id[2])<<16 | uint64(id[3])<<24 |
		uint64(id[4])<<32 | uint64(id[5])<<40 | uint64(id[6])<<48 | uint64(id[7])<<56
}

// table is a fixed-size, set-associative map from span id to a service
// and a time: a key hashes to a bucket of `ways` slots and a new key
// replaces the bucket's oldest entry, so memory never grows and the
// oldest spans are forgotten first.
type table struct {
	slots []slot
	shift uint // 64 - log2(buckets)
}

type slot struct {
	id  uint64 // 0: empty
	at  int64
	svc uint32
	seq uint32 // insertion order, compared with wrap-around
}

func newTable(n int) table {
	buckets := 8
	for buckets*ways < n {
		buckets <<= 1
	}
	shift := uint(64)
	for b := buckets; b > 1; b >>= 1 {
		shift--
	}
	return table{slots: make([]slot, buckets*ways), shift: shift}
}

func (t *table) bucket(id uint64) []slot {
	b := (id * 0x9E3779B97F4A7C15) >> t.shift // Fibonacci hashing: ids need not be random
	return t.slots[b*ways : b*ways+ways]
}

// insert stores id; unique replaces an entry with the same id rather than
// adding a second one.
func (t *table) insert(id uint64, svc uint32, at int64, seq uint32, unique bool) {
	bk := t.bucket(id)
	victim, oldest := -1, uint32(0)
	for i := range bk {
		s := &bk[i]
		if unique && s.id == id {
			victim = i
			break
		}
		switch age := seq - s.seq; {
		case s.id == 0:
			if oldest != ^uint32(0) {
				victim, oldest = i, ^uint32(0) // an empty slot beats any entry
			}
		case victim < 0 || age > oldest:
			victim, oldest = i, age
		}
	}
	bk[victim] = slot{id: id, at: at, svc: svc, seq: seq}
}

func (t *table) lookup(id uint64) (uint32, bool) {
	bk := t.bucket(id)
	for i := range bk {
		if bk[i].id == id {
			return bk[i].svc, true
		}
	}
	return 0, false
}

// take calls fn for every entry of id and removes them.
func (t *table) take(id uint64, fn func(svc uint32, at int64)) {
	bk := t.bucket(id)
	for i := range bk {
		if bk[i].id == id {
			fn(bk[i].svc, bk[i].at)
			bk[i] = slot{}
		}
	}
}

func (t *table) reset() { clear(t.slots) }
