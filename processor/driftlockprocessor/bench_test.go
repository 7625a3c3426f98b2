package driftlockprocessor

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processorhelper"
)

// Each benchmark runs the driftlock processor beside a pass-through
// processor built with the same processorhelper (identity function) on the
// same batches of 1,000 records, and logs the cost ratio. Run with
//
//	go test -run '^$' -bench . -benchmem -cpu 1 ./processor/driftlockprocessor/

const benchBatch = 1000

// loghubBatches turns the loghub samples into batches of 1,000 records, one
// service (stream) per source file, files interleaved.
func loghubBatches(b *testing.B) []plog.Logs {
	dir := sharedDir(b, filepath.Join("data", "loghub"))
	files, _ := filepath.Glob(filepath.Join(dir, "*_2k.log"))
	if len(files) == 0 {
		b.Skipf("no loghub samples in %s", dir)
	}
	type line struct{ svc, text string }
	var perFile [][]line
	for _, fn := range files {
		f, err := os.Open(fn)
		if err != nil {
			b.Fatal(err)
		}
		svc := strings.TrimSuffix(filepath.Base(fn), "_2k.log")
		var ls []line
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			text := sc.Text()
			if svc == "BGL" { // the first column is the label: never shown to the detector
				if i := strings.IndexByte(text, ' '); i >= 0 {
					text = text[i+1:]
				}
			}
			ls = append(ls, line{svc, text})
		}
		f.Close()
		perFile = append(perFile, ls)
	}
	var all []line
	for i := 0; ; i++ {
		added := false
		for _, ls := range perFile {
			if i < len(ls) {
				all = append(all, ls[i])
				added = true
			}
		}
		if !added {
			break
		}
	}
	var out []plog.Logs
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for start := 0; start+benchBatch <= len(all); start += benchBatch {
		ld, appendTo := logsByService()
		for i, l := range all[start : start+benchBatch] {
			lr := appendTo(l.svc)
			lr.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(start+i) * time.Millisecond)))
			lr.Body().SetStr(l.text)
		}
		out = append(out, ld)
	}
	return out
}

func benchSpans(n int) []ptrace.Traces {
	rng := rand.New(rand.NewPCG(1, 1))
	routes := []string{"/cart", "/checkout", "/products/{id}", "/search", "/login", "/orders/{id}"}
	var out []ptrace.Traces
	for range n {
		td := ptrace.NewTraces()
		for s := range 10 {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", s))
			spans := rs.ScopeSpans().AppendEmpty().Spans()
			for range benchBatch / 10 {
				sp := spans.AppendEmpty()
				r := routes[rng.IntN(len(routes))]
				sp.SetName("GET " + r)
				sp.SetKind(ptrace.SpanKindServer)
				sp.SetStartTimestamp(1_000_000_000)
				sp.SetEndTimestamp(pcommon.Timestamp(1_000_000_000 + rng.IntN(50_000_000)))
				sp.Attributes().PutStr("http.request.method", "GET")
				sp.Attributes().PutStr("http.route", r)
				code := 200
				if rng.IntN(100) == 0 {
					code = 500
					sp.Status().SetCode(ptrace.StatusCodeError)
				}
				sp.Attributes().PutInt("http.response.status_code", int64(code))
				sp.Attributes().PutStr("user.id", fmt.Sprintf("u-%d", rng.IntN(1e6)))
			}
		}
		out = append(out, td)
	}
	return out
}

