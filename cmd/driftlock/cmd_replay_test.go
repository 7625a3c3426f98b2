package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

type countingOTLP struct {
	logs, spans, points atomic.Int64
}

type logsSrv struct {
	plogotlp.UnimplementedGRPCServer
	c *countingOTLP
}

func (s *logsSrv) Export(_ context.Context, r plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.c.logs.Add(int64(r.Logs().LogRecordCount()))
	return plogotlp.NewExportResponse(), nil
}

type tracesSrv struct {
	ptraceotlp.UnimplementedGRPCServer
	c *countingOTLP
}

func (s *tracesSrv) Export(_ context.Context, r ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.c.spans.Add(int64(r.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

type metricsSrv struct {
	pmetricotlp.UnimplementedGRPCServer
	c *countingOTLP
}

func (s *metricsSrv) Export(_ context.Context, r pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	s.c.points.Add(int64(r.Metrics().DataPointCount()))
	return pmetricotlp.NewExportResponse(), nil
}

func otlpGRPC(t *testing.T) (string, *countingOTLP) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &countingOTLP{}
	srv := grpc.NewServer()
	plogotlp.RegisterGRPCServer(srv, &logsSrv{c: c})
	ptraceotlp.RegisterGRPCServer(srv, &tracesSrv{c: c})
	pmetricotlp.RegisterGRPCServer(srv, &metricsSrv{c: c})
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().String(), c
}

func TestReplaySynthetic(t *testing.T) {
	addr, c := otlpGRPC(t)
	faults := filepath.Join(t.TempDir(), "faults.json")
	var out, errOut bytes.Buffer
	code := run([]string{"replay", "--synthetic", "--steps", "150", "--endpoint", addr, "--faults-out", faults}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if c.logs.Load() != 600 || c.spans.Load() != 600 || c.points.Load() != 1200 {
		t.Fatalf("received logs %d spans %d points %d, want 600/600/1200", c.logs.Load(), c.spans.Load(), c.points.Load())
	}
	if !strings.Contains(errOut.String(), "1800 records sent") || !strings.Contains(errOut.String(), "records/s") {
		t.Fatalf("progress on stderr: %q", errOut.String())
	}
	b, err := os.ReadFile(faults)
	if err != nil || !strings.Contains(string(b), `"service": "checkout"`) || !strings.Contains(string(b), `"signal": "logs"`) {
		t.Fatalf("faults file: %v %s", err, b)
	}
}

func TestReplayLinesOverHTTP(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := plogotlp.NewExportRequest()
		if r.URL.Path != "/v1/logs" || req.UnmarshalProto(body) != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		rl := req.Logs().ResourceLogs().At(0)
		if v, _ := rl.Resource().Attributes().Get("service.name"); v.Str() != "web" {
			http.Error(w, "wrong service", http.StatusBadRequest)
			return
		}
		got.Add(int64(req.Logs().LogRecordCount()))
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "app.log")
	os.WriteFile(file, []byte("INFO one\nERROR two\n\nWARN three\n"), 0o644)
	var out, errOut bytes.Buffer
	// Flags after the file work too.
	code := run([]string{"replay", "--format", "lines", file, "--service", "web", "--protocol", "http", "--endpoint", srv.URL}, &out, &errOut)
	if code != 0 || got.Load() != 3 {
		t.Fatalf("exit %d, received %d records (want 3): %s", code, got.Load(), errOut.String())
	}
}

func TestReplayUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"replay"}, 2, "--synthetic"},
		{[]string{"replay", "--format", "lines", "x.log"}, 2, "--service"},
		{[]string{"replay", "--format", "csv", "x"}, 2, `unknown --format "csv"`},
		{[]string{"replay", "--format", "nezha"}, 2, "exactly one DIR"},
		{[]string{"replay", "--synthetic", "extra"}, 2, "no --format and no input"},
		{[]string{"replay", "--synthetic", "--speed", "-1"}, 2, "--speed"},
		{[]string{"replay", "--synthetic", "--protocol", "udp"}, 2, "protocol"},
		{[]string{"replay", "--format", "nezha", "--signals", "logs,bogus", "/nonexistent"}, 2, `unknown signal "bogus"`},
		{[]string{"replay", "--format", "lines", "--service", "x", "/nonexistent/app.log"}, 1, "no such file"},
		{[]string{"replay", "--format", "nezha", t.TempDir()}, 1, "log.tgz"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut.String(), tc.code, tc.msg)
		}
	}
}
