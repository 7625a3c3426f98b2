package servicegraph

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// span is one span of a test batch.
type span struct {
	service      string
	id, parent   uint64
	start        time.Duration // after t0; <0: no timestamps
	noServiceKey bool
}

func batch(spans ...span) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		if !s.noServiceKey {
			rs.Resource().Attributes().PutStr("service.name", s.service)
		}
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetSpanID(sid(s.id))
		sp.SetParentSpanID(sid(s.parent))
		if s.start >= 0 {
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(s.start)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(s.start + time.Millisecond)))
		}
	}
	return td
}

func sid(v uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], v)
	return id
}

func edgesOf(l *Learner) map[string]Edge {
	out := map[string]Edge{}
	for _, e := range l.Drain(nil) {
		out[e.Caller+">"+e.Callee] = e
	}
	return out
}

func TestParentBeforeChildAcrossBatches(t *testing.T) {
	l := New(Options{})
	l.ObserveTraces(batch(span{service: "front", id: 1, start: 0}), t0)
	l.ObserveTraces(batch(span{service: "cart", id: 2, parent: 1, start: 5 * time.Millisecond}), t0)
	got := edgesOf(l)
	e, ok := got["front>cart"]
	if len(got) != 1 || !ok {
		t.Fatalf("edges %v, want front>cart only", got)
	}
	if !e.First.Equal(t0.Add(5*time.Millisecond)) || !e.Last.Equal(e.First) || e.Calls != 1 {
		t.Fatalf("edge %+v: want one call at the child's start", e)
	}
}

func TestChildBeforeParentIsJoinedWithTheChildsTime(t *testing.T) {
	l := New(Options{})
	// Children end (and are exported) before their parent.
	l.ObserveTraces(batch(
		span{service: "cart", id: 2, parent: 1, start: 5 * time.Millisecond},
		span{service: "price", id: 3, parent: 1, start: 9 * time.Millisecond},
	), t0)
	if got := edgesOf(l); len(got) != 0 {
		t.Fatalf("edges before the parent arrived: %v", got)
	}
	l.ObserveTraces(batch(span{service: "front", id: 1, start: 0}), t0)
	got := edgesOf(l)
	if len(got) != 2 || got["front>cart"].First != t0.Add(5*time.Millisecond) || got["front>price"].First != t0.Add(9*time.Millisecond) {
		t.Fatalf("edges %v, want front>cart at +5ms and front>price at +9ms", got)
	}
	// The waiting children were consumed: the parent again adds nothing.
	l.ObserveTraces(batch(span{service: "front", id: 1, start: 0}), t0)
	if got := edgesOf(l); len(got) != 0 {
		t.Fatalf("a repeated parent joined its children twice: %v", got)
	}
}

func TestSameServiceRootsAndNamelessResourcesMakeNoEdge(t *testing.T) {
	l := New(Options{})
	l.ObserveTraces(batch(
		span{service: "front", id: 1},
		span{service: "front", id: 2, parent: 1}, // internal span
		span{service: "cart", id: 3},             // a root: no parent
		span{noServiceKey: true, id: 4, parent: 3},
		span{service: "db", id: 5, parent: 4}, // its parent has no service
	), t0)
	if got := edgesOf(l); len(got) != 0 {
		t.Fatalf("edges %v, want none", got)
	}
}

func TestOnePeriodCountsCallsAndDrainStartsAnother(t *testing.T) {
	l := New(Options{})
	var spans []span
	for i := range 10 {
		p := uint64(100 + 2*i)
		spans = append(spans, span{service: "front", id: p, start: time.Duration(i) * time.Second},
			span{service: "cart", id: p + 1, parent: p, start: time.Duration(i)*time.Second + time.Millisecond})
	}
	l.ObserveTraces(batch(spans...), t0)
	e := edgesOf(l)["front>cart"]
	if e.Calls != 10 || e.First != t0.Add(time.Millisecond) || e.Last != t0.Add(9*time.Second+time.Millisecond) {
		t.Fatalf("edge %+v, want 10 calls from +1ms to +9.001s", e)
	}
	if got := l.Drain(nil); len(got) != 0 {
		t.Fatalf("second drain: %v, want nothing new", got)
	}
}

func TestSpansWithoutTimestampsUseTheFallback(t *testing.T) {
	l := New(Options{})
	l.ObserveTraces(batch(span{service: "a", id: 1, start: -1}, span{service: "b", id: 2, parent: 1, start: -1}), t0.Add(time.Hour))
	if e := edgesOf(l)["a>b"]; e.First != t0.Add(time.Hour) {
		t.Fatalf("edge %+v, want the fallback time", e)
	}
}

