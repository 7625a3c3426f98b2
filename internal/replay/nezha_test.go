package replay

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// writeTgz writes files (name -> content) as a .tgz.
func writeTgz(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

const logHeader = "Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log\n"

func logRow(ts, nanos, pod, msg string) string {
	js := `{""log"":""` + msg + `\n"",""stream"":""stdout"",""time"":""x""}`
	return ts + "," + nanos + ",10.0.0.1," + pod + ",server,0493e2752438fbbe19f9cc7efe9aaaa9,882624ccb9c39604,\"" + js + "\"\n"
}

func nezhaFixture(t *testing.T) string {
	dir := t.TempDir()
	writeTgz(t, filepath.Join(dir, "log.tgz"), map[string]string{
		// Stored out of time order, as in the real archive.
		"log/10_01_log.csv": logHeader +
			logRow("2023-01-29T10:01:05Z", "1674986465000000000", "ts-order-service-5b67c48447-mv5hb", "10:01:05 INFO order ok") +
			// Overflowed TimeUnixNano: the Timestamp column is used.
			logRow("2023-01-29T10:01:01.500", "-6795364578871345152", "ts-order-service-5b67c48447-mv5hb", "10:01:01 ERROR boom") +
			// A corrupt, spliced line: skipped and reported.
			"2023-01-29T10:01:02Z,1674986462000000000,10.0.0.1,pod,server,a,b,\"{\"\"log\"\": \"broken\"\"\n",
		"log/10_00_log.csv": logHeader +
			logRow("2023-01-29T10:00:03Z", "1674986403000000000", "ts-user-service-687d654649-lrcwv", "10:00:03 WARN slow"),
	})
	writeTgz(t, filepath.Join(dir, "trace.tgz"), map[string]string{
		"trace/10_00_trace.csv": "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n" +
			"8c940c3d26d92e0825812d16fdcfd454,691626659f738b76,root,ts-gateway-service-6f6cfc45b-h5m2n,/*,1674986404000000000,1674986404214189432,214189\n" +
			"8c940c3d26d92e0825812d16fdcfd454,fdf4808f31d0c51a,691626659f738b76,ts-gateway-service-6f6cfc45b-h5m2n,FilteringWebHandler.handle,1674986404100000000,1674986404200000000,100000\n",
	})
	writeTgz(t, filepath.Join(dir, "metric.tgz"), map[string]string{
		"metric/front_service.csv": "Time,TimeStamp,ServiceName,SuccessRate(%),LatencyP50(s)\n" +
			"2023-01-29 10:00:00.500000000 +0000 UTC m=+0.1,1674986400,Frontend,99.5,0.09\n",
		"metric/ts-route-service-b6c59fb57-zv8dt_metric.csv": "Time,TimeStamp,PodName,CpuUsage(m),MemoryUsage(Mi)\n" +
			"2023-01-29 10:01:03.000000000 +0000 UTC m=+1.4,1674986463,ts-route-service-b6c59fb57-zv8dt,16.5,435.5\n",
	})
	return dir
}

func drain(t *testing.T, s Source) []Record {
	t.Helper()
	var out []Record
	for {
		r, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}

func TestNezhaFixture(t *testing.T) {
	var warn bytes.Buffer
	n, err := OpenNezha(nezhaFixture(t), AllSignals, &warn)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	recs := drain(t, n)
	type want struct {
		sig     Signal
		service string
		at      string
	}
	wants := []want{
		{Metrics, "frontend", "10:00:00.5"},
		{Logs, "ts-user-service", "10:00:03"},
		{Traces, "ts-gateway-service", "10:00:04"},
		{Traces, "ts-gateway-service", "10:00:04.1"},
		{Logs, "ts-order-service", "10:01:01.5"},
		{Metrics, "ts-route-service", "10:01:03"},
		{Logs, "ts-order-service", "10:01:05"},
	}
	if len(recs) != len(wants) {
		t.Fatalf("got %d records, want %d: %+v", len(recs), len(wants), recs)
	}
	for i, w := range wants {
		r := recs[i]
		at, _ := time.Parse("2006-01-02 15:04:05.999", "2023-01-29 "+w.at)
		if r.Signal != w.sig || r.Service != w.service || !r.Time.Equal(at) {
			t.Errorf("record %d = %s %s %s, want %s %s %s", i, r.Signal, r.Service, r.Time.Format(time.RFC3339Nano), w.sig, w.service, at.Format(time.RFC3339Nano))
		}
	}
	if n.Skipped() != 1 || !strings.Contains(warn.String(), "10_01_log.csv line 4") {
		t.Fatalf("skipped %d, warnings %q; want the corrupt line 4 of 10_01_log.csv reported", n.Skipped(), warn.String())
	}
	l := recs[4]
	if l.Body != "10:01:01 ERROR boom" || l.Severity != plog.SeverityNumberError || l.Pod != "ts-order-service-5b67c48447-mv5hb" {
		t.Fatalf("log record = %+v", l)
	}
	if l.TraceID[0] != 0x04 || l.SpanID[7] != 0x04 {
		t.Fatalf("trace/span ids not decoded: %x %x", l.TraceID, l.SpanID)
	}
	root, child := recs[2], recs[3]
	if root.ParentID != [8]byte{} || child.ParentID == [8]byte{} || child.Name != "FilteringWebHandler.handle" || child.End.Sub(child.Time) != 100*time.Millisecond {
		t.Fatalf("spans = %+v / %+v", root, child)
	}
	m := recs[5]
	if len(m.Points) != 2 || m.Points[0].Name != "nezha.cpu_usage" || m.Points[0].Unit != "m" || m.Points[0].Value != 16.5 {
		t.Fatalf("metric record = %+v", m)
	}
}

func TestNezhaMissingArchive(t *testing.T) {
	dir := t.TempDir()
	_, err := OpenNezha(dir, NezhaSignals{Logs: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "log.tgz") {
		t.Fatalf("err = %v, want one naming log.tgz", err)
	}
}

func TestServiceOfPod(t *testing.T) {
	for pod, want := range map[string]string{
		"ts-order-service-5b67c48447-mv5hb": "ts-order-service",
		"ts-ui-dashboard-5477b965f-2chkr":   "ts-ui-dashboard",
		"ts-route-service-b6c59fb57-zv8dt":  "ts-route-service",
		"redis-abcde":                       "redis",
		"standalone":                        "standalone",
	} {
		if got := ServiceOfPod(pod); got != want {
			t.Errorf("ServiceOfPod(%q) = %q, want %q", pod, got, want)
		}
	}
}

// sharedNezha finds ../shared/data/nezha/2023-01-29 beside the repository root.
func sharedNezha(t *testing.T) string {
	wd, _ := os.Getwd()
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(dir), "shared", "data", "nezha", "2023-01-29")
			if _, err := os.Stat(filepath.Join(p, "log.tgz")); err != nil {
				t.Skipf("Nezha data not found at %s (../shared beside the repository): %v", p, err)
			}
			return p
		}
		if filepath.Dir(dir) == dir {
			t.Skip("repository root not found")
		}
	}
}

