// Package correlator runs the incident correlator (internal/incident) over
// the anomaly store inside `driftlock serve`: one active correlator among
// any number of replicas (a PostgreSQL advisory lock), reading new
// anomalies gap-free in id order, weighing them in observed time, and
// writing incidents, membership, notifications and its own position and
// state in one transaction per step, so that a restart or a takeover by
// another replica continues exactly where it stopped.
package correlator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/notify"
	"github.com/driftlock/driftlock/internal/store"
)

// Runner keeps trying to be the active correlator and, while it is,
// correlates.
type Runner struct {
	st       *store.Store
	cfg      Config
	notifier *notify.Notifier
	log      *slog.Logger
	m        *metrics
	now      func() time.Time
}

// New checks cfg and builds a runner. notifier may be nil (incidents are
// stored, nothing is sent); reg (may be nil) gets the correlator metrics.
func New(st *store.Store, cfg Config, notifier *notify.Notifier, log *slog.Logger, reg prometheus.Registerer) (*Runner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{st: st, cfg: cfg, notifier: notifier, log: log, m: newMetrics(reg), now: time.Now}, nil
}

// Run competes for the correlator lock until ctx ends: while another
// replica holds it, it retries every Standby; while it holds it, it
// correlates (and, with a notifier, delivers notifications). Errors of an
// active spell (a lost connection, a failed save) end the spell; its state
// is thrown away and the next spell resumes from the saved position.
func (r *Runner) Run(ctx context.Context) {
	for ctx.Err() == nil {
		cs, err := r.st.TryLockCorrelator(ctx, r.cfg.Name)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				r.log.Warn("correlator: cannot reach the store; retrying", "err", err)
			}
		case cs == nil:
			r.m.active.Set(0)
		default:
			r.m.active.Set(1)
			r.log.Info("correlator: active", "name", r.cfg.Name)
			err := r.activeSpell(ctx, cs, false)
			cs.Release()
			r.m.active.Set(0)
			if ctx.Err() != nil {
				return
			}
			r.log.Error("correlator: stopped being active; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.cfg.Standby):
		}
	}
}

// ErrBusy is returned by CatchUp when another process is the active
// correlator.
var ErrBusy = errors.New("correlator: another process is the active correlator")

// CatchUp takes the lock once, serves a pending rebuild request, correlates
// every stored anomaly and returns (driftlock incidents rebuild without a
// running serve). Notifications are queued, not sent.
func (r *Runner) CatchUp(ctx context.Context) error {
	cs, err := r.st.TryLockCorrelator(ctx, r.cfg.Name)
	if err != nil {
		return err
	}
	if cs == nil {
		return ErrBusy
	}
	defer cs.Release()
	return r.activeSpell(ctx, cs, true)
}

