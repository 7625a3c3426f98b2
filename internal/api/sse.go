package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/driftlock/driftlock/internal/store"
)

// The live stream. One hub per server polls the anomalies table for rows
// with id > last, woken by LISTEN/NOTIFY (store.NotifyChannel) and by a
// fallback timer, and fans each new row out to the connected clients whose
// filters match. Because every server reads the table itself, any number
// of exporters and API servers work together, and a notification is only
// a hint.
//
// Gaps: the hub reads through a store.IDCursor, which delivers rows in id
// order and holds the rows behind an id gap until it is settled. So each
// client sees every row exactly once and in id order, which makes "resume
// after id N" (Last-Event-ID) exact.

// event is one anomaly, marshalled once for all clients.
type event struct {
	a    store.StoredAnomaly
	data []byte
}

type sseClient struct {
	f    store.AnomalyFilter
	ch   chan *event
	gone chan struct{} // closed when the client fell too far behind
}

const (
	clientBuffer = 512
	hubBatch     = 500
)

var errTooManyClients = errors.New("too many live-stream clients")

type hub struct {
	s       *Server
	mu      sync.Mutex
	clients map[*sseClient]struct{}
	last    int64
	ready   chan struct{}
	wake    chan struct{}
	cursor  store.IDCursor // read position and id gap; the poll loop's own
	done    chan struct{}  // closed when the hub stops
}

func newHub(s *Server) *hub {
	return &hub{s: s, clients: map[*sseClient]struct{}{}, ready: make(chan struct{}),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (h *hub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// register adds a client and returns the id up to which rows were already
// broadcast: the client's backfill ends there and its live events start
// after it.
func (h *hub) register(ctx context.Context, f store.AnomalyFilter) (*sseClient, int64, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-h.done:
		return nil, 0, errors.New("server is shutting down")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.clients) >= h.s.cfg.SSEMaxClients {
		return nil, 0, errTooManyClients
	}
	c := &sseClient{f: f, ch: make(chan *event, clientBuffer), gone: make(chan struct{})}
	h.clients[c] = struct{}{}
	h.s.metrics.sseClients.Set(float64(len(h.clients)))
	return c, h.last, nil
}

func (h *hub) unregister(c *sseClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		h.s.metrics.sseClients.Set(float64(len(h.clients)))
	}
}

// broadcast sends rows to matching clients and advances last, atomically
// with respect to register. A client whose buffer is full is cut off; it
// reconnects with Last-Event-ID and backfills, so nothing is lost.
func (h *hub) broadcast(rows []store.StoredAnomaly, last int64) {
	evs := make([]*event, 0, len(rows))
	for i := range rows {
		b, err := json.Marshal(&rows[i])
		if err != nil {
			h.s.log.Error("marshal anomaly for stream", "id", rows[i].ID, "err", err)
			continue
		}
		evs = append(evs, &event{a: rows[i], data: b})
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range evs {
		for c := range h.clients {
			if !c.f.Match(&e.a) {
				continue
			}
			select {
			case c.ch <- e:
			default:
				close(c.gone)
				delete(h.clients, c)
				h.s.log.Warn("live-stream client too slow; disconnected (it can resume with Last-Event-ID)")
			}
		}
	}
	h.s.metrics.sseClients.Set(float64(len(h.clients)))
	if last > h.last {
		h.last = last
	}
}

func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	if !h.start(ctx) {
		return
	}
	close(h.ready)
	go h.listen(ctx)
	tick := time.NewTicker(h.s.cfg.SSEPoll)
	defer tick.Stop()
	var gapTimer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-tick.C:
		case <-gapTimer:
		}
		if err := h.poll(ctx); err != nil && ctx.Err() == nil {
			h.s.log.Error("live stream: poll", "err", err)
		}
		gapTimer = nil
		if h.cursor.Pending() {
			gapTimer = time.After(h.cursor.RetryAfter())
		}
	}
}

// start finds the first settled watermark: the largest id at startup, once
// the transactions that were running then have ended (so no row below it
// can still appear and be missed by clients that connect afterwards).
func (h *hub) start(ctx context.Context) bool {
	began := time.Now()
	for {
		last, xip, err := h.s.st.AnomalyWatermark(ctx)
		for err == nil {
			done := time.Since(began) >= h.s.cfg.GapGraceMax
			if !done {
				done, err = h.s.st.TransactionsDone(ctx, xip)
			}
			if err == nil && done {
				h.last = last
				h.cursor = store.IDCursor{Last: last, GraceMin: h.s.cfg.GapGraceMin, GraceMax: h.s.cfg.GapGraceMax}
				return true
			}
			select {
			case <-ctx.Done():
				return false
			case <-time.After(50 * time.Millisecond):
			}
		}
		h.s.log.Error("live stream: read the starting watermark", "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Second):
		}
	}
}

