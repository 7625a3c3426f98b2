package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Sender delivers OTLP payloads to one endpoint.
type Sender interface {
	SendLogs(context.Context, plog.Logs) error
	SendTraces(context.Context, ptrace.Traces) error
	SendMetrics(context.Context, pmetric.Metrics) error
	Close() error
}

// Protocol names accepted by NewSender.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http"
)

// ErrProtocol is returned for an unknown protocol name.
var ErrProtocol = errors.New("protocol must be grpc or http")

// NewSender returns a sender for protocol ("grpc": endpoint is host:port;
// "http": endpoint is a base URL such as http://127.0.0.1:4318 or host:port).
func NewSender(protocol, endpoint string) (Sender, error) {
	switch protocol {
	case ProtocolGRPC:
		return NewGRPCSender(endpoint)
	case ProtocolHTTP:
		return NewHTTPSender(endpoint), nil
	}
	return nil, fmt.Errorf("%w: got %q", ErrProtocol, protocol)
}

// retryable sends with a short exponential backoff while the receiver
// pushes back (gRPC Unavailable/ResourceExhausted, HTTP 429/502/503/504),
// so that a replay survives a busy collector without losing records.
func retryable(ctx context.Context, send func() (retry bool, err error)) error {
	backoff := 50 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		retry, err := send()
		if err == nil || !retry || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

type grpcSender struct {
	conn    *grpc.ClientConn
	logs    plogotlp.GRPCClient
	traces  ptraceotlp.GRPCClient
	metrics pmetricotlp.GRPCClient
}

// NewGRPCSender connects (lazily) to an OTLP/gRPC receiver without TLS.
func NewGRPCSender(endpoint string) (Sender, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("otlp/grpc %s: %w", endpoint, err)
	}
	return &grpcSender{
		conn:    conn,
		logs:    plogotlp.NewGRPCClient(conn),
		traces:  ptraceotlp.NewGRPCClient(conn),
		metrics: pmetricotlp.NewGRPCClient(conn),
	}, nil
}

func grpcRetry(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded:
		return true
	}
	return false
}

func (g *grpcSender) SendLogs(ctx context.Context, ld plog.Logs) error {
	req := plogotlp.NewExportRequestFromLogs(ld)
	return retryable(ctx, func() (bool, error) {
		_, err := g.logs.Export(ctx, req, grpc.WaitForReady(true))
		return grpcRetry(err), err
	})
}

func (g *grpcSender) SendTraces(ctx context.Context, td ptrace.Traces) error {
	req := ptraceotlp.NewExportRequestFromTraces(td)
	return retryable(ctx, func() (bool, error) {
		_, err := g.traces.Export(ctx, req, grpc.WaitForReady(true))
		return grpcRetry(err), err
	})
}

func (g *grpcSender) SendMetrics(ctx context.Context, md pmetric.Metrics) error {
	req := pmetricotlp.NewExportRequestFromMetrics(md)
	return retryable(ctx, func() (bool, error) {
		_, err := g.metrics.Export(ctx, req, grpc.WaitForReady(true))
		return grpcRetry(err), err
	})
}

func (g *grpcSender) Close() error { return g.conn.Close() }

type httpSender struct {
	base   string
	client *http.Client
}

// NewHTTPSender posts protobuf OTLP to base+/v1/{logs,traces,metrics}.
func NewHTTPSender(endpoint string) Sender {
	base := strings.TrimRight(endpoint, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &httpSender{base: base, client: &http.Client{Timeout: 30 * time.Second}}
}

func (h *httpSender) post(ctx context.Context, path string, body []byte) error {
	return retryable(ctx, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+path, bytes.NewReader(body))
		if err != nil {
			return false, err
		}
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := h.client.Do(req)
		if err != nil {
			// Connection refused while the collector starts: worth a retry.
			return ctx.Err() == nil, fmt.Errorf("otlp/http %s: %w", path, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		_ = resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return false, nil
		}
		retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusBadGateway ||
			resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout
		return retry, fmt.Errorf("otlp/http %s: %s: %s", path, resp.Status, bytes.TrimSpace(msg))
	})
}

func (h *httpSender) SendLogs(ctx context.Context, ld plog.Logs) error {
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		return err
	}
	return h.post(ctx, "/v1/logs", body)
}

func (h *httpSender) SendTraces(ctx context.Context, td ptrace.Traces) error {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return err
	}
	return h.post(ctx, "/v1/traces", body)
}

func (h *httpSender) SendMetrics(ctx context.Context, md pmetric.Metrics) error {
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		return err
	}
	return h.post(ctx, "/v1/metrics", body)
}

func (h *httpSender) Close() error { h.client.CloseIdleConnections(); return nil }
