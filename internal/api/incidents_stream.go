package api

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/driftlock/driftlock/internal/store"
)

// The live stream of incident changes, GET /v1/incidents/stream. One
// poller per server reads the incidents changed since its position
// ((updated_at, id) order) every SSEPoll, and at once after a triage
// through this server, and fans them out to the connected clients.
//
// updated_at is a transaction's start time, so a change can become visible
// after later ones were read: every poll re-reads changeOverlap back and
// sends a row only when its version is newer than the one last sent. A
// change is therefore delivered at least once (a resuming client may see
// one again); clients keep the highest version of each incident.

const (
	changeOverlap  = 30 * time.Second
	incidentBatch  = 500
	incidentBuffer = 256
)

type incidentEvent struct {
	in   store.Incident
	data []byte
}

type incidentClient struct {
	ch   chan *incidentEvent
	gone chan struct{}
}

type incidentHub struct {
	s       *Server
	mu      sync.Mutex
	clients map[*incidentClient]struct{}
	wake    chan struct{}
	done    chan struct{}
	// sent holds the last version sent of each incident changed within
	// the overlap; older entries are dropped.
	sent map[int64]sentVersion
	pos  store.ChangeKey
}

type sentVersion struct {
	version   int
	updatedAt time.Time
}

func newIncidentHub(s *Server) *incidentHub {
	return &incidentHub{s: s, clients: map[*incidentClient]struct{}{}, wake: make(chan struct{}, 1),
		done: make(chan struct{}), sent: map[int64]sentVersion{}}
}

func (h *incidentHub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *incidentHub) register() (*incidentClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) >= h.s.cfg.SSEMaxClients {
		return nil, errTooManyClients
	}
	c := &incidentClient{ch: make(chan *incidentEvent, incidentBuffer), gone: make(chan struct{})}
	h.clients[c] = struct{}{}
	return c, nil
}

func (h *incidentHub) unregister(c *incidentClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, c)
}

func (h *incidentHub) run(ctx context.Context) {
	defer close(h.done)
	// Start from now: clients read the current list themselves and resume
	// with Last-Event-ID; the poller only carries changes from here on.
	h.pos = store.ChangeKey{UpdatedAt: time.Now().Add(-changeOverlap)}
	tick := time.NewTicker(h.s.cfg.SSEPoll)
	defer tick.Stop()
	for {
		if err := h.poll(ctx); err != nil && ctx.Err() == nil {
			h.s.log.Error("incident stream: poll", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-tick.C:
		}
	}
}

func (h *incidentHub) poll(ctx context.Context) error {
	from := store.ChangeKey{UpdatedAt: h.pos.UpdatedAt.Add(-changeOverlap)}
	for {
		qctx, cancel := context.WithTimeout(ctx, h.s.cfg.QueryTimeout)
		rows, err := h.s.st.IncidentsChangedSince(qctx, from, incidentBatch)
		cancel()
		if err != nil {
			return err
		}
		var evs []*incidentEvent
		for i := range rows {
			in := rows[i]
			if prev, ok := h.sent[in.ID]; ok && prev.version >= in.Version {
				continue
			}
			h.sent[in.ID] = sentVersion{version: in.Version, updatedAt: in.UpdatedAt}
			evs = append(evs, &incidentEvent{in: in, data: mustJSON(&in)})
			if in.UpdatedAt.After(h.pos.UpdatedAt) {
				h.pos = store.ChangeKey{UpdatedAt: in.UpdatedAt, ID: in.ID}
			}
		}
		h.broadcast(evs)
		if len(rows) < incidentBatch {
			break
		}
		last := rows[len(rows)-1]
		from = store.ChangeKey{UpdatedAt: last.UpdatedAt, ID: last.ID}
	}
	for id, sv := range h.sent {
		if sv.updatedAt.Before(h.pos.UpdatedAt.Add(-2 * changeOverlap)) {
			delete(h.sent, id)
		}
	}
	return nil
}

func (h *incidentHub) broadcast(evs []*incidentEvent) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range evs {
		for c := range h.clients {
			select {
			case c.ch <- e:
			default:
				close(c.gone)
				delete(h.clients, c)
				h.s.log.Warn("incident stream client too slow; disconnected (it can resume with Last-Event-ID)")
			}
		}
	}
}

// handleIncidentStream serves GET /v1/incidents/stream.
func (s *Server) handleIncidentStream(w http.ResponseWriter, r *http.Request) {
	q, err := newQuery(r.URL.RawQuery, []string{"last_event_id"})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resume, err := parseChangeKey(resumePosition(r, q))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.incidents.register()
	if errors.Is(err, errTooManyClients) {
		s.rejectTooManyClients(w, r, "the incident stream")
		return
	}
	defer s.incidents.unregister(c)
	write, err := s.startEventStream(w)
	if err != nil {
		return
	}
	// Backfill the changes after the resume position (with the overlap, so
	// a late commit is not missed), then switch to live events.
	if resume != nil {
		from := store.ChangeKey{UpdatedAt: resume.UpdatedAt.Add(-changeOverlap)}
		for {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
			rows, err := s.st.IncidentsChangedSince(ctx, from, incidentBatch)
			cancel()
			if err != nil {
				s.log.Error("incident stream: backfill", "err", err, "request_id", requestIDFrom(r.Context()))
				return
			}
			for i := range rows {
				if writeIncidentEvent(write, &rows[i], mustJSON(&rows[i])) != nil {
					return
				}
			}
			if len(rows) < incidentBatch {
				break
			}
			last := rows[len(rows)-1]
			from = store.ChangeKey{UpdatedAt: last.UpdatedAt, ID: last.ID}
		}
	}
	pumpEvents(r, s.cfg.SSEHeartbeat, s.incidents.done, c.gone, c.ch, write, func(e *incidentEvent) error {
		if err := writeIncidentEvent(write, &e.in, e.data); err != nil {
			return err
		}
		s.metrics.sseEvents.Inc()
		return nil
	})
}

// pumpEvents sends a stream's live events with send until the client
// leaves, the hub stops or drops the client (gone), writing heartbeat
// comments while idle.
func pumpEvents[E any](r *http.Request, heartbeat time.Duration, done, gone <-chan struct{}, events <-chan E, write func([]byte) error, send func(E) error) {
	hb := time.NewTicker(heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-done:
			return
		case <-gone:
			return
		case <-hb.C:
			if write([]byte(": ping\n\n")) != nil {
				return
			}
		case e := <-events:
			if send(e) != nil {
				return
			}
		}
	}
}

// startEventStream answers 200 text/event-stream, sends the retry hint and
// returns the stream's writer: each write gets its own deadline, so a dead
// client is dropped within WriteTimeout while a live one may stay connected
// for days.
func (s *Server) startEventStream(w http.ResponseWriter) (func([]byte) error, error) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	return write, write([]byte("retry: 3000\n: connected\n\n"))
}