// activeSpell correlates while the lock is held; once returns after the
// first catch-up.
func (r *Runner) activeSpell(ctx context.Context, cs *store.CorrelatorSession, once bool) error {
	ctx, cancel := context.WithCancel(ctx)
	// The helpers (LISTEN, notifier) end before the lock is released: a
	// notifier still sending after that could race the next active one.
	var helpers sync.WaitGroup
	defer helpers.Wait()
	defer cancel()
	s, err := r.resume(ctx, cs)
	if err != nil {
		return err
	}
	if once {
		if err := s.catchUp(ctx); err != nil {
			return err
		}
		return nil
	}
	wake := make(chan struct{}, 1)
	poke := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	helpers.Go(func() {
		for ctx.Err() == nil {
			err := r.st.ListenAnomalies(ctx, poke)
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("correlator: LISTEN connection lost; reconnecting (polling meanwhile)", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
	if r.notifier != nil {
		helpers.Go(func() { r.notifier.Run(ctx) })
	}
	poll := time.NewTicker(r.cfg.Poll)
	defer poll.Stop()
	check := time.NewTicker(5 * time.Second)
	defer check.Stop()
	var gapTimer <-chan time.Time
	for {
		if err := s.catchUp(ctx); err != nil {
			return err
		}
		gapTimer = nil
		if s.cursor.Pending() {
			gapTimer = time.After(s.cursor.RetryAfter())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-poll.C:
		case <-gapTimer:
		case <-check.C:
			// The lock lives as long as the session's connection; a save on
			// a dead connection fails anyway, this finds out sooner.
			if err := cs.Alive(ctx); err != nil {
				return err
			}
			pos, err := cs.Position(ctx)
			if err != nil {
				return err
			}
			if !pos.RebuildFrom.IsZero() {
				if err := s.rebuild(ctx, pos.RebuildFrom); err != nil {
					return err
				}
			}
		}
	}
}

// resume loads the saved position and state; without a usable snapshot
// (first start, or a snapshot of another version) it rebuilds everything,
// queueing notifications only for incidents still open.
func (r *Runner) resume(ctx context.Context, cs *store.CorrelatorSession) (*session, error) {
	pos, err := cs.Position(ctx)
	if err != nil {
		return nil, err
	}
	s := &session{r: r, cs: cs, last: pos.LastID, maxObserved: pos.Watermark, lastProgress: r.now()}
	if err := s.loadKnown(ctx); err != nil {
		return nil, err
	}
	s.loadEdges(ctx, &s.edges)
	if pos.Snapshot != nil {
		c, err := incident.Restore(pos.Snapshot)
		if err == nil {
			s.c = c
		} else {
			r.log.Warn("correlator: saved state unusable; rebuilding from the anomalies", "err", err)
		}
	}
	if s.c == nil {
		if s.c, err = incident.New(r.cfg.Incident); err != nil {
			return nil, err
		}
		if err := s.rebuild(ctx, time.Time{}); err != nil {
			return nil, err
		}
	} else if !pos.RebuildFrom.IsZero() {
		if err := s.rebuild(ctx, pos.RebuildFrom); err != nil {
			return nil, err
		}
	} else {
		s.edges.giveUpTo(s.c, s.frontier())
	}
	s.publishOpen()
	return s, nil
}

// session is one active spell's state.
type session struct {
	r           *Runner
	cs          *store.CorrelatorSession
	c           *incident.Correlator
	last        int64     // every anomaly with id <= last has been fed
	maxObserved time.Time // newest observed time fed
	// lastProgress is the wall time of the last new row, of the start of
	// the spell, or of the last store error: the idle clock starts there.
	lastProgress time.Time
	known        map[string]*known // open incidents by key
	// cursor reads the anomalies gap-free; its Last runs ahead of last
	// while a catch-up reads, and is reset to last at the next one.
	cursor store.IDCursor
	// edges is the stored service graph not yet given to the correlator
	// (edges.go); edgesFailing is set while reading it fails (logged once).
	edges        edgeFeed
	edgesFailing bool
}

// frontier is the observed time the correlator has reached.
func (s *session) frontier() time.Time {
	if w := s.c.Watermark(); w.After(s.maxObserved) {
		return w
	}
	return s.maxObserved
}

// loadEdges reads the service graph's new edges into f. The graph is
// best effort: a failed read is logged (once until a read succeeds) and
// the correlator carries on with the edges it has.
func (s *session) loadEdges(ctx context.Context, f *edgeFeed) {
	err := f.load(ctx, s.r.st, s.r.now())
	switch {
	case err != nil && ctx.Err() == nil && !s.edgesFailing:
		s.r.log.Warn("correlator: cannot read the service graph (service_edges); going on with the edges already known", "err", err)
		s.edgesFailing = true
	case err == nil && s.edgesFailing:
		s.r.log.Info("correlator: reading the service graph works again")
		s.edgesFailing = false
	}
}

// known is what the session remembers of an open incident.
type known struct {
	id       int64
	revision int
	leader   string
	severity string
}

// maxCatchUp bounds the rows one catch-up holds and sorts.
const maxCatchUp = 200_000

func (s *session) loadKnown(ctx context.Context) error {
	open, err := s.r.st.OpenIncidents(ctx)
	if err != nil {
		return err
	}
	s.known = make(map[string]*known, len(open))
	for _, in := range open {
		s.known[in.Key] = &known{id: in.ID, revision: in.Revision, leader: in.Leader, severity: in.Severity}
	}
	return nil
}

// catchUp reads and correlates every settled new anomaly, then lets the
// correlator's clock follow wall time if nothing arrived for IdleAdvance.
func (s *session) catchUp(ctx context.Context) error {
	now := s.r.now()
	c := &s.cursor
	c.Last, c.GraceMin, c.GraceMax = s.last, s.r.cfg.GapGraceMin, s.r.cfg.GapGraceMax
	skipped, err := c.Settle(ctx, s.r.st, now)
	if err != nil {
		s.lastProgress = now
		return err
	}
	if skipped != 0 {
		s.r.log.Warn("correlator: skipping an id gap after the grace period; a writer held its transaction open too long",
			"below_id", skipped, "grace", s.r.cfg.GapGraceMax)
	}
	if s.edges.due(now) {
		s.loadEdges(ctx, &s.edges)
	}
	s.edges.giveUpTo(s.c, s.frontier())
	// Every settled row available now is read before any is fed, and fed
	// in observed order: a backlog (collectors draining their queues after
	// an outage, in whatever interleaving) is weighed as it would have
	// been live. Up to maxCatchUp rows at a time.
	var pending []store.MemberAnomaly
	var ids []int64
	for len(pending) < maxCatchUp {
		rows, xip, err := s.r.st.MembersAfter(ctx, c.Last, s.r.cfg.Batch)
		if err != nil {
			s.lastProgress = now
			return err
		}
		ids = ids[:0]
		for i := range rows {
			ids = append(ids, rows[i].ID)
		}
		n, more := c.Take(ids, xip, len(rows) == s.r.cfg.Batch, now)
		pending = append(pending, rows[:n]...)
		if n > 0 {
			s.r.m.lag.Set(max(0, now.Sub(rows[0].DetectedAt).Seconds()))
		}
		if !more {
			break
		}
	}
	cur := c.Last
	if len(pending) > 0 || cur != s.last {
		sort.SliceStable(pending, func(i, j int) bool {
			if !pending[i].ObservedAt.Equal(pending[j].ObservedAt) {
				return pending[i].ObservedAt.Before(pending[j].ObservedAt)
			}
			return pending[i].ID < pending[j].ID
		})
		if err := s.feed(ctx, pending, cur); err != nil {
			return err
		}
		if len(pending) > 0 {
			s.lastProgress = now
		}
		if len(pending) >= maxCatchUp {
			return s.catchUp(ctx) // more to read
		}
	}
	if c.Pending() {
		return nil
	}
	s.r.m.lag.Set(0)
	if idle := now.Sub(s.lastProgress); idle >= s.r.cfg.IdleAdvance {
		to := now.Add(-s.r.cfg.IdleAdvance).UTC()
		if to.After(s.c.Watermark()) {
			s.edges.giveUpTo(s.c, to)
			if ev := s.c.Advance(to); len(ev) > 0 {
				return s.save(ctx, ev, s.last)
			}
		}
	}
	return nil
}

// feed correlates rows (in id order) and saves the outcome with position
// last. An anomaly the correlator refuses is logged and skipped; it stays
// in the store.
func (s *session) feed(ctx context.Context, rows []store.MemberAnomaly, last int64) error {
	var events []incident.Event
	for i := range rows {
		a := Input(&rows[i])
		if a.ObservedAt.Before(s.c.Watermark()) {
			// Its bucket was already weighed: it can only join an open
			// incident of its service. Counted, so that an operator sees
			// when a rebuild (driftlock incidents rebuild) is worth it.
			s.r.m.late.Inc()
		}
		s.edges.giveUpTo(s.c, a.ObservedAt)
		ev, err := s.c.Add(a)
		if err != nil {
			s.r.m.skipped.Inc()
			s.r.log.Warn("correlator: anomaly skipped", "id", rows[i].ID, "err", err)
			continue
		}
		events = append(events, ev...)
		if a.ObservedAt.After(s.maxObserved) {
			s.maxObserved = a.ObservedAt
		}
	}
	return s.save(ctx, events, last)
}

// save writes events, the position and the state in one transaction.
func (s *session) save(ctx context.Context, events []incident.Event, last int64) error {
	snap, err := s.c.Snapshot()
	if err != nil {
		return fmt.Errorf("correlator: snapshot: %w", err)
	}
	var opened, closed int
	err = s.cs.Save(ctx, func(tx *store.IncidentTx) error {
		for i := range events {
			o, c, err := s.apply(ctx, tx, &events[i])
			if err != nil {
				return err
			}
			opened += o
			closed += c
		}
		return tx.SetPosition(ctx, last, s.maxObserved, snap)
	})
	if err != nil {
		return err
	}
	s.last = last
	for i := range events {
		if ev := &events[i]; ev.Type == incident.Opened || ev.Type == incident.Closed {
			s.r.log.Info("incident "+ev.Type.String(), "key", ev.Incident.ID, "title", ev.Incident.Title,
				"leader", ev.Incident.Leader(), "observed_at", ev.At)
		}
	}
	s.r.m.opened.Add(float64(opened))
	s.r.m.closed.Add(float64(closed))
	if len(events) > 0 {
		s.publishOpen()
		if s.r.notifier != nil {
			s.r.notifier.Wake()
		}
	}
	return nil
}

// apply writes one event: the incident row, its new members and, on a
// material change, its notifications.
func (s *session) apply(ctx context.Context, tx *store.IncidentTx, ev *incident.Event) (opened, closed int, err error) {
	row, err := toStore(&ev.Incident, ev.Change)
	if err != nil {
		return 0, 0, err
	}
	k := s.known[row.Key]
	if k == nil && ev.Type != incident.Opened {
		prev, err := tx.IncidentByKey(ctx, row.Key)
		if err != nil && !errors.Is(err, store.ErrIncidentNotFound) {
			return 0, 0, err
		}
		if prev != nil {
			k = &known{id: prev.ID, revision: prev.Revision, leader: prev.Leader, severity: prev.Severity}
		}
	}
	event := ""
	var previous *notify.Identity
	switch {
	case k == nil:
		row.Revision, event, opened = 1, store.EventOpened, 1
		if row.State == store.IncidentClosed {
			closed = 1
		}
	case ev.Type == incident.Closed:
		row.Revision, event, closed = k.revision+1, store.EventClosed, 1
	default:
		row.Revision = k.revision
		if ev.Material || severityRank(row.Severity) > severityRank(k.severity) {
			row.Revision, event = k.revision+1, store.EventChanged
			if k.leader != row.Leader || k.severity != row.Severity {
				previous = &notify.Identity{Leader: k.leader, Severity: k.severity}
			}
		}
	}
	if err := tx.Upsert(ctx, row); err != nil {
		return 0, 0, err
	}
	if err := tx.SetMembers(ctx, row.ID, ev.NewMembers); err != nil {
		return 0, 0, err
	}
	if event != "" {
		if err := s.enqueue(ctx, tx, row, event, ev.Change, previous); err != nil {
			return 0, 0, err
		}
	}
	if row.State == store.IncidentOpen {
		s.known[row.Key] = &known{id: row.ID, revision: row.Revision, leader: row.Leader, severity: row.Severity}
	} else {
		delete(s.known, row.Key)
	}
	return opened, closed, nil
}

func (s *session) enqueue(ctx context.Context, tx *store.IncidentTx, row *store.Incident, event, change string, previous *notify.Identity) error {
	if s.r.notifier == nil || len(s.r.notifier.Receivers()) == 0 {
		return nil
	}
	n := notify.New(row, event, change, previous, s.r.notifier.PublicURL())
	items, err := notify.OutboxItems(n, s.r.notifier.Receivers())
	if err != nil {
		return err
	}
	return tx.Enqueue(ctx, items)
}

func severityRank(s string) int {
	switch s {
	case SeverityCritical:
		return 2
	case SeverityWarning:
		return 1
	}
	return 0
}

// publishOpen sets the open-incidents gauge per leading service.
func (s *session) publishOpen() {
	counts := map[string]int{}
	for _, k := range s.known {
		counts[k.leader]++
	}
	s.r.m.open.Reset()
	for svc, n := range counts {
		s.r.m.open.WithLabelValues(svc).Set(float64(n))
	}
}
