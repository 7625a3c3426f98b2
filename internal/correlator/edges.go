package correlator

import (
	"context"
	"slices"
	"time"

	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/servicegraph"
	"github.com/driftlock/driftlock/internal/store"
)

// The service graph the exporters learn from spans (internal/servicegraph,
// stored in service_edges) reaches the correlator here. An edge is given to
// the correlator (AddEdge(caller, callee, last_seen)) once the correlator's
// observed time reaches the edge's first_seen: the graph at observed time T
// holds the calls seen by T, so a backlog or a rebuild weighs its anomalies
// with the graph they would have met live (and `driftlock eval nezha`, which
// feeds each edge at its first call, sees the same graph). It is given at
// last_seen because the correlator forgets an edge EdgeTTL (observed time)
// after the time it was given: an edge still being called stays, one not
// called for EdgeTTL goes. A later write of the edge (a newer last_seen) is
// given again, which only moves its time forward.

// edgeOverlap is how far back of the newest updated_at read the next read
// starts: a write whose statement began earlier (so carries an earlier
// updated_at) may commit after the read. It covers the exporter's edge
// write timeout; rows read twice are merged, and giving an edge twice
// changes nothing.
const edgeOverlap = 15 * time.Second

// edgeMinInterval spaces the reads of a live spell: a catch-up runs on
// every notification of new anomalies, the graph changes far less often.
const edgeMinInterval = time.Second

// edgeFeed holds the stored edges not yet given to the correlator.
type edgeFeed struct {
	since    time.Time           // database time: read updated_at > since
	pending  []servicegraph.Edge // by first seen, one per pair
	lastRead time.Time           // wall time of the last read
}

// load reads the edges written since the last read (all of them on the
// first) into pending.
func (f *edgeFeed) load(ctx context.Context, st *store.Store, now time.Time) error {
	edges, err := st.ServiceEdgesSince(ctx, f.since)
	if err != nil {
		return err
	}
	f.lastRead = now
	newest := time.Time{}
	for _, e := range edges {
		if e.UpdatedAt.After(newest) {
			newest = e.UpdatedAt
		}
	}
	if from := newest.Add(-edgeOverlap); from.After(f.since) {
		f.since = from
	}
	if len(edges) == 0 {
		return nil
	}
	// One entry per pair: the widest range read (servicegraph.Merge; the
	// stored calls are running totals, which the correlator does not use).
	all := f.pending
	for _, e := range edges {
		all = append(all, servicegraph.Edge{Caller: e.Caller, Callee: e.Callee, First: e.FirstSeen, Last: e.LastSeen})
	}
	merged := servicegraph.Merge(nil, all)
	slices.SortStableFunc(merged, func(a, b servicegraph.Edge) int { return a.First.Compare(b.First) })
	f.pending = merged
	return nil
}

// due reports whether a live spell should read again.
func (f *edgeFeed) due(now time.Time) bool { return now.Sub(f.lastRead) >= edgeMinInterval }

// giveUpTo gives c the pending edges first seen at or before t.
func (f *edgeFeed) giveUpTo(c *incident.Correlator, t time.Time) {
	n := 0
	for n < len(f.pending) && !f.pending[n].First.After(t) {
		e := &f.pending[n]
		c.AddEdge(e.Caller, e.Callee, e.Last)
		n++
	}
	if n > 0 {
		f.pending = slices.Delete(f.pending, 0, n)
	}
}
