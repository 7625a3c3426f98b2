package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/replay"
	"github.com/driftlock/driftlock/internal/store/storetest"
	"github.com/driftlock/driftlock/internal/synth"
)

// streamConfig is the synthetic stream every e2e run replays: 1,200 ticks
// of 4 services x 3 signals (14,400 records) with the default faults (one
// per signal). Start is fixed per test so two runs can be compared.
func streamConfig(start time.Time) synth.Config {
	return synth.Config{Seed: 7, Steps: 1200, Start: start}
}

func generate(t *testing.T, cfg synth.Config) (*synth.Generator, []replay.Record) {
	t.Helper()
	g, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var recs []replay.Record
	for {
		r, err := g.Next()
		if err != nil {
			break
		}
		recs = append(recs, r)
	}
	if len(recs) != g.Total() {
		t.Fatalf("generator yielded %d records, want %d", len(recs), g.Total())
	}
	return g, recs
}

// sendSplit replays recs to the collector: logs and metrics over
// OTLP/gRPC, traces over OTLP/HTTP, concurrently (each stream stays in
// order because a stream never spans two senders).
func sendSplit(t *testing.T, grpcPort, httpPort int, recs []replay.Record) {
	t.Helper()
	var viaGRPC, viaHTTP []replay.Record
	for _, r := range recs {
		if r.Signal == replay.Traces {
			viaHTTP = append(viaHTTP, r)
		} else {
			viaGRPC = append(viaGRPC, r)
		}
	}
	gs, err := replay.NewSender(replay.ProtocolGRPC, fmt.Sprintf("127.0.0.1:%d", grpcPort))
	if err != nil {
		t.Fatal(err)
	}
	defer gs.Close()
	hs, err := replay.NewSender(replay.ProtocolHTTP, fmt.Sprintf("127.0.0.1:%d", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var gErr, hErr error
	var gSt, hSt replay.Stats
	wg.Add(2)
	go func() {
		defer wg.Done()
		gSt, gErr = replay.Run(ctx, replay.SliceSource(viaGRPC), gs, replay.Options{BatchSize: 256})
	}()
	go func() {
		defer wg.Done()
		hSt, hErr = replay.Run(ctx, replay.SliceSource(viaHTTP), hs, replay.Options{BatchSize: 256})
	}()
	wg.Wait()
	if gErr != nil || hErr != nil {
		t.Fatalf("replay: grpc: %v, http: %v", gErr, hErr)
	}
	if got := gSt.Records() + hSt.Records(); got != len(recs) {
		t.Fatalf("replay sent %d records, want %d", got, len(recs))
	}
}

type anomalyRow struct {
	Signal, Stream, Service string
	Observed                time.Time
}

func (a anomalyRow) key() string {
	return a.Signal + "|" + a.Stream + "|" + a.Observed.UTC().Format(time.RFC3339Nano)
}

func queryAnomalies(t *testing.T, dsn string) []anomalyRow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT signal, stream, service, observed_at FROM anomalies ORDER BY observed_at, stream`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (anomalyRow, error) {
		var a anomalyRow
		err := r.Scan(&a.Signal, &a.Stream, &a.Service, &a.Observed)
		return a, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitAnomalies waits until the anomaly count is non-zero and unchanged
// for a second (the exporter's queue has drained).
func waitAnomalies(t *testing.T, dsn string) []anomalyRow {
	t.Helper()
	var last []anomalyRow
	stable := 0
	eventually(t, 60*time.Second, "anomalies to settle in PostgreSQL", func() bool {
		cur := queryAnomalies(t, dsn)
		if len(cur) > 0 && len(cur) == len(last) {
			stable++
		} else {
			stable = 0
		}
		last = cur
		return stable >= 5
	})
	return last
}

// readLines returns the JSON lines the file exporter wrote (one OTLP
// request per line).
func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	var out [][]byte
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	return out
}

func readLogs(t *testing.T, dir string) []plog.Logs {
	var out []plog.Logs
	for _, l := range readLines(t, filepath.Join(dir, "logs.json")) {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(l)
		if err != nil {
			t.Fatalf("logs.json: %v", err)
		}
		out = append(out, ld)
	}
	return out
}

func readTraces(t *testing.T, dir string) []ptrace.Traces {
	var out []ptrace.Traces
	for _, l := range readLines(t, filepath.Join(dir, "traces.json")) {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(l)
		if err != nil {
			t.Fatalf("traces.json: %v", err)
		}
		out = append(out, td)
	}
	return out
}

func readMetrics(t *testing.T, dir string) []pmetric.Metrics {
	var out []pmetric.Metrics
	for _, l := range readLines(t, filepath.Join(dir, "metrics.json")) {
		md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(l)
		if err != nil {
			t.Fatalf("metrics.json: %v", err)
		}
		out = append(out, md)
	}
	return out
}

func countLogs(lds []plog.Logs) (n int) {
	for _, ld := range lds {
		n += ld.LogRecordCount()
	}
	return n
}

func countSpans(tds []ptrace.Traces) (n int) {
	for _, td := range tds {
		n += td.SpanCount()
	}
	return n
}

func serviceOf(res pcommon.Resource) string {
	v, _ := res.Attributes().Get("service.name")
	return v.Str()
}

func recKey(service string, t time.Time) string {
	return service + "@" + t.UTC().Format(time.RFC3339Nano)
}

// splitAttrs returns the record's attributes without the driftlock.*
// annotations, and the annotations.
func splitAttrs(m pcommon.Map) (plain, ours map[string]any) {
	plain, ours = map[string]any{}, map[string]any{}
	m.Range(func(k string, v pcommon.Value) bool {
		if strings.HasPrefix(k, "driftlock.") {
			ours[k] = v
		} else {
			plain[k] = v.AsRaw()
		}
		return true
	})
	return plain, ours
}

func sameAttrs(want map[string]any, got map[string]any) bool {
	if len(want) != len(got) {
		return false
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			return false
		}
		switch x := v.(type) {
		case int:
			v = int64(x)
		}
		if fmt.Sprint(g) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// checkAnnotation requires the driftlock.* attributes of an annotated
// record to be typed and named, and reports whether the record was flagged
// as an anomaly. A record can also be annotated without being anomalous:
// the one that closed a window whose drift test fired carries
// driftlock.drift and the window figures, with driftlock.anomaly=false.
func checkAnnotation(t *testing.T, what string, ours map[string]any, wantStream string) (anomaly bool) {
	t.Helper()
	val := func(k string) pcommon.Value {
		v, ok := ours[k]
		if !ok {
			t.Fatalf("%s: annotated record lacks %s (has %v)", what, k, keys(ours))
		}
		return v.(pcommon.Value)
	}
	if v := val("driftlock.anomaly"); v.Type() != pcommon.ValueTypeBool {
		t.Fatalf("%s: driftlock.anomaly = %v (%s), want a bool", what, v.AsRaw(), v.Type())
	}
	if v := val("driftlock.stream"); v.Str() != wantStream {
		t.Fatalf("%s: driftlock.stream = %q, want %q", what, v.Str(), wantStream)
	}
	if !val("driftlock.anomaly").Bool() {
		if v := val("driftlock.drift"); v.Type() != pcommon.ValueTypeBool || !v.Bool() {
			t.Fatalf("%s: annotated but neither an anomaly nor a drifting window (%v)", what, keys(ours))
		}
		for _, k := range []string{"driftlock.ncd", "driftlock.compression_ratio", "driftlock.entropy"} {
			if v := val(k); v.Type() != pcommon.ValueTypeDouble || v.Double() < 0 {
				t.Fatalf("%s: %s = %v (%s), want a non-negative double", what, k, v.AsRaw(), v.Type())
			}
		}
		return false
	}
	if v := val("driftlock.score"); v.Type() != pcommon.ValueTypeDouble || v.Double() <= 0 {
		t.Fatalf("%s: driftlock.score = %v (%s), want positive double", what, v.AsRaw(), v.Type())
	}
	if v := val("driftlock.p_value"); v.Type() != pcommon.ValueTypeDouble || v.Double() < 0 || v.Double() >= 1 {
		t.Fatalf("%s: driftlock.p_value = %v (%s), want double in [0,1)", what, v.AsRaw(), v.Type())
	}
	if v := val("driftlock.explanation"); v.Type() != pcommon.ValueTypeStr || v.Str() == "" {
		t.Fatalf("%s: driftlock.explanation empty", what)
	}
	return true
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// runResult is what one deployment (single collector or fleet) produced.
type runResult struct {
	anomalies []anomalyRow
	scored    float64 // records_scored summed over the scoring collectors
}

func TestSingleCollector(t *testing.T) {
	requireE2E(t)
	dsn := storetest.NewDatabase(t)
	g, recs := generate(t, streamConfig(singleStart))

	c := startCollector(t, "collector", "single.yaml", map[string]string{"DRIFTLOCK_DSN": dsn})
	sendSplit(t, c.grpc, c.http, recs)

	var nLogs, nSpans, nScrapes int
	for _, r := range recs {
		switch r.Signal {
		case replay.Logs:
			nLogs++
		case replay.Traces:
			nSpans++
		default:
			nScrapes++
		}
	}
	eventually(t, 60*time.Second, "every log record and span in the file exporter output", func() bool {
		return countLogs(readLogs(t, c.outDir)) >= nLogs && countSpans(readTraces(t, c.outDir)) >= nSpans
	})
	rows := waitAnomalies(t, dsn)

	// The collector's own telemetry counts what it scored.
	scored, ok := c.promSum(t, "otelcol_processor_driftlock_records_scored")
	if !ok {
		t.Fatal("no otelcol_processor_driftlock_records_scored series on the collector's Prometheus endpoint")
	}
	if scored < float64(nLogs+nSpans) {
		t.Fatalf("records_scored = %v, want >= %d (logs + spans sent)", scored, nLogs+nSpans)
	}
	t.Logf("records_scored=%v anomalies=%d", scored, len(rows))
	c.stop(t)

	byKey := map[string]replay.Record{}
	for _, r := range recs {
		byKey[r.Signal.String()+"|"+recKey(r.Service, r.Time)] = r
	}

	// Logs: all arrived once; annotated ones are typed and named; the rest
	// are exactly what was sent.
	seen := map[string]bool{}
	flaggedLogs := map[string]int{}
	for _, ld := range readLogs(t, c.outDir) {
		for _, rl := range ld.ResourceLogs().All() {
			svc := serviceOf(rl.Resource())
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					k := "logs|" + recKey(svc, lr.Timestamp().AsTime())
					in, ok := byKey[k]
					if !ok {
						t.Fatalf("log record %s was never sent", k)
					}
					if seen[k] {
						t.Fatalf("log record %s arrived twice", k)
					}
					seen[k] = true
					if lr.Body().Str() != in.Body || lr.SeverityNumber() != in.Severity || lr.SeverityText() != in.SeverityText || lr.TraceID() != pcommon.TraceID(in.TraceID) {
						t.Fatalf("log record %s changed: body %q severity %v", k, lr.Body().Str(), lr.SeverityNumber())
					}
					plain, ours := splitAttrs(lr.Attributes())
					if !sameAttrs(in.Attrs, plain) {
						t.Fatalf("log record %s: attributes changed: sent %v, got %v", k, in.Attrs, plain)
					}
					if len(ours) > 0 {
						if checkAnnotation(t, "log "+k, ours, "logs/"+svc) {
							flaggedLogs[svc]++
						}
					}
				}
			}
		}
	}
	if len(seen) != nLogs {
		t.Fatalf("%d distinct log records reached the file exporter, want %d", len(seen), nLogs)
	}

	flaggedSpans := 0
	seen = map[string]bool{}
	for _, td := range readTraces(t, c.outDir) {
		for _, rs := range td.ResourceSpans().All() {
			svc := serviceOf(rs.Resource())
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					k := "traces|" + recKey(svc, sp.StartTimestamp().AsTime())
					in, ok := byKey[k]
					if !ok || seen[k] {
						t.Fatalf("span %s unknown or duplicated", k)
					}
					seen[k] = true
					if sp.Name() != in.Name || sp.Status().Code() != in.StatusCode || sp.SpanID() != pcommon.SpanID(in.SpanID) || !sp.EndTimestamp().AsTime().Equal(in.End) {
						t.Fatalf("span %s changed", k)
					}
					plain, ours := splitAttrs(sp.Attributes())
					if !sameAttrs(in.Attrs, plain) {
						t.Fatalf("span %s: attributes changed: sent %v, got %v", k, in.Attrs, plain)
					}
					if len(ours) > 0 {
						if checkAnnotation(t, "span "+k, ours, "traces/"+svc) {
							flaggedSpans++
						}
					}
				}
			}
		}
	}
	if len(seen) != nSpans {
		t.Fatalf("%d distinct spans reached the file exporter, want %d", len(seen), nSpans)
	}

	// Metrics: every original point arrives unchanged (the processor adds
	// companion driftlock.* metrics instead of touching the series).
	points := 0
	for _, md := range readMetrics(t, c.outDir) {
		for _, rm := range md.ResourceMetrics().All() {
			svc := serviceOf(rm.Resource())
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if strings.HasPrefix(m.Name(), "driftlock.") || m.Type() != pmetric.MetricTypeGauge {
						continue
					}
					for _, dp := range m.Gauge().DataPoints().All() {
						in, ok := byKey["metrics|"+recKey(svc, dp.Timestamp().AsTime())]
						if !ok {
							t.Fatalf("metric point %s/%s at %s was never sent", svc, m.Name(), dp.Timestamp())
						}
						var want = -1.0
						for _, p := range in.Points {
							if p.Name == m.Name() {
								want = p.Value
							}
						}
						if dp.DoubleValue() != want || dp.Attributes().Len() != 0 {
							t.Fatalf("metric point %s/%s changed: %v (attrs %v), sent %v", svc, m.Name(), dp.DoubleValue(), dp.Attributes().AsRaw(), want)
						}
						points++
					}
				}
			}
		}
	}
	if points != 2*nScrapes {
		t.Fatalf("%d original metric points reached the file exporter, want %d", points, 2*nScrapes)
	}

	// Every flagged log record and span was stored: nothing lost between
	// the processor and PostgreSQL.
	dbLogs, dbSpans := 0, 0
	for _, a := range rows {
		switch a.Signal {
		case "logs":
			dbLogs++
		case "traces":
			dbSpans++
		}
	}
	totalFlaggedLogs := 0
	for _, n := range flaggedLogs {
		totalFlaggedLogs += n
	}
	if dbLogs != totalFlaggedLogs || dbSpans != flaggedSpans {
		t.Fatalf("stored %d log and %d span anomalies, but %d logs and %d spans were annotated", dbLogs, dbSpans, totalFlaggedLogs, flaggedSpans)
	}
	checkFaults(t, g, rows)
	single = &runResult{anomalies: rows, scored: scored}
}

// single is the single-collector result the fleet test compares against
// (TestSingleCollector runs first: tests run in source order).
var single *runResult

// singleStart is the synthetic stream's first timestamp, shared by the
// single and fleet runs so that their anomalies can be compared.
var singleStart = time.Now().Add(-30 * time.Minute).Truncate(time.Second)

// checkFaults requires at least one stored anomaly inside each injected
// fault, on the fault's service and signal and in a stream of that
// service, and prints the per-fault table.
func checkFaults(t *testing.T, g *synth.Generator, rows []anomalyRow) {
	t.Helper()
	for _, f := range g.Faults() {
		hits := 0
		var first time.Time
		for _, a := range rows {
			if a.Signal == f.Signal.String() && a.Service == f.Service &&
				strings.HasPrefix(a.Stream, f.Signal.String()+"/"+f.Service) &&
				!a.Observed.Before(f.Start) && a.Observed.Before(f.End) {
				if hits == 0 {
					first = a.Observed
				}
				hits++
			}
		}
		t.Logf("fault %-9s %-7s %-11s at %s: %d anomalies inside, first after %s", f.Service, f.Signal, f.Kind, f.Start.Format(time.TimeOnly), hits, first.Sub(f.Start))
		if hits == 0 {
			t.Errorf("injected fault %s/%s (%s, %s..%s) has no anomaly in the store", f.Service, f.Signal, f.Kind, f.Start.Format(time.TimeOnly), f.End.Format(time.TimeOnly))
		}
	}
}
