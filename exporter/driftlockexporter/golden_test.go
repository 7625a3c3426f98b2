package driftlockexporter

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/driftlock/driftlock/internal/store"
)

// go test -run Golden -update rewrites testdata/golden (inputs are written
// only when missing, from the Go fixtures).
var update = flag.Bool("update", false, "rewrite golden files")

var goldenNow = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// goldenRows renders rows as the stored documents would read (JSON
// through EncodeJSON, as InsertAnomalies writes them).
func goldenRows(t *testing.T, b *batch) []byte {
	t.Helper()
	type row struct {
		store.Anomaly
		AttributesJSON json.RawMessage `json:"Attributes"`
		ResourceJSON   json.RawMessage `json:"Resource"`
		RecordJSON     json.RawMessage `json:"Record"`
		// Hide the embedded pre-encoded strings (shown decoded above).
		HideA string `json:"AttributesJSON,omitempty"`
		HideR string `json:"ResourceJSON,omitempty"`
		HideC string `json:"RecordJSON,omitempty"`
	}
	out := struct {
		Skipped   int
		Detectors map[string]string
		Rows      []row
	}{Skipped: b.skipped, Detectors: b.detectors}
	for _, a := range b.rows {
		if a.Attributes != nil || a.Resource != nil || a.Record != nil {
			t.Fatal("the exporter must pre-encode its documents (AttributesJSON, ...)")
		}
		r := row{AttributesJSON: json.RawMessage(a.AttributesJSON),
			ResourceJSON: json.RawMessage(a.ResourceJSON), RecordJSON: json.RawMessage(a.RecordJSON)}
		r.Anomaly = a
		out.Rows = append(out.Rows, r)
	}
	got, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(got, '\n')
}

func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file (run with -update after checking):\n%s", path, got)
	}
}

// readInput loads an OTLP JSON input, writing it from fixture when missing
// under -update.
func readInput(t *testing.T, name string, fixture func() ([]byte, error)) []byte {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if _, err := os.Stat(path); os.IsNotExist(err) && *update {
		b, err := fixture()
		if err != nil {
			t.Fatal(err)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(pretty.Bytes(), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	return b
}

func goldenWriter(onlyAnomalies bool) *writer {
	cfg := createDefaultConfig().(*Config)
	cfg.OnlyAnomalies = onlyAnomalies
	return &writer{cfg: cfg}
}

func TestGoldenLogs(t *testing.T) {
	in := readInput(t, "logs_input.json", func() ([]byte, error) {
		ld := flaggedLogs(0, 4, func(i int) bool { return i != 2 })
		lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(1)
		lr.SetTraceID([16]byte{0xaa, 1})
		lr.SetSpanID([8]byte{0xbb, 2})
		lr.Attributes().PutDouble("driftlock.ncd", 0.61)
		lr.Attributes().PutDouble("driftlock.compression_ratio", 0.33)
		lr.Attributes().PutDouble("driftlock.entropy", 4.2)
		lr.Attributes().PutBool("driftlock.drift", true)
		lr.Attributes().PutStr("driftlock.config_hash", "c0ffee")
		return (&plog.JSONMarshaler{}).MarshalLogs(ld)
	})
	ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(in)
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "logs_rows.json", goldenRows(t, goldenWriter(true).logsBatch(ld, goldenNow)))
}

func TestGoldenTraces(t *testing.T) {
	in := readInput(t, "traces_input.json", func() ([]byte, error) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "frontend")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("tracer")
		for i := 0; i < 2; i++ {
			sp := ss.Spans().AppendEmpty()
			sp.SetName("POST /checkout")
			sp.SetTraceID([16]byte{1, byte(i)})
			sp.SetSpanID([8]byte{2, byte(i)})
			sp.SetParentSpanID([8]byte{3})
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(1_763_625_600_000_000_000)
			sp.SetEndTimestamp(1_763_625_600_250_000_000)
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage("payment backend unavailable")
			ev := sp.Events().AppendEmpty()
			ev.SetName("exception")
			ev.Attributes().PutStr("exception.type", "IOError")
			sp.Attributes().PutBool("driftlock.anomaly", i == 0)
			sp.Attributes().PutDouble("driftlock.score", 5.5)
			sp.Attributes().PutDouble("driftlock.p_value", 0.004)
			sp.Attributes().PutStr("driftlock.stream", "frontend/POST /checkout")
			sp.Attributes().PutStr("driftlock.explanation", "unusual status message")
		}
		return (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	})
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(in)
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "traces_rows.json", goldenRows(t, goldenWriter(true).tracesBatch(td, goldenNow)))
}

func TestGoldenMetrics(t *testing.T) {
	in := readInput(t, "metrics_input.json", func() ([]byte, error) {
		return (&pmetric.JSONMarshaler{}).MarshalMetrics(metricsFixture(pmetric.AggregationTemporalityDelta, 1, 2, 0))
	})
	md, err := (&pmetric.JSONUnmarshaler{}).UnmarshalMetrics(in)
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "metrics_rows.json", goldenRows(t, goldenWriter(true).metricsBatch(md, goldenNow)))
}
