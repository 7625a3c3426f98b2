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

// writer owns one signal's connection pool and writes its rows. Each
// pipeline's exporter has its own writer; they share nothing but the
// database, where fingerprints make concurrent writes safe.
type writer struct {
	cfg    *Config
	signal string
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder
	attrs  metric.MeasurementOption

	mu        sync.Mutex // guards st, migrated and detectors
	st        *store.Store
	migrated  bool
	detectors map[string]time.Time // config hash -> last upsert
	// cumulative holds the last value of each cumulative
	// driftlock.anomalies series (see cumulativeIncrease).
	cumulative map[string]float64

	stopRetention  context.CancelFunc
	retentionDone  chan struct{}
	retentionOwner bool
}

// retentionOwners makes one exporter per database and process run
// retention: the logs, traces and metrics exporters of one configuration
// would otherwise delete the same rows three times over.
var retentionOwners = struct {
	sync.Mutex
	byDSN map[string]bool
}{byDSN: map[string]bool{}}

func claimRetention(dsn string) bool {
	retentionOwners.Lock()
	defer retentionOwners.Unlock()
	if retentionOwners.byDSN[dsn] {
		return false
	}
	retentionOwners.byDSN[dsn] = true
	return true
}

func releaseRetention(dsn string) {
	retentionOwners.Lock()
	defer retentionOwners.Unlock()
	delete(retentionOwners.byDSN, dsn)
}

func newWriter(cfg *Config, set exporter.Settings, signal string) (*writer, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("driftlock exporter: telemetry: %w", err)
	}
	return &writer{
		cfg:       cfg,
		signal:    signal,
		logger:    set.Logger,
		tb:        tb,
		attrs:     metric.WithAttributes(attribute.String("signal", signal)),
		detectors: map[string]time.Time{},
	}, nil
}

// start creates the pool without connecting, so that the collector starts
// (and its queue fills) while PostgreSQL is down, then tries the migration
// once; a failed migration is retried before the first write.
func (w *writer) start(ctx context.Context, _ component.Host) error {
	st, err := store.New(w.cfg.dsn())
	if err != nil {
		return fmt.Errorf("driftlock exporter: %w", err)
	}
	w.mu.Lock()
	w.st = st
	w.mu.Unlock()
	if w.cfg.MigrateOnStart {
		mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := w.ensureMigrated(mctx)
		cancel()
		if err != nil {
			w.logger.Warn("schema migration failed at start; retrying before the first write", zap.Error(err))
		}
	}
	if w.cfg.Retention > 0 && claimRetention(w.cfg.dsn()) {
		w.retentionOwner = true
		rctx, cancel := context.WithCancel(context.Background())
		w.stopRetention = cancel
		w.retentionDone = make(chan struct{})
		go w.retentionLoop(rctx)
	}
	return nil
}

func (w *writer) shutdown(context.Context) error {
	if w.stopRetention != nil {
		w.stopRetention()
		<-w.retentionDone
		w.stopRetention = nil
	}
	if w.retentionOwner {
		releaseRetention(w.cfg.dsn())
		w.retentionOwner = false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.st != nil {
		w.st.Close()
		w.st = nil
	}
	return nil
}

func (w *writer) store() (*store.Store, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.st == nil {
		return nil, errors.New("driftlock exporter: not started")
	}
	return w.st, nil
}

func (w *writer) ensureMigrated(ctx context.Context) error {
	if !w.cfg.MigrateOnStart {
		return nil
	}
	w.mu.Lock()
	done, st := w.migrated, w.st
	w.mu.Unlock()
	if done || st == nil {
		return nil
	}
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	w.mu.Lock()
	w.migrated = true
	w.mu.Unlock()
	return nil
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
	st, err := w.store()
	if err != nil {
		return err
	}
	if err := w.ensureMigrated(ctx); err != nil {
		return w.transient(ctx, "migrate", err)
	}
	if err := w.upsertDetectors(ctx, st, b.detectors); err != nil {
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

// upsertDetectors records the detector configurations referenced by the
// batch, at most once per detectorRefresh per hash.
func (w *writer) upsertDetectors(ctx context.Context, st *store.Store, dets map[string]string) error {
	now := time.Now()
	for hash, config := range dets {
		w.mu.Lock()
		last, seen := w.detectors[hash]
		w.mu.Unlock()
		if seen && now.Sub(last) < detectorRefresh {
			continue
		}
		err := st.UpsertDetector(ctx, hash, []byte(config))
		if err != nil && config != "" && !store.IsTransient(err) {
			// A configuration attribute that is not JSON must not block
			// the anomalies: record the hash alone.
			w.logger.Warn("detector configuration is not valid JSON; storing the hash only",
				zap.String("config_hash", hash), zap.Error(err))
			err = st.UpsertDetector(ctx, hash, nil)
		}
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.detectors[hash] = now
		w.mu.Unlock()
	}
	return nil
}

// retentionLoop deletes expired anomalies at start and every
// retention_interval, in batches of batch_size rows.
func (w *writer) retentionLoop(ctx context.Context) {
	defer close(w.retentionDone)
	t := time.NewTicker(w.cfg.RetentionInterval)
	defer t.Stop()
	for {
		w.runRetention(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *writer) runRetention(ctx context.Context) {
	st, err := w.store()
	if err != nil {
		return
	}
	if err := w.ensureMigrated(ctx); err != nil {
		return // logged by the write path; retried next interval
	}
	n, err := st.DeleteOlderThan(ctx, time.Now().Add(-w.cfg.Retention), w.cfg.BatchSize)
	if n > 0 {
		w.tb.ExporterDriftlockRetentionRowsDeleted.Add(ctx, n, w.attrs)
		w.logger.Info("retention deleted expired anomalies", zap.Int64("rows", n), zap.Duration("retention", w.cfg.Retention))
	}
	if err != nil && ctx.Err() == nil {
		w.logger.Warn("retention failed; retrying next interval", zap.Error(err))
	}
}