func (h *hub) poll(ctx context.Context) error {
	now := time.Now()
	c := &h.cursor
	skipped, err := c.Settle(ctx, h.s.st, now)
	if err != nil {
		return err
	}
	if skipped != 0 {
		h.s.log.Warn("live stream: skipping an id gap after the grace period; a writer held its transaction open too long",
			"below_id", skipped, "grace", h.s.cfg.GapGraceMax)
	}
	var ids []int64
	for {
		rows, xip, err := h.s.st.AnomaliesAfter(ctx, c.Last, hubBatch)
		if err != nil {
			return err
		}
		ids = ids[:0]
		for i := range rows {
			ids = append(ids, rows[i].ID)
		}
		n, more := c.Take(ids, xip, len(rows) == hubBatch, now)
		h.broadcast(rows[:n], c.Last)
		if !more {
			return nil
		}
	}
}

// listen holds a dedicated connection in LISTEN and pokes the hub on each
// notification; after a reconnect it pokes too, since notifications sent
// while it was away are lost.
func (h *hub) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := h.s.st.ListenAnomalies(ctx, h.poke)
		if ctx.Err() != nil {
			return
		}
		h.s.log.Warn("live stream: LISTEN connection lost; reconnecting (polling meanwhile)", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// handleStream serves GET /v1/stream.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	q, f, err := filteredQuery(r.URL.RawQuery, "last_event_id")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resume, err := lastEventID(resumePosition(r, q))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, upTo, err := s.hub.register(r.Context(), f)
	if errors.Is(err, errTooManyClients) {
		s.rejectTooManyClients(w, r, "the live stream")
		return
	}
	if err != nil {
		writeProblem(w, r, problem{Type: typeUnavailable, Status: http.StatusServiceUnavailable, Detail: err.Error()})
		return
	}
	defer s.hub.unregister(c)

	write, err := s.startEventStream(w)
	if err != nil {
		return
	}
	sent := upTo
	if resume > sent {
		sent = resume
	}
	// Backfill (resume, upTo] from the table, then switch to live events.
	for after := resume; resume >= 0 && after < upTo; {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.QueryTimeout)
		rows, err := s.st.AnomaliesBetween(ctx, f, after, upTo, hubBatch)
		cancel()
		if err != nil {
			s.log.Error("live stream: backfill", "err", err, "request_id", requestIDFrom(r.Context()))
			return
		}
		for i := range rows {
			b, _ := json.Marshal(&rows[i])
			if writeEvent(write, rows[i].ID, b) != nil {
				return
			}
			s.metrics.sseEvents.Inc()
		}
		if len(rows) < hubBatch {
			break
		}
		after = rows[len(rows)-1].ID
	}
	pumpEvents(r, s.cfg.SSEHeartbeat, s.hub.done, c.gone, c.ch, write, func(e *event) error {
		if e.a.ID <= sent {
			return nil // already backfilled
		}
		if err := writeEvent(write, e.a.ID, e.data); err != nil {
			return err
		}
		s.metrics.sseEvents.Inc()
		return nil
	})
}

func writeEvent(write func([]byte) error, id int64, data []byte) error {
	b := make([]byte, 0, len(data)+48)
	b = fmt.Appendf(b, "id: %d\nevent: anomaly\ndata: ", id)
	b = append(b, data...)
	b = append(b, '\n', '\n')
	return write(b)
}

// resumePosition is where an event stream resumes: the Last-Event-ID
// header (what EventSource sends on reconnect), else the last_event_id
// query parameter (for clients that cannot set headers).
func resumePosition(r *http.Request, q *query) string {
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		return id
	}
	return q.v.Get("last_event_id")
}

// rejectTooManyClients answers 503 with Retry-After to a stream client
// over the cap; what names the stream.
func (s *Server) rejectTooManyClients(w http.ResponseWriter, r *http.Request, what string) {
	s.metrics.sseRejected.Inc()
	w.Header().Set("Retry-After", "5")
	writeProblem(w, r, problem{Type: typeUnavailable, Status: http.StatusServiceUnavailable,
		Detail: fmt.Sprintf("%s is at its cap of %d clients; retry later", what, s.cfg.SSEMaxClients)})
}