// benchMetrics: 1,000 data points per batch across 10 services: gauges,
// cumulative sums and explicit-bucket histograms, 10 series each per
// service, plus untouched summaries.
func benchMetrics(n int) []pmetric.Metrics {
	rng := rand.New(rand.NewPCG(2, 2))
	var out []pmetric.Metrics
	for it := range n {
		md := pmetric.NewMetrics()
		ts := pcommon.Timestamp(int64(it+1) * 10e9)
		for s := range 10 {
			rm := md.ResourceMetrics().AppendEmpty()
			rm.Resource().Attributes().PutStr("service.name", fmt.Sprintf("svc-%d", s))
			ms := rm.ScopeMetrics().AppendEmpty().Metrics()
			for k := range 4 {
				m := ms.AppendEmpty()
				for series := range 25 {
					var attrs pcommon.Map
					switch k {
					case 0:
						if series == 0 {
							m.SetName("process.cpu.utilization")
							m.SetEmptyGauge()
						}
						dp := m.Gauge().DataPoints().AppendEmpty()
						dp.SetTimestamp(ts)
						dp.SetDoubleValue(0.4 + 0.1*rng.Float64())
						attrs = dp.Attributes()
					case 1:
						if series == 0 {
							m.SetName("http.server.request.count")
							m.SetEmptySum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
							m.Sum().SetIsMonotonic(true)
						}
						dp := m.Sum().DataPoints().AppendEmpty()
						dp.SetStartTimestamp(1)
						dp.SetTimestamp(ts)
						dp.SetIntValue(int64(it*100 + rng.IntN(10)))
						attrs = dp.Attributes()
					case 2:
						if series == 0 {
							m.SetName("http.server.request.duration")
							m.SetEmptyHistogram().SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
						}
						dp := m.Histogram().DataPoints().AppendEmpty()
						dp.SetTimestamp(ts)
						dp.ExplicitBounds().FromRaw([]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1})
						counts := make([]uint64, 9)
						var total uint64
						for i := range counts {
							counts[i] = uint64(rng.IntN(20))
							total += counts[i]
						}
						dp.BucketCounts().FromRaw(counts)
						dp.SetCount(total)
						dp.SetSum(float64(total) * 0.04)
						attrs = dp.Attributes()
					default:
						if series == 0 {
							m.SetName("rpc.latency")
							m.SetEmptySummary()
						}
						dp := m.Summary().DataPoints().AppendEmpty()
						dp.SetTimestamp(ts)
						dp.SetCount(3)
						attrs = dp.Attributes()
					}
					attrs.PutStr("http.route", fmt.Sprintf("/r%d", series))
					attrs.PutStr("http.request.method", "GET")
				}
			}
		}
		out = append(out, md)
	}
	return out
}

type benchResult struct{ nsPerRecord float64 }

func (r *benchResult) set(b *testing.B, perOp int) {
	r.nsPerRecord = float64(b.Elapsed().Nanoseconds()) / float64(b.N*perOp)
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "records/s")
}

// logRatio prints the cost ratio next to the benchmark lines (b.Logf in a
// parent benchmark is only shown with -v).
func logRatio(b *testing.B, what string, pass, drift benchResult) {
	if pass.nsPerRecord > 0 && drift.nsPerRecord > 0 {
		fmt.Printf("%s/%s: driftlock %.1f ns/record, pass-through %.1f ns/record: ratio %.1fx\n",
			b.Name(), what, drift.nsPerRecord, pass.nsPerRecord, drift.nsPerRecord/pass.nsPerRecord)
	}
}

func BenchmarkConsumeLogs(b *testing.B) {
	batches := loghubBatches(b)
	ctx := context.Background()
	var pass, drift benchResult
	b.Run("passthrough", func(b *testing.B) {
		p, err := processorhelper.NewLogs(ctx, testSettings(), testConfig(), consumertest.NewNop(),
			func(_ context.Context, ld plog.Logs) (plog.Logs, error) { return ld, nil })
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_ = p.ConsumeLogs(ctx, batches[i%len(batches)])
		}
		pass.set(b, benchBatch)
	})
	b.Run("driftlock", func(b *testing.B) {
		p := startLogs(b, testConfig(), consumertest.NewNop(), testSettings(), componenttest.NewNopHost())
		// Steady state: every stream past its warm-up before timing.
		for _, ld := range batches {
			_ = p.ConsumeLogs(ctx, ld)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_ = p.ConsumeLogs(ctx, batches[i%len(batches)])
		}
		drift.set(b, benchBatch)
	})
	logRatio(b, "in-memory", pass, drift)

	// The same with the work a Collector does around any processor for each
	// batch: decode the OTLP request, process, encode it for the exporter.
	u := &plog.ProtoUnmarshaler{}
	otlpBench[plog.Logs]{
		marshal:   (&plog.ProtoMarshaler{}).MarshalLogs,
		unmarshal: u.UnmarshalLogs,
		passthrough: func(b *testing.B) func(context.Context, plog.Logs) error {
			p, err := processorhelper.NewLogs(ctx, testSettings(), testConfig(), &encodeLogs{},
				func(_ context.Context, ld plog.Logs) (plog.Logs, error) { return ld, nil })
			if err != nil {
				b.Fatal(err)
			}
			return p.ConsumeLogs
		},
		driftlock: func(b *testing.B) func(context.Context, plog.Logs) error {
			return startLogs(b, testConfig(), &encodeLogs{}, testSettings(), componenttest.NewNopHost()).ConsumeLogs
		},
		warmRounds: 1,
	}.run(b, "otlp", func(*testing.B) []plog.Logs { return batches })
}

