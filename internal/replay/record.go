// Package replay sends telemetry to an OTLP endpoint: records read from a
// plain log file, from the Nezha dataset layout, or produced by the synthetic
// generator (internal/synth) are grouped into OTLP batches and sent over
// gRPC or HTTP, optionally paced by their original timestamps.
package replay

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Signal is the OpenTelemetry signal a record belongs to.
type Signal uint8

// The three signals, in the names the anomaly store uses.
const (
	Logs Signal = iota
	Traces
	Metrics
)

func (s Signal) String() string {
	switch s {
	case Logs:
		return "logs"
	case Traces:
		return "traces"
	case Metrics:
		return "metrics"
	}
	return fmt.Sprintf("signal(%d)", uint8(s))
}

// Record is one telemetry item before it becomes OTLP: a log record, a span
// or a set of metric points observed together. Service and Pod become the
// resource attributes service.name and k8s.pod.name.
type Record struct {
	Signal  Signal
	Time    time.Time
	Service string
	Pod     string

	// Logs.
	Body         string
	Severity     plog.SeverityNumber
	SeverityText string

	// Traces (TraceID and SpanID also correlate logs).
	TraceID    [16]byte
	SpanID     [8]byte
	ParentID   [8]byte
	Name       string
	Kind       ptrace.SpanKind
	End        time.Time
	StatusCode ptrace.StatusCode
	StatusMsg  string

	// Attrs are record (log or span) attributes; values are string, int64,
	// float64 or bool.
	Attrs map[string]any

	// Metrics: gauge points sharing Time and the resource.
	Points []Point
}

// Point is one gauge data point.
type Point struct {
	Name  string
	Unit  string
	Value float64
	Attrs map[string]any
}

// Source yields records in (approximately) time order; Next returns io.EOF
// after the last one.
type Source interface {
	Next() (Record, error)
}

// ErrBadRecord marks input that cannot be turned into a record; the message
// names the file and line.
var ErrBadRecord = errors.New("bad record")
