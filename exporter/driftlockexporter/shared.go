package driftlockexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/driftlock/driftlock/exporter/driftlockexporter/internal/metadata"
	"github.com/driftlock/driftlock/internal/store"
)

// sharedStore is what the logs, traces and metrics exporters of one
// configuration share, the way the Collector's shared components work (one
// otlp receiver serves the pipelines of every signal): one connection pool,
// one schema migration, one cache of recorded detectors and one retention
// loop. It is keyed by the configuration the factory is handed, which the
// Collector passes once per component id to every signal's create call;
// it opens with the first exporter started and closes with the last one
// shut down.
type sharedStore struct {
	cfg    *Config
	logger *zap.Logger
	tb     *metadata.TelemetryBuilder // the first exporter's, for retention

	users int // started exporters; guarded by sharedStores

	mu        sync.Mutex // guards st, migrated and detectors
	st        *store.Store
	migrated  bool
	detectors map[string]time.Time // config hash -> last upsert

	stopRetention context.CancelFunc
	retentionDone chan struct{}
}

var sharedStores = struct {
	sync.Mutex
	byConfig map[*Config]*sharedStore
}{byConfig: map[*Config]*sharedStore{}}

// acquireShared returns the shared state of w's configuration, opening it
// for the first exporter: the pool is created without connecting, so the
// collector starts (and its queue fills) while PostgreSQL is down; the
// migration is tried once (a failure is retried before the first write).
func acquireShared(ctx context.Context, w *writer) (*sharedStore, error) {
	sharedStores.Lock()
	defer sharedStores.Unlock()
	if s, ok := sharedStores.byConfig[w.cfg]; ok {
		s.users++
		return s, nil
	}
	st, err := store.New(w.cfg.dsn())
	if err != nil {
		return nil, fmt.Errorf("driftlock exporter: %w", err)
	}
	s := &sharedStore{cfg: w.cfg, logger: w.logger, tb: w.tb, users: 1, st: st, detectors: map[string]time.Time{}}
	if s.cfg.MigrateOnStart {
		mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.ensureMigrated(mctx)
		cancel()
		if err != nil {
			s.logger.Warn("schema migration failed at start; retrying before the first write", zap.Error(err))
		}
	}
	if s.cfg.Retention > 0 {
		rctx, cancel := context.WithCancel(context.Background())
		s.stopRetention = cancel
		s.retentionDone = make(chan struct{})
		go s.retentionLoop(rctx)
	}
	sharedStores.byConfig[w.cfg] = s
	return s, nil
}

// release is an exporter's shutdown: the last one stops retention and
// closes the pool.
func (s *sharedStore) release() {
	sharedStores.Lock()
	s.users--
	last := s.users == 0
	if last {
		delete(sharedStores.byConfig, s.cfg)
	}
	sharedStores.Unlock()
	if !last {
		return
	}
	if s.stopRetention != nil {
		s.stopRetention()
		<-s.retentionDone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Close()
	s.st = nil
}

func (s *sharedStore) store() (*store.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st == nil {
		return nil, errors.New("driftlock exporter: not started")
	}
	return s.st, nil
}

func (s *sharedStore) ensureMigrated(ctx context.Context) error {
	if !s.cfg.MigrateOnStart {
		return nil
	}
	s.mu.Lock()
	done, st := s.migrated, s.st
	s.mu.Unlock()
	if done || st == nil {
		return nil
	}
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.migrated = true
	s.mu.Unlock()
	return nil
}

// upsertDetectors records the detector configurations referenced by a
// batch, at most once per detectorRefresh per hash for all signals.
func (s *sharedStore) upsertDetectors(ctx context.Context, st *store.Store, dets map[string]string) error {
	now := time.Now()
	for hash, config := range dets {
		s.mu.Lock()
		last, seen := s.detectors[hash]
		s.mu.Unlock()
		if seen && now.Sub(last) < detectorRefresh {
			continue
		}
		err := st.UpsertDetector(ctx, hash, []byte(config))
		if err != nil && config != "" && !store.IsTransient(err) {
			// A configuration attribute that is not JSON must not block
			// the anomalies: record the hash alone.
			s.logger.Warn("detector configuration is not valid JSON; storing the hash only",
				zap.String("config_hash", hash), zap.Error(err))
			err = st.UpsertDetector(ctx, hash, nil)
		}
		if err != nil {
			return err
		}
		s.mu.Lock()
		s.detectors[hash] = now
		s.mu.Unlock()
	}
	return nil
}

// retentionLoop deletes expired anomalies at start and every
// retention_interval, in batches of batch_size rows.
func (s *sharedStore) retentionLoop(ctx context.Context) {
	defer close(s.retentionDone)
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		s.runRetention(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sharedStore) runRetention(ctx context.Context) {
	st, err := s.store()
	if err != nil {
		return
	}
	if err := s.ensureMigrated(ctx); err != nil {
		return // logged by the write path; retried next interval
	}
	n, err := st.DeleteOlderThan(ctx, time.Now().Add(-s.cfg.Retention), s.cfg.BatchSize)
	if n > 0 {
		s.tb.ExporterDriftlockRetentionRowsDeleted.Add(ctx, n)
		s.logger.Info("retention deleted expired anomalies", zap.Int64("rows", n), zap.Duration("retention", s.cfg.Retention))
	}
	if err != nil && ctx.Err() == nil {
		s.logger.Warn("retention failed; retrying next interval", zap.Error(err))
	}
	// Service graph edges whose last call is as old go too (a handful of
	// rows: one statement).
	if _, err := st.DeleteServiceEdgesBefore(ctx, time.Now().Add(-s.cfg.Retention)); err != nil && ctx.Err() == nil {
		s.logger.Warn("retention of service graph edges failed; retrying next interval", zap.Error(err))
	}
}