// encodeLogs, encodeTraces and encodeMetrics are the next consumer of the
// OTLP benchmarks: each encodes a batch as an OTLP exporter would.
type encodeLogs struct {
	consumertest.LogsSink
	m   plog.ProtoMarshaler
	out []byte
}

func (e *encodeLogs) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	e.out, _ = e.m.MarshalLogs(ld)
	return nil
}

type encodeTraces struct {
	consumertest.TracesSink
	m   ptrace.ProtoMarshaler
	out []byte
}

func (e *encodeTraces) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	e.out, _ = e.m.MarshalTraces(td)
	return nil
}

type encodeMetrics struct {
	consumertest.MetricsSink
	m   pmetric.ProtoMarshaler
	out []byte
}

func (e *encodeMetrics) ConsumeMetrics(_ context.Context, md pmetric.Metrics) error {
	e.out, _ = e.m.MarshalMetrics(md)
	return nil
}

// otlpBench is one signal's pair of OTLP benchmarks: the identity
// pass-through and the driftlock processor, each between an OTLP decode and
// an encoding next consumer, on the same requests in the same run.
type otlpBench[T any] struct {
	marshal     func(T) ([]byte, error)
	unmarshal   func([]byte) (T, error)
	passthrough func(*testing.B) func(context.Context, T) error
	driftlock   func(*testing.B) func(context.Context, T) error
	// warmRounds is how many times the requests are sent before timing, so
	// that every stream is past its warm-up.
	warmRounds int
}

// run benchmarks name_passthrough and name_driftlock on the requests load
// returns (read once; a skip there skips both) and logs the ratio.
func (o otlpBench[T]) run(b *testing.B, name string, load func(*testing.B) []T) {
	var loaded []T
	get := func(b *testing.B) []T { // once: the framework calls each sub-benchmark several times
		if loaded == nil {
			loaded = load(b)
		}
		return loaded
	}
	var raw [][]byte
	var pass, drift benchResult
	b.Run(name+"_passthrough", func(b *testing.B) {
		batches := get(b)
		raw = make([][]byte, len(batches))
		for i, x := range batches {
			var err error
			if raw[i], err = o.marshal(x); err != nil {
				b.Fatal(err)
			}
		}
		otlpRun(b, raw, o.unmarshal, o.passthrough(b), &pass)
	})
	b.Run(name+"_driftlock", func(b *testing.B) {
		if raw == nil {
			b.Skip("no requests (see the pass-through above)")
		}
		consume := o.driftlock(b)
		for range o.warmRounds {
			for _, x := range get(b) {
				_ = consume(context.Background(), x)
			}
		}
		otlpRun(b, raw, o.unmarshal, consume, &drift)
	})
	logRatio(b, name, pass, drift)
}

// otlpRun times decode + consume over the encoded batches (the consumer
// encodes again).
func otlpRun[T any](b *testing.B, raw [][]byte, decode func([]byte) (T, error), consume func(context.Context, T) error, res *benchResult) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch, err := decode(raw[i%len(raw)])
		if err != nil {
			b.Fatal(err)
		}
		_ = consume(ctx, batch)
	}
	res.set(b, benchBatch)
}