func TestMemoryIsBoundedAndForgetsTheOldest(t *testing.T) {
	l := New(Options{SpanMemory: 64})
	if n := len(l.spans.slots) + len(l.orphans.slots); n != 128 {
		t.Fatalf("%d slots, want 2 x 64", n)
	}
	l.ObserveTraces(batch(span{service: "front", id: 1}), t0)
	// Far more spans than slots go by.
	var filler []span
	for i := range 1000 {
		filler = append(filler, span{service: "noise", id: uint64(1000 + i)})
	}
	l.ObserveTraces(batch(filler...), t0)
	l.ObserveTraces(batch(span{service: "cart", id: 2, parent: 1}), t0)
	if got := edgesOf(l); len(got) != 0 {
		t.Fatalf("edges %v: the parent should have been forgotten", got)
	}
	// A recent parent is still found.
	l.ObserveTraces(batch(span{service: "front", id: 7}, span{service: "cart", id: 8, parent: 7}), t0)
	if got := edgesOf(l); len(got) != 1 {
		t.Fatalf("edges %v, want front>cart", got)
	}
}

func TestMaxEdgesBoundsAPeriod(t *testing.T) {
	l := New(Options{MaxEdges: 3})
	var spans []span
	for i := range 5 {
		spans = append(spans, span{service: "front", id: uint64(10 * (i + 1))},
			span{service: fmt.Sprintf("svc%d", i), id: uint64(10*(i+1) + 1), parent: uint64(10 * (i + 1))})
	}
	l.ObserveTraces(batch(spans...), t0)
	if got := l.Drain(nil); len(got) != 3 || l.Dropped() != 2 {
		t.Fatalf("%d edges, %d dropped; want 3 and 2", len(got), l.Dropped())
	}
}

func TestRestoreMergesIntoTheNextPeriod(t *testing.T) {
	l := New(Options{})
	l.ObserveTraces(batch(span{service: "a", id: 1, start: time.Second}, span{service: "b", id: 2, parent: 1, start: 2 * time.Second}), t0)
	failed := l.Drain(nil)
	l.ObserveTraces(batch(span{service: "a", id: 3, start: 5 * time.Second}, span{service: "b", id: 4, parent: 3, start: 6 * time.Second}), t0)
	l.Restore(failed)
	got := l.Drain(nil)
	if len(got) != 1 || got[0].Calls != 2 || got[0].First != t0.Add(2*time.Second) || got[0].Last != t0.Add(6*time.Second) {
		t.Fatalf("after restore %+v, want one a>b edge of 2 calls from +2s to +6s", got)
	}
}

func TestMergeCombinesPairs(t *testing.T) {
	in := []Edge{
		{Caller: "b", Callee: "c", First: t0, Last: t0, Calls: 1},
		{Caller: "a", Callee: "b", First: t0.Add(time.Second), Last: t0.Add(time.Second), Calls: 2},
		{Caller: "a", Callee: "b", First: t0, Last: t0, Calls: 3},
	}
	got := Merge(nil, in)
	if len(got) != 2 || got[0].Caller != "a" || got[0].Calls != 5 || got[0].First != t0 || got[0].Last != t0.Add(time.Second) {
		t.Fatalf("merged %+v", got)
	}
}

func TestObservingAllocatesNothingOnceWarm(t *testing.T) {
	l := New(Options{})
	td := batch(chains(200)...)
	l.ObserveTraces(td, t0)
	if n := testing.AllocsPerRun(20, func() { l.ObserveTraces(td, t0) }); n != 0 {
		t.Fatalf("%v allocations per batch, want 0", n)
	}
}

// BenchmarkObserveTraces: 1,000 spans (a three-service chain) per batch.
func BenchmarkObserveTraces(b *testing.B) {
	l := New(Options{})
	td := batch(chains(334)[:1000]...)
	b.ReportAllocs()
	for b.Loop() {
		l.ObserveTraces(td, t0)
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "spans/s")
}

// chains is n calls front -> cart -> price, three spans each.
func chains(n int) []span {
	var spans []span
	for i := range n {
		p := uint64(1 + 3*i)
		spans = append(spans, span{service: "front", id: p}, span{service: "cart", id: p + 1, parent: p},
			span{service: "price", id: p + 2, parent: p + 1})
	}
	return spans
}
