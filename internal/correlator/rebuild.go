package correlator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/notify"
	"github.com/driftlock/driftlock/internal/store"
)

// rebuildPage is how many anomalies one read of a rebuild takes.
const rebuildPage = 5000

// final is the last state of one incident in a recomputation.
type final struct {
	inc     incident.Incident
	change  string
	members []int64
}

// rebuild recomputes the incidents from the observed time from on (zero:
// from the first anomaly): a fresh correlator is fed the stored anomalies
// in observed order, from Warmup before from (to learn the backgrounds)
// up to the settled end of the table, and its outcome replaces the stored
// incidents opened since from. Notifications are queued for what changed
// for people: an incident now open that was not, a new leader or severity,
// an open incident that closed or is no longer supported. Incidents that
// opened and closed inside the recomputed past notify nobody. The fresh
// correlator then carries on live.
func (s *session) rebuild(ctx context.Context, from time.Time) error {
	began := s.r.now()
	upTo, err := s.settledEnd(ctx)
	if err != nil {
		return err
	}
	upTo = max(upTo, s.last)
	c, err := incident.New(s.r.cfg.Incident)
	if err != nil {
		return err
	}
	start := time.Time{}
	if !from.IsZero() {
		start = from.Add(-s.r.cfg.Warmup)
	}
	// The service graph is given as the anomalies' observed time reaches
	// each edge's first call (edges.go), as it was live.
	var edges edgeFeed
	s.loadEdges(ctx, &edges)
	finals := map[string]*final{}
	var order []string
	collect := func(events []incident.Event) {
		for _, ev := range events {
			f := finals[ev.Incident.ID]
			if f == nil {
				f = &final{}
				finals[ev.Incident.ID] = f
				order = append(order, ev.Incident.ID)
			}
			f.inc, f.change = ev.Incident, ev.Change
			f.members = append(f.members, ev.NewMembers...)
		}
	}
	// oldIncident holds, for the anomalies observed since from, the
	// incident they belonged to before.
	oldIncident := map[int64]int64{}
	maxObserved := time.Time{}
	var after *store.ObservedKey
	fed := 0
	for {
		rows, err := s.r.st.MembersObserved(ctx, start, upTo, after, rebuildPage)
		if err != nil {
			return err
		}
		for i := range rows {
			a := Input(&rows[i])
			edges.giveUpTo(c, a.ObservedAt)
			ev, err := c.Add(a)
			if err != nil {
				s.r.m.skipped.Inc()
				continue
			}
			fed++
			collect(ev)
			if !a.ObservedAt.Before(from) {
				oldIncident[a.ID] = rows[i].IncidentID
			}
			maxObserved = a.ObservedAt
		}
		if len(rows) < rebuildPage {
			break
		}
		last := rows[len(rows)-1]
		after = &store.ObservedKey{ObservedAt: last.ObservedAt, ID: last.ID}
	}
	// The open ones' latest copies (an update that adds nothing material
	// still changes size and evidence).
	stillOpen := map[string]bool{}
	for _, in := range c.Incidents() {
		stillOpen[in.ID] = true
		if f := finals[in.ID]; f != nil {
			f.inc = in
		}
	}
	existing, err := s.r.st.IncidentsActiveSince(ctx, from)
	if err != nil {
		return err
	}
	byKey := make(map[string]*store.Incident, len(existing))
	for i := range existing {
		byKey[existing[i].Key] = &existing[i]
	}
	open, err := s.r.st.OpenIncidents(ctx)
	if err != nil {
		return err
	}
	snap, err := c.Snapshot()
	if err != nil {
		return fmt.Errorf("correlator: snapshot: %w", err)
	}
	if maxObserved.Before(s.maxObserved) {
		maxObserved = s.maxObserved
	}
	var nOpened, nClosed, nDeleted int
	err = s.cs.Save(ctx, func(tx *store.IncidentTx) error {
		produced := map[string]bool{}
		member := map[int64]bool{}
		producedIDs := map[int64]bool{}
		for _, key := range order {
			f := finals[key]
			row, err := toStore(&f.inc, f.change)
			if err != nil {
				return err
			}
			old := byKey[key]
			if old == nil {
				if old, err = tx.IncidentByKey(ctx, key); err != nil && !errors.Is(err, store.ErrIncidentNotFound) {
					return err
				}
			}
			if old == nil && f.inc.Opened.Before(from) {
				continue // warm-up only: never invent an incident before from
			}
			event, previous := "", (*notify.Identity)(nil)
			switch {
			case old == nil:
				row.Revision = 1
				if row.State == store.IncidentOpen {
					event = store.EventOpened
					nOpened++
				}
			case old.State == store.IncidentOpen && row.State == store.IncidentClosed:
				row.Revision, event = old.Revision+1, store.EventClosed
				nClosed++
			case old.State == store.IncidentClosed && row.State == store.IncidentOpen:
				row.Revision, event = old.Revision+1, store.EventOpened
				nOpened++
			case row.State == store.IncidentOpen && (old.Leader != row.Leader || old.Severity != row.Severity):
				row.Revision, event = old.Revision+1, store.EventChanged
				previous = &notify.Identity{Leader: old.Leader, Severity: old.Severity}
			default:
				row.Revision = old.Revision
			}
			if err := tx.Upsert(ctx, row); err != nil {
				return err
			}
			if err := tx.SetMembers(ctx, row.ID, f.members); err != nil {
				return err
			}
			for _, id := range f.members {
				member[id] = true
			}
			produced[key], producedIDs[row.ID] = true, true
			if event != "" {
				if err := s.enqueue(ctx, tx, row, event, "recomputed: "+f.change, previous); err != nil {
					return err
				}
			}
		}
		// Stored incidents opened since from that the anomalies no longer
		// support go; open ones are resolved for the receivers first.
		for i := range existing {
			old := &existing[i]
			if produced[old.Key] || old.OpenedAt.Before(from) {
				continue
			}
			if old.State == store.IncidentOpen {
				if err := s.closeStale(ctx, tx, old, "no longer supported by the anomalies (incidents rebuilt)"); err != nil {
					return err
				}
			}
			if err := tx.Delete(ctx, old.ID); err != nil {
				return err
			}
			nDeleted++
		}
		// Incidents left open in the store that the recomputed correlator
		// does not hold (opened before its warm-up) can never close
		// otherwise: they close now.
		for i := range open {
			old := &open[i]
			if stillOpen[old.Key] || produced[old.Key] || !old.OpenedAt.Before(from) {
				continue
			}
			if err := s.closeStale(ctx, tx, old, "closed: the recomputed correlator no longer holds it open"); err != nil {
				return err
			}
			old.State = store.IncidentClosed
			if err := tx.Upsert(ctx, old); err != nil {
				return err
			}
			nClosed++
		}
		// Anomalies since from that left a surviving incident.
		var leave []int64
		for id, inc := range oldIncident {
			if inc != 0 && producedIDs[inc] && !member[id] {
				leave = append(leave, id)
			}
		}
		if err := tx.SetMembers(ctx, 0, leave); err != nil {
			return err
		}
		if err := tx.SetPosition(ctx, upTo, maxObserved, snap); err != nil {
			return err
		}
		return tx.ClearRebuild(ctx, from)
	})
	if err != nil {
		return err
	}
	s.c, s.last, s.maxObserved, s.cursor, s.edges = c, upTo, maxObserved, store.IDCursor{}, edges
	s.r.m.opened.Add(float64(nOpened))
	s.r.m.closed.Add(float64(nClosed))
	if err := s.loadKnown(ctx); err != nil {
		return err
	}
	s.publishOpen()
	if s.r.notifier != nil {
		s.r.notifier.Wake()
	}
	s.r.log.Info("correlator: incidents rebuilt", "from", from, "anomalies", fed, "incidents", len(order),
		"opened", nOpened, "closed", nClosed, "deleted", nDeleted, "took", s.r.now().Sub(began).Round(time.Millisecond).String())
	return nil
}

// closeStale resolves an open incident for the receivers (its row is then
// deleted or marked closed by the caller).
func (s *session) closeStale(ctx context.Context, tx *store.IncidentTx, old *store.Incident, change string) error {
	closedAt := old.LastEvidenceAt.Add(s.r.cfg.Incident.Quiet)
	old.ClosedAt = &closedAt
	old.Revision++
	closed := *old
	closed.State = store.IncidentClosed
	return s.enqueue(ctx, tx, &closed, store.EventClosed, change, nil)
}

// settledEnd is the largest anomaly id below which every row is visible or
// will never exist: the watermark once the transactions then in progress
// have ended (or GapGraceMax passed).
func (s *session) settledEnd(ctx context.Context) (int64, error) {
	began := s.r.now()
	last, xip, err := s.r.st.AnomalyWatermark(ctx)
	if err != nil {
		return 0, err
	}
	for s.r.now().Sub(began) < s.r.cfg.GapGraceMax {
		done, err := s.r.st.TransactionsDone(ctx, xip)
		if err != nil {
			return 0, err
		}
		if done {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return last, nil
}
