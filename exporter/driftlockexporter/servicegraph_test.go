package driftlockexporter

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// callSpans is one request of spans: for each call i, a span of caller
// (id 2i+1) and its child in callee (id 2i+2), started 3 ms later; the
// caller span is flagged when flagCaller.
func callSpans(caller, callee string, first, n int, flagCaller bool) ptrace.Traces {
	td := ptrace.NewTraces()
	parents := td.ResourceSpans().AppendEmpty()
	parents.Resource().Attributes().PutStr("service.name", caller)
	children := td.ResourceSpans().AppendEmpty()
	children.Resource().Attributes().PutStr("service.name", callee)
	for i := first; i < first+n; i++ {
		start := baseTime.Add(time.Duration(i) * time.Second)
		p := parents.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		p.SetName("GET /checkout")
		p.SetTraceID(pcommon.TraceID{7, byte(i)})
		p.SetSpanID(pcommon.SpanID{1, byte(i), byte(i >> 8)})
		p.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		p.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(20 * time.Millisecond)))
		p.Attributes().PutBool("driftlock.anomaly", flagCaller)
		p.Attributes().PutDouble("driftlock.score", 4)
		p.Attributes().PutDouble("driftlock.p_value", 0.001)
		c := children.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		c.SetName("POST /price")
		c.SetTraceID(pcommon.TraceID{7, byte(i)})
		c.SetSpanID(pcommon.SpanID{2, byte(i), byte(i >> 8)})
		c.SetParentSpanID(p.SpanID())
		c.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(3 * time.Millisecond)))
		c.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(10 * time.Millisecond)))
	}
	return td
}

// split moves the resource spans of service svc out of td into their own
// request (to send a call's two halves separately).
func split(td ptrace.Traces, svc string) ptrace.Traces {
	out := ptrace.NewTraces()
	td.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
		if v, _ := rs.Resource().Attributes().Get("service.name"); v.Str() == svc {
			rs.CopyTo(out.ResourceSpans().AppendEmpty())
			return true
		}
		return false
	})
	return out
}

func storedEdges(t *testing.T, st *store.Store) []store.ServiceEdge {
	t.Helper()
	edges, err := st.ServiceEdgesSince(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return edges
}

// TestServiceGraphLearnedFromEveryRequestAndWrittenOnCadence: with
// only_anomalies on, unflagged spans still teach the graph; a call whose
// child arrives in an earlier request than its parent is joined; the
// edges reach service_edges on the flush interval, and the rest at
// shutdown.
func TestServiceGraphLearnedFromEveryRequestAndWrittenOnCadence(t *testing.T) {
	st, dsn := openDB(t)
	set, tt := testSettings(t)
	cfg := syncConfig(dsn)
	cfg.ServiceGraph.FlushInterval = 50 * time.Millisecond
	exp := startExporter(t, NewFactory().CreateTraces, cfg, set, componenttest.NewNopHost())
	ctx := context.Background()

	td := callSpans("frontend", "pricing", 0, 5, false)
	children := split(td, "pricing")
	if err := exp.ConsumeTraces(ctx, children); err != nil { // children first, as exporters send them
		t.Fatal(err)
	}
	if err := exp.ConsumeTraces(ctx, td); err != nil {
		t.Fatal(err)
	}
	if n := rowCount(t, st); n != 0 {
		t.Fatalf("%d anomaly rows, want 0 (nothing flagged)", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	var edges []store.ServiceEdge
	for len(edges) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		edges = storedEdges(t, st)
	}
	if len(edges) != 1 {
		t.Fatalf("edges %+v after the flush interval, want frontend -> pricing", edges)
	}
	e := edges[0]
	if e.Caller != "frontend" || e.Callee != "pricing" || e.Calls != 5 ||
		!e.FirstSeen.Equal(baseTime.Add(3*time.Millisecond)) || !e.LastSeen.Equal(baseTime.Add(4*time.Second+3*time.Millisecond)) {
		t.Fatalf("edge %+v: want 5 calls observed from +3ms to +4.003s (the callee spans' starts)", e)
	}

	// More calls, then shutdown before the next tick: the last flush
	// writes them.
	cfg2 := syncConfig(dsn)
	cfg2.ServiceGraph.FlushInterval = time.Hour
	exp2 := startExporter(t, NewFactory().CreateTraces, cfg2, set, componenttest.NewNopHost())
	if err := exp2.ConsumeTraces(ctx, callSpans("frontend", "pricing", 100, 3, false)); err != nil {
		t.Fatal(err)
	}
	if err := exp2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	edges = storedEdges(t, st)
	if len(edges) != 1 || edges[0].Calls != 8 || !edges[0].LastSeen.Equal(baseTime.Add(102*time.Second+3*time.Millisecond)) {
		t.Fatalf("after shutdown: %+v, want 8 calls, last at +102.003s", edges)
	}
	if n := counter(t, tt, "otelcol_exporter_driftlock_service_edges_written"); n < 2 {
		t.Fatalf("service_edges_written = %d, want one edge per flush, 2 flushes at least", n)
	}
}

// TestServiceGraphWriteFailureLosesNoAnomalyAndNoEdge: while the edges
// cannot be written, flagged spans are still stored and requests succeed;
// the failure is counted, and the edges are written once the table is
// back.
func TestServiceGraphWriteFailureLosesNoAnomalyAndNoEdge(t *testing.T) {
	st, dsn := openDB(t)
	set, tt := testSettings(t)
	cfg := syncConfig(dsn)
	cfg.ServiceGraph.FlushInterval = 30 * time.Millisecond
	ctx := context.Background()
	pool := storetest.Pool(st)
	if _, err := pool.Exec(ctx, `ALTER TABLE service_edges RENAME TO service_edges_away`); err != nil {
		t.Fatal(err)
	}
	exp := startExporter(t, NewFactory().CreateTraces, cfg, set, componenttest.NewNopHost())
	defer exp.Shutdown(ctx)
	if err := exp.ConsumeTraces(ctx, callSpans("frontend", "pricing", 0, 4, true)); err != nil {
		t.Fatalf("the request failed while only the edge write fails: %v", err)
	}
	if n := rowCount(t, st); n != 4 {
		t.Fatalf("%d anomaly rows, want the 4 flagged spans", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for counter(t, tt, "otelcol_exporter_driftlock_service_edges_failed") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if counter(t, tt, "otelcol_exporter_driftlock_service_edges_failed") == 0 {
		t.Fatal("the failed edge write was not counted")
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE service_edges_away RENAME TO service_edges`); err != nil {
		t.Fatal(err)
	}
	var edges []store.ServiceEdge
	for len(edges) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		edges = storedEdges(t, st)
	}
	if len(edges) != 1 || edges[0].Calls != 4 {
		t.Fatalf("edges after the table came back: %+v, want the 4 calls kept from the failed flushes", edges)
	}
}

func TestServiceGraphDisabled(t *testing.T) {
	st, dsn := openDB(t)
	set, _ := testSettings(t)
	cfg := syncConfig(dsn)
	cfg.ServiceGraph.Enabled = false
	exp := startExporter(t, NewFactory().CreateTraces, cfg, set, componenttest.NewNopHost())
	if err := exp.ConsumeTraces(context.Background(), callSpans("frontend", "pricing", 0, 3, true)); err != nil {
		t.Fatal(err)
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rowCount(t, st); n != 3 {
		t.Fatalf("%d anomaly rows, want 3", n)
	}
	if edges := storedEdges(t, st); len(edges) != 0 {
		t.Fatalf("edges %+v with service_graph disabled", edges)
	}
}
