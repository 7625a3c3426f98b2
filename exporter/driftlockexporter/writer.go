package driftlockexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/driftlock/driftlock/exporter/driftlockexporter/internal/metadata"
	"github.com/driftlock/driftlock/internal/store"
)

// Signal names, as stored in anomalies.signal and used as the "signal"
// attribute of the self-telemetry.
const (
	signalLogs    = store.SignalLogs
	signalTraces  = store.SignalTraces
	signalMetrics = store.SignalMetrics
)

// detectorRefresh is how often a known detector hash has its last_seen
// moved forward; in between the in-memory cache answers.
const detectorRefresh = time.Minute

// writer writes one signal's rows. The writers of one configuration (its
// logs, traces and metrics exporters) share a sharedStore: the pool, the
// migration, the detector cache and retention.
type writer struct {
	cfg    *Config
	signal string
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	attrs  metric.MeasurementOption
	graph  *graphWriter // traces with service_graph enabled, else nil

	mu     sync.Mutex // guards shared and cumulative
	shared *sharedStore
	// cumulative holds the last value of each cumulative
	// driftlock.anomalies series (see cumulativeIncrease).
	cumulative map[string]float64
}

func newWriter(cfg *Config, set exporter.Settings, signal string) (*writer, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("driftlock exporter: telemetry: %w", err)
	}
	return &writer{
		cfg:    cfg,
		signal: signal,
		logger: set.Logger,
		tb:     tb,
		attrs:  metric.WithAttributes(attribute.String("signal", signal)),
	}, nil
}

// start joins the configuration's shared store, opening it when this is
// the first of its exporters to start.
func (w *writer) start(ctx context.Context, _ component.Host) error {
	s, err := acquireShared(ctx, w)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.shared = s
	w.mu.Unlock()
	if w.graph != nil {
		w.graph.start()
	}
	return nil
}

// shutdown leaves the shared store (the last exporter closes it). Safe to
// call when start never ran.
func (w *writer) shutdown(ctx context.Context) error {
	if w.graph != nil {
		w.graph.stop(ctx) // its last write needs the store: before release
	}
	w.mu.Lock()
	s := w.shared
	w.shared = nil
	w.mu.Unlock()
	if s != nil {
		s.release()
	}
	return nil
}

func (w *writer) sharedStore() (*sharedStore, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.shared == nil {
		return nil, errors.New("driftlock exporter: not started")
	}
	return w.shared, nil
}

// batch is what one push turns into: rows, plus the detector
// configurations they reference (hash -> config JSON, possibly empty).
type batch struct {
	rows      []store.Anomaly
	detectors map[string]string
	skipped   int
}

func (b *batch) addDetector(hash, config string) {
	if hash == "" {
		return
	}
	if b.detectors == nil {
		b.detectors = map[string]string{}
	}
	if old, ok := b.detectors[hash]; !ok || old == "" {
		b.detectors[hash] = config
	}
}

// push adapts a signal's batch function to exporterhelper's push function.
func push[D any](w *writer, toBatch func(D, time.Time) *batch) func(context.Context, D) error {
	return func(ctx context.Context, data D) error {
		return w.write(ctx, toBatch(data, time.Now().UTC()))
	}
}

// write stores a batch. Transient failures are returned as they are, for
// exporterhelper to retry the whole request (rows already stored are
// skipped by fingerprint on the retry). Rows refused for their content are
// logged, counted and reported as a permanent error, which exporterhelper
// drops instead of retrying.
func (w *writer) write(ctx context.Context, b *batch) error {
	if b.skipped > 0 {
		w.tb.ExporterDriftlockRecordsSkipped.Add(ctx, int64(b.skipped), w.attrs)
	}
	if len(b.rows) == 0 {
		return nil
	}
	shared, err := w.sharedStore()
	if err != nil {
		return err
	}
	st, err := shared.store()
	if err != nil {
		return err
	}
	if err := shared.ensureMigrated(ctx); err != nil {
		return w.transient(ctx, "migrate", err)
	}
	if err := shared.upsertDetectors(ctx, st, b.detectors); err != nil {
		return w.transient(ctx, "record detector", err)
	}
	var dropped []error
	for start := 0; start < len(b.rows); start += w.cfg.BatchSize {
		chunk := b.rows[start:min(start+w.cfg.BatchSize, len(b.rows))]
		n, err := st.InsertAnomalies(ctx, chunk)
		if n > 0 {
			w.tb.ExporterDriftlockRowsInserted.Add(ctx, int64(n), w.attrs)
		}
		var rej *store.RejectedRowsError
		switch {
		case err == nil:
		case errors.As(err, &rej):
			w.tb.ExporterDriftlockRowsDropped.Add(ctx, int64(len(rej.Rows)), w.attrs)
			for _, r := range rej.Rows {
				w.logger.Error("dropping anomaly row refused by PostgreSQL (permanent error, not retried)",
					zap.String("signal", w.signal), zap.String("fingerprint", r.Fingerprint), zap.Error(r.Err))
			}
			dropped = append(dropped, err)
			n += len(rej.Rows)
		case store.IsPermanent(err):
			w.tb.ExporterDriftlockRowsDropped.Add(ctx, int64(len(chunk)), w.attrs)
			w.logger.Error("dropping anomaly batch refused by PostgreSQL (permanent error, not retried)",
				zap.String("signal", w.signal), zap.Int("rows", len(chunk)), zap.Error(err))
			dropped = append(dropped, err)
			continue
		default:
			return w.transient(ctx, "insert", err)
		}
		if dup := len(chunk) - n; dup > 0 {
			w.tb.ExporterDriftlockRowsDuplicate.Add(ctx, int64(dup), w.attrs)
		}
	}
	if len(dropped) > 0 {
		return consumererror.NewPermanent(errors.Join(dropped...))
	}
	return nil
}

func (w *writer) transient(ctx context.Context, what string, err error) error {
	w.tb.ExporterDriftlockTransientErrors.Add(ctx, 1, w.attrs)
	if store.IsPermanent(err) {
		// Only reachable for the migration or the detector row; neither
		// is a property of the data, so the batch is still retried.
		return fmt.Errorf("driftlock exporter: %s: %w", what, err)
	}
	return fmt.Errorf("driftlock exporter: %s (will retry): %w", what, err)
}