func BenchmarkConsumeTraces(b *testing.B) {
	batches := benchSpans(16)
	ctx := context.Background()
	var pass, drift benchResult
	b.Run("passthrough", func(b *testing.B) {
		p, err := processorhelper.NewTraces(ctx, testSettings(), testConfig(), consumertest.NewNop(),
			func(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) { return td, nil })
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_ = p.ConsumeTraces(ctx, batches[i%len(batches)])
		}
		pass.set(b, benchBatch)
	})
	b.Run("driftlock", func(b *testing.B) {
		p := startTraces(b, testConfig(), consumertest.NewNop())
		for _, td := range batches {
			_ = p.ConsumeTraces(ctx, td)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_ = p.ConsumeTraces(ctx, batches[i%len(batches)])
		}
		drift.set(b, benchBatch)
	})
	logRatio(b, "in-memory", pass, drift)

	// With OTLP decode + encode around both, on the generated spans and on
	// the real ones of the Nezha day (name and timing only, so cheaper to
	// decode and to score).
	u := &ptrace.ProtoUnmarshaler{}
	o := otlpBench[ptrace.Traces]{
		marshal:   (&ptrace.ProtoMarshaler{}).MarshalTraces,
		unmarshal: u.UnmarshalTraces,
		passthrough: func(b *testing.B) func(context.Context, ptrace.Traces) error {
			p, err := processorhelper.NewTraces(ctx, testSettings(), testConfig(), &encodeTraces{},
				func(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) { return td, nil })
			if err != nil {
				b.Fatal(err)
			}
			return p.ConsumeTraces
		},
		driftlock: func(b *testing.B) func(context.Context, ptrace.Traces) error {
			return startTraces(b, testConfig(), &encodeTraces{}).ConsumeTraces
		},
		warmRounds: 1,
	}
	o.run(b, "otlp", func(*testing.B) []ptrace.Traces { return batches })
	o.run(b, "otlp_nezha", nezhaSpanBatches)
}

// nezhaBench is how many 1,000-record requests of the Nezha day the real-data
// benchmarks replay (the first ones of the day, in time order).
const nezhaBench = 64

// nezhaSpanBatches cuts the Nezha day's spans into requests of 1,000.
func nezhaSpanBatches(b *testing.B) []ptrace.Traces {
	recs := readNezhaSpans(b, sharedDir(b, filepath.Join("data", "nezha", "2023-01-29")))
	var out []ptrace.Traces
	for start := 0; start+benchBatch <= len(recs) && len(out) < nezhaBench; start += benchBatch {
		td, _ := nezhaTraces(recs[start : start+benchBatch])
		out = append(out, td)
	}
	return out
}

// nezhaMetricBatches cuts the Nezha day's pod metric points into requests
// of 1,000.
func nezhaMetricBatches(b *testing.B) []pmetric.Metrics {
	recs := readNezhaMetrics(b, sharedDir(b, filepath.Join("data", "nezha", "2023-01-29")))
	var out []pmetric.Metrics
	for start := 0; start+benchBatch <= len(recs) && len(out) < nezhaBench; start += benchBatch {
		out = append(out, nezhaMetrics(recs[start:start+benchBatch]))
	}
	return out
}

func BenchmarkConsumeMetrics(b *testing.B) {
	batches := benchMetrics(16)
	ctx := context.Background()
	var pass, drift benchResult
	b.Run("passthrough", func(b *testing.B) {
		p, err := processorhelper.NewMetrics(ctx, testSettings(), testConfig(), consumertest.NewNop(),
			func(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) { return md, nil })
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_ = p.ConsumeMetrics(ctx, batches[i%len(batches)])
		}
		pass.set(b, benchBatch)
	})
	b.Run("driftlock", func(b *testing.B) {
		p := startMetrics(b, testConfig(), consumertest.NewNop())
		for range 10 {
			for _, md := range batches {
				_ = p.ConsumeMetrics(ctx, md)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_ = p.ConsumeMetrics(ctx, batches[i%len(batches)])
		}
		drift.set(b, benchBatch)
	})
	logRatio(b, "in-memory", pass, drift)

	u := &pmetric.ProtoUnmarshaler{}
	o := otlpBench[pmetric.Metrics]{
		marshal:   (&pmetric.ProtoMarshaler{}).MarshalMetrics,
		unmarshal: u.UnmarshalMetrics,
		passthrough: func(b *testing.B) func(context.Context, pmetric.Metrics) error {
			p, err := processorhelper.NewMetrics(ctx, testSettings(), testConfig(), &encodeMetrics{},
				func(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) { return md, nil })
			if err != nil {
				b.Fatal(err)
			}
			return p.ConsumeMetrics
		},
		driftlock: func(b *testing.B) func(context.Context, pmetric.Metrics) error {
			return startMetrics(b, testConfig(), &encodeMetrics{}).ConsumeMetrics
		},
		warmRounds: 10, // series need more points than streams need records
	}
	o.run(b, "otlp", func(*testing.B) []pmetric.Metrics { return batches })
	o.run(b, "otlp_nezha", nezhaMetricBatches)
}
