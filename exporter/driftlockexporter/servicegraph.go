package driftlockexporter

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/driftlock/driftlock/internal/every"
	"github.com/driftlock/driftlock/internal/servicegraph"
	"github.com/driftlock/driftlock/internal/store"
)

// graphWriteTimeout bounds one write of the edges (a few hundred rows at
// most in practice).
const graphWriteTimeout = 10 * time.Second

// graphWriter learns the service call graph from every span the traces
// exporter receives (internal/servicegraph: a span whose parent is in
// another service is a call) and upserts it into service_edges every
// flush_interval and at shutdown, for `driftlock serve`'s correlator.
//
// It is best effort and apart from the anomaly rows: learning takes one
// short lock per request (a few tens of nanoseconds per span, nothing
// allocated), and a failed edge write is logged once, counted, and its
// edges are kept for the next flush; it never fails or delays a request.
// Memory is bounded: the learner's two span tables
// (servicegraph.DefaultSpanMemory slots each, 6 MiB) and at most
// servicegraph.DefaultMaxEdges distinct edges per flush interval.
type graphWriter struct {
	w        *writer
	interval time.Duration

	mu      sync.Mutex // guards learner
	learner *servicegraph.Learner

	flushMu sync.Mutex // one write at a time; guards the fields below
	failing bool       // the last write failed (and was logged)
	dropped int64      // learner.Dropped() when last reported

	stopLoop context.CancelFunc
	done     chan struct{}
}

func newGraphWriter(w *writer, interval time.Duration) *graphWriter {
	return &graphWriter{w: w, interval: interval, learner: servicegraph.New(servicegraph.Options{})}
}

// observe learns the calls of one request's spans.
func (g *graphWriter) observe(td ptrace.Traces, now time.Time) {
	g.mu.Lock()
	g.learner.ObserveTraces(td, now)
	g.mu.Unlock()
}

func (g *graphWriter) start() {
	ctx, cancel := context.WithCancel(context.Background())
	g.stopLoop, g.done = cancel, make(chan struct{})
	go func() {
		defer close(g.done)
		every.Tick(ctx, g.interval, g.flush)
	}()
}

// stop ends the flush loop and writes what is left, within ctx (the
// collector's shutdown deadline).
func (g *graphWriter) stop(ctx context.Context) {
	if g.stopLoop == nil {
		return
	}
	g.stopLoop()
	<-g.done
	g.stopLoop = nil
	g.flush(ctx)
}

// flush writes the edges learned since the last successful write.
func (g *graphWriter) flush(ctx context.Context) {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	g.mu.Lock()
	edges := g.learner.Drain(nil)
	dropped := g.learner.Dropped()
	g.mu.Unlock()
	if dropped > g.dropped {
		if g.dropped == 0 {
			g.w.logger.Warn("service graph: more distinct caller -> callee edges in one flush interval than the exporter keeps; calls of further edges are not counted",
				zap.Int("max_edges", servicegraph.DefaultMaxEdges), zap.Int64("calls_dropped", dropped))
		}
		g.dropped = dropped
	}
	if len(edges) == 0 {
		return
	}
	err := g.write(ctx, edges)
	if err == nil {
		g.w.tb.ExporterDriftlockServiceEdgesWritten.Add(ctx, int64(len(edges)), g.w.attrs)
		if g.failing {
			g.w.logger.Info("service graph: edge writes recovered", zap.Int("edges", len(edges)))
			g.failing = false
		}
		return
	}
	g.mu.Lock()
	g.learner.Restore(edges)
	g.mu.Unlock()
	g.w.tb.ExporterDriftlockServiceEdgesFailed.Add(context.WithoutCancel(ctx), int64(len(edges)), g.w.attrs)
	if !g.failing {
		g.w.logger.Warn("service graph: writing the edges failed; keeping them for the next flush (anomaly writes are not affected)",
			zap.Int("edges", len(edges)), zap.Error(err))
		g.failing = true
	} else {
		g.w.logger.Debug("service graph: edge write failed again", zap.Error(err))
	}
}

func (g *graphWriter) write(ctx context.Context, edges []servicegraph.Edge) error {
	shared, err := g.w.sharedStore()
	if err != nil {
		return err
	}
	st, err := shared.store()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, graphWriteTimeout)
	defer cancel()
	if err := shared.ensureMigrated(ctx); err != nil {
		return err
	}
	rows := make([]store.ServiceEdge, len(edges))
	for i, e := range edges {
		rows[i] = store.ServiceEdge{Caller: e.Caller, Callee: e.Callee, FirstSeen: e.First, LastSeen: e.Last, Calls: e.Calls}
	}
	return st.UpsertServiceEdges(ctx, rows)
}
