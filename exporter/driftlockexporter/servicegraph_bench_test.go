package driftlockexporter

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// chainSpans is n calls (numbered from first) front -> cart -> price, one
// resource per service, 3n spans; every tenth span is flagged.
func chainSpans(first, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	var spans [3]ptrace.SpanSlice
	for s, name := range []string{"front", "cart", "price"} {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", name)
		rs.Resource().Attributes().PutStr("host.name", "node-1")
		spans[s] = rs.ScopeSpans().AppendEmpty().Spans()
	}
	k := 0
	for i := first; i < first+n; i++ {
		start := baseTime.Add(time.Duration(i) * time.Millisecond)
		var parent pcommon.SpanID
		for s := range 3 {
			sp := spans[s].AppendEmpty()
			sp.SetName("GET /step")
			sp.SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)})
			sp.SetSpanID(pcommon.SpanID{byte(s + 1), byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)})
			sp.SetParentSpanID(parent)
			parent = sp.SpanID()
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(s) * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(20 * time.Millisecond)))
			sp.Attributes().PutStr("http.route", "/step")
			sp.Attributes().PutBool("driftlock.anomaly", k%10 == 0)
			sp.Attributes().PutDouble("driftlock.score", 4.5)
			sp.Attributes().PutDouble("driftlock.p_value", 0.002)
			k++
		}
	}
	return td
}

// BenchmarkTracesConvert is the CPU half of a traces export, 3,000 spans
// (300 flagged) per request: rows alone, and rows plus learning the
// service graph (what service_graph adds to every request).
func BenchmarkTracesConvert(b *testing.B) {
	td := chainSpans(0, 1000)
	w := goldenWriter(true)
	b.Run("rows", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if rows := w.tracesBatch(td, baseTime).rows; len(rows) != 300 {
				b.Fatalf("%d rows", len(rows))
			}
		}
	})
	b.Run("rows_and_service_graph", func(b *testing.B) {
		g := newGraphWriter(w, time.Hour)
		b.ReportAllocs()
		for b.Loop() {
			g.observe(td, baseTime)
			if rows := w.tracesBatch(td, baseTime).rows; len(rows) != 300 {
				b.Fatalf("%d rows", len(rows))
			}
		}
	})
}

// BenchmarkTracesExport is the exporter end to end (pdata to rows to
// PostgreSQL, no queue), 3,000 spans (300 flagged) per request, with the
// service graph off and on. Skips without DRIFTLOCK_TEST_DSN.
func BenchmarkTracesExport(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "service_graph_off"
		if on {
			name = "service_graph_on"
		}
		b.Run(name, func(b *testing.B) {
			_, dsn := openDBB(b)
			cfg := syncConfig(dsn)
			cfg.ServiceGraph.Enabled = on
			exp := startExporter(b, NewFactory().CreateTraces, cfg, testSettingsB(), componenttest.NewNopHost())
			defer exp.Shutdown(context.Background())
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				td := chainSpans(i*1000, 1000) // fresh spans: no duplicates
				b.StartTimer()
				if err := exp.ConsumeTraces(context.Background(), td); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*3000)/b.Elapsed().Seconds(), "spans/s")
		})
	}
}
