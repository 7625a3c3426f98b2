package driftlockfeedbackextension

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/triage"
)

// errNotStarted: a processor asked before the extension started (or after
// it shut down).
var errNotStarted = errors.New("driftlock_feedback: not started")

// feedbackExtension is one connection pool to the anomaly store, shared by
// every processor (and signal) that names this extension.
type feedbackExtension struct {
	cfg *Config

	mu    sync.RWMutex
	store *store.Store
}

var (
	_ component.Component = (*feedbackExtension)(nil)
	_ triage.Source       = (*feedbackExtension)(nil)
)

// Start opens a lazy pool: the collector starts while PostgreSQL is down,
// and the processor's pulls fail (logged, counted) until it is up.
func (x *feedbackExtension) Start(context.Context, component.Host) error {
	s, err := store.New(x.cfg.dsn())
	if err != nil {
		return fmt.Errorf("driftlock_feedback: %w", err)
	}
	x.mu.Lock()
	x.store = s
	x.mu.Unlock()
	return nil
}

// Shutdown closes the pool. Safe to call when Start never ran.
func (x *feedbackExtension) Shutdown(context.Context) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.store != nil {
		x.store.Close()
		x.store = nil
	}
	return nil
}

// FalsePositives implements triage.Source with the store's query.
func (x *feedbackExtension) FalsePositives(ctx context.Context, signal string, after triage.Key, limit int) ([]triage.FalsePositive, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.store == nil {
		return nil, errNotStarted
	}
	return x.store.FalsePositives(ctx, signal, after, limit)
}
