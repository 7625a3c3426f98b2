package driftlockprocessor

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"

	"github.com/driftlock/driftlock/internal/every"
)

// Triage feedback: records a person marked false_positive in the anomaly
// store are pulled periodically and added to their stream's baseline with
// Detector.Learn, so the same kind of record stops being flagged without a
// restart. Two sources read the same store: feedback_store.go
// (feedback.source, an extension reading PostgreSQL directly) and
// feedback_http.go (feedback.endpoint, the API of `driftlock serve`). This file holds what both share: the loop, the ids
// already learned, and the rebuilding of the canonical record.

// maxFeedbackSeen bounds the ids remembered to skip re-learning.
const maxFeedbackSeen = 100_000

// feedbackSource reads the false positives of one signal.
type feedbackSource interface {
	// start prepares the source without touching the network, so the
	// pipeline starts while the store or the API is down.
	start(ctx context.Context, host component.Host) error
	// pull calls f.wanted and f.learn for the false positives it reads and
	// returns how many records were learned.
	pull(ctx context.Context, f *feedback) (int, error)
	close()
}

type feedback struct {
	e    *engine
	form learnerForm
	src  feedbackSource

	mu        sync.Mutex // one pull at a time; guards seen and notBefore
	seen      map[int64]struct{}
	notBefore time.Time // a server asked us to wait (Retry-After) until then

	cancel context.CancelFunc // ends an in-flight pull at shutdown
	done   chan struct{}
}

func newFeedback(e *engine, form learnerForm) *feedback {
	f := &feedback{e: e, form: form, seen: map[int64]struct{}{}}
	if e.cfg.Feedback.Endpoint != "" {
		f.src = newHTTPFeedback(e.cfg.Feedback)
	} else {
		f.src = newStoreFeedback(e.cfg.Feedback)
	}
	return f
}

// start prepares the source and runs the pull loop.
func (f *feedback) start(ctx context.Context, host component.Host) error {
	if err := f.src.start(ctx, host); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	f.done = make(chan struct{})
	go f.loop(ctx, f.e.cfg.Feedback.Interval)
	return nil
}

func (f *feedback) loop(ctx context.Context, iv time.Duration) {
	defer close(f.done)
	every.Tick(ctx, iv, func(ctx context.Context) { f.tick(ctx, iv) })
}

// tick runs one pull bounded by the interval, unless a server asked us to
// wait longer; a failure is logged and counted and the pipeline carries on.
func (f *feedback) tick(parent context.Context, iv time.Duration) {
	f.mu.Lock()
	wait := time.Until(f.notBefore)
	f.mu.Unlock()
	if wait > 0 {
		f.e.logger.Debug("driftlock feedback pull deferred (Retry-After)", zap.String("signal", f.e.signal), zap.Duration("wait", wait))
		return
	}
	ctx, cancel := context.WithTimeout(parent, iv)
	defer cancel()
	if _, err := f.pull(ctx); err != nil && parent.Err() == nil {
		f.e.logger.Warn("driftlock feedback pull failed", zap.String("signal", f.e.signal), zap.Error(err))
	}
}

func (f *feedback) shutdown() {
	if f.cancel != nil {
		f.cancel()
		<-f.done
		f.cancel = nil
	}
	f.src.close()
}

// pull learns every false positive of this signal marked since the last
// pull, for the streams this collector holds, and returns how many records
// it learned. Records learned before a failure stay learned.
func (f *feedback) pull(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	learned, err := f.src.pull(ctx, f)
	if learned > 0 {
		f.e.tb.ProcessorDriftlockFeedbackLearned.Add(ctx, int64(learned), f.e.sigAttr)
		f.e.logger.Info("learned records marked false positive", zap.String("signal", f.e.signal), zap.Int("records", learned))
	}
	if err != nil {
		// A pull cancelled by shutdown is not a failure.
		if !errors.Is(err, context.Canceled) {
			f.e.tb.ProcessorDriftlockFeedbackErrors.Add(context.WithoutCancel(ctx), 1, f.e.sigAttr)
		}
		return learned, err
	}
	return learned, nil
}

// deferUntil records a server's Retry-After; callers hold f.mu (inside
// pull).
func (f *feedback) deferUntil(t time.Time) {
	if t.After(f.notBefore) {
		f.notBefore = t
	}
}

// wanted reports whether record id of stream still has to be learned. Only
// streams this collector holds are learned: in a fleet each stream lives on
// one scorer, and learning elsewhere would create a stray stream. An id of
// a stream held elsewhere is remembered as done.
func (f *feedback) wanted(id int64, stream string) bool {
	if _, dup := f.seen[id]; dup {
		return false
	}
	if !f.e.det.Has(stream) {
		f.remember(id)
		return false
	}
	return true
}

func (f *feedback) remember(id int64) {
	if len(f.seen) >= maxFeedbackSeen {
		clear(f.seen)
	}
	f.seen[id] = struct{}{}
}

// learn rebuilds the canonical record from the exporter's stored record
// and attributes documents and teaches it to stream; it reports whether it
// did. The id is remembered either way: a record that cannot be rebuilt
// will not become usable on a later pull.
func (f *feedback) learn(s *scratch, id int64, stream string, record, attrs []byte) bool {
	f.remember(id)
	rec, ok := f.form.rebuild(f.e, s, record, attrs)
	if !ok {
		f.e.logger.Debug("false positive without a usable record", zap.Int64("id", id))
		return false
	}
	f.e.det.Learn(stream, rec)
	return true
}
