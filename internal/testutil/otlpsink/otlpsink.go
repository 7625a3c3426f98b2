// Package otlpsink is an OTLP endpoint for tests: it accepts logs, traces
// and metrics over gRPC (StartGRPC) and over HTTP with protobuf bodies
// (ServeHTTP) and keeps what it received.
package otlpsink

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// Sink holds every request's payload, in arrival order.
type Sink struct {
	mu      sync.Mutex
	logs    []plog.Logs
	traces  []ptrace.Traces
	metrics []pmetric.Metrics
}

// Counts returns the log records, spans and metric data points received.
func (s *Sink) Counts() (logs, spans, points int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.logs {
		logs += x.LogRecordCount()
	}
	for _, x := range s.traces {
		spans += x.SpanCount()
	}
	for _, x := range s.metrics {
		points += x.DataPointCount()
	}
	return logs, spans, points
}

// Logs returns the log requests received so far.
func (s *Sink) Logs() []plog.Logs {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]plog.Logs(nil), s.logs...)
}

func (s *Sink) keepLogs(r plogotlp.ExportRequest) { s.logs = append(s.logs, r.Logs()) }

func (s *Sink) keepTraces(r ptraceotlp.ExportRequest) { s.traces = append(s.traces, r.Traces()) }

func (s *Sink) keepMetrics(r pmetricotlp.ExportRequest) { s.metrics = append(s.metrics, r.Metrics()) }

// One gRPC service per signal: each OTLP server interface requires its
// package's UnimplementedGRPCServer embedded (an unexported marker method).

type logsService struct {
	plogotlp.UnimplementedGRPCServer
	s *Sink
}

func (g *logsService) Export(_ context.Context, r plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	g.s.mu.Lock()
	g.s.keepLogs(r)
	g.s.mu.Unlock()
	return plogotlp.NewExportResponse(), nil
}

type tracesService struct {
	ptraceotlp.UnimplementedGRPCServer
	s *Sink
}

func (g *tracesService) Export(_ context.Context, r ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	g.s.mu.Lock()
	g.s.keepTraces(r)
	g.s.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

type metricsService struct {
	pmetricotlp.UnimplementedGRPCServer
	s *Sink
}

func (g *metricsService) Export(_ context.Context, r pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	g.s.mu.Lock()
	g.s.keepMetrics(r)
	g.s.mu.Unlock()
	return pmetricotlp.NewExportResponse(), nil
}

// StartGRPC serves OTLP/gRPC on a loopback port until the test ends and
// returns its address and the sink.
func StartGRPC(t testing.TB) (string, *Sink) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Sink{}
	srv := grpc.NewServer()
	plogotlp.RegisterGRPCServer(srv, &logsService{s: s})
	ptraceotlp.RegisterGRPCServer(srv, &tracesService{s: s})
	pmetricotlp.RegisterGRPCServer(srv, &metricsService{s: s})
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().String(), s
}

// ServeHTTP takes OTLP/HTTP protobuf requests on /v1/logs, /v1/traces and
// /v1/metrics: 415 for another content type, 400 for a body that does not
// decode, 404 for another path.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "bad content type", http.StatusUnsupportedMediaType)
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	switch r.URL.Path {
	case "/v1/logs":
		err = decode(s, body, plogotlp.NewExportRequest(), (*Sink).keepLogs)
	case "/v1/traces":
		err = decode(s, body, ptraceotlp.NewExportRequest(), (*Sink).keepTraces)
	case "/v1/metrics":
		err = decode(s, body, pmetricotlp.NewExportRequest(), (*Sink).keepMetrics)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

func decode[R interface{ UnmarshalProto([]byte) error }](s *Sink, body []byte, req R, keep func(*Sink, R)) error {
	if err := req.UnmarshalProto(body); err != nil {
		return err
	}
	keep(s, req)
	return nil
}