// TestNezhaReal reads the whole real day: every record is on 2023-01-29,
// keyed by a TrainTicket service, in time order but for the few records
// the per-minute files misplace.
func TestNezhaReal(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 545k records")
	}
	n, err := OpenNezha(sharedNezha(t), AllSignals, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	counts := map[Signal]int{}
	services := map[string]bool{}
	var prev time.Time
	back := 0
	limit := -1
	if raceEnabled {
		limit = 120000
	}
	for ; limit != 0; limit-- {
		r, err := n.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		counts[r.Signal]++
		services[r.Service] = true
		if y, m, d := r.Time.Date(); y != 2023 || m != 1 || d != 29 {
			t.Fatalf("%s record of %s at %s: not on the dataset's day", r.Signal, r.Service, r.Time)
		}
		if r.Time.Before(prev.Add(-time.Minute)) {
			back++
		}
		prev = r.Time
	}
	t.Logf("records: logs %d, spans %d, metric scrapes %d; services %d; skipped rows %d; >1 min back-steps %d",
		counts[Logs], counts[Traces], counts[Metrics], len(services), n.Skipped(), back)
	if raceEnabled {
		t.Logf("-race: read the first %d records only", counts[Logs]+counts[Traces]+counts[Metrics])
	} else if counts[Logs] < 100000 || counts[Traces] < 100000 || counts[Metrics] < 10000 {
		t.Fatalf("too few records: %v", counts)
	}
	for _, s := range []string{"ts-order-service", "ts-travel-service", "ts-basic-service", "frontend"} {
		if !services[s] {
			t.Errorf("service %s missing", s)
		}
	}
	if n.Skipped() > 10 {
		t.Errorf("%d rows skipped; the day has 2 known corrupt lines", n.Skipped())
	}
	if back > counts[Logs]/1000 {
		t.Errorf("%d records more than a minute out of order", back)
	}
}
