package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

type sseEvent struct {
	id   int64
	name string
	a    store.StoredAnomaly
}

type sseConn struct {
	t      testing.TB
	cancel context.CancelFunc
	events chan sseEvent
	pings  chan struct{}
	resp   *http.Response
}

// openStream connects to /v1/stream and parses events in the background.
func (e *env) openStream(query, lastEventID string) *sseConn {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/v1/stream?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+e.viewer)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	c := &sseConn{t: e.t, cancel: cancel, events: make(chan sseEvent, 10000), pings: make(chan struct{}, 100), resp: res}
	e.t.Cleanup(c.close)
	if res.StatusCode != http.StatusOK {
		return c
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		e.t.Fatalf("stream content type %q", ct)
	}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(nil, 1<<20)
		var ev sseEvent
		var data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data != "" {
					_ = json.Unmarshal([]byte(data), &ev.a)
					c.events <- ev
				}
				ev, data = sseEvent{}, ""
			case strings.HasPrefix(line, ": ping"):
				select {
				case c.pings <- struct{}{}:
				default:
				}
			case strings.HasPrefix(line, "id: "):
				ev.id, _ = strconv.ParseInt(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			}
		}
	}()
	return c
}

func (c *sseConn) close() {
	c.cancel()
	c.resp.Body.Close()
}

// next returns the next n events or fails after a generous deadline (a
// safety net, not a timing assertion).
func (c *sseConn) next(n int) []sseEvent {
	c.t.Helper()
	var out []sseEvent
	deadline := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("stream closed after %d of %d events", len(out), n)
			}
			out = append(out, ev)
		case <-deadline:
			c.t.Fatalf("got %d of %d events", len(out), n)
		}
	}
	return out
}

func ids(evs []sseEvent) []int64 {
	out := make([]int64, len(evs))
	for i, e := range evs {
		out[i] = e.id
		if e.id != e.a.ID || e.name != "anomaly" {
			panic(fmt.Sprintf("event id %d name %q carries anomaly %d", e.id, e.name, e.a.ID))
		}
	}
	return out
}

func TestStreamLiveFilteredInOrder(t *testing.T) {
	e := newEnv(t)
	// A row the server has already announced before the client connects is
	// not part of that client's live feed (a probe stream shows when).
	probe := e.openStream("", "")
	waitClients(t, e, 1)
	e.insert(row{Service: "a"})
	probe.next(1)
	c := e.openStream("service=a&min_score=5", "")
	waitClients(t, e, 2)
	want := []int64{}
	for i := range 30 {
		svc := []string{"a", "b"}[i%2]
		score := 6.0
		if i%5 == 0 {
			score = 1 // filtered out by min_score
		}
		id := e.insert(row{Service: svc, Score: score})[0]
		if svc == "a" && score >= 5 {
			want = append(want, id)
		}
	}
	got := ids(c.next(len(want)))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("live ids %v, want %v", got, want)
	}
	select {
	case <-c.pings:
	case <-time.After(10 * time.Second):
		t.Fatal("no heartbeat")
	}
}

// waitClients waits until the server counts n stream clients (via /metrics).
func waitClients(t *testing.T, e *env, n int) {
	t.Helper()
	want := fmt.Sprintf("driftlock_api_sse_clients %d\n", n)
	for range 200 {
		if strings.Contains(string(e.get("/metrics", e.viewer).body), want) {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("server never reached %d stream clients", n)
}

func TestStreamResumeAfterDisconnectWithoutGapsOrDuplicates(t *testing.T) {
	e := newEnv(t)
	c := e.openStream("service=a", "")
	waitClients(t, e, 1)
	var all []int64
	for range 10 {
		all = append(all, e.insert(row{Service: "a"}, row{Service: "b"})[0])
	}
	first := ids(c.next(10))
	if fmt.Sprint(first) != fmt.Sprint(all) {
		t.Fatalf("first ids %v, want %v", first, all)
	}
	// Disconnect after 7 events as if the network dropped mid-way: the
	// client only saw up to first[6].
	c.close()
	waitClients(t, e, 0)
	last := first[6]
	var missed []int64
	missed = append(missed, first[7:]...)
	for range 600 { // more than one backfill page
		missed = append(missed, e.insert(row{Service: "a"})[0])
	}
	// Wait until the hub has broadcast past the new rows, so they belong to
	// the backfill, and keep inserting during the reconnect.
	time.Sleep(200 * time.Millisecond)
	c2 := e.openStream("service=a", strconv.FormatInt(last, 10))
	for range 5 {
		missed = append(missed, e.insert(row{Service: "a"}, row{Service: "b"})[0])
	}
	got := ids(c2.next(len(missed)))
	seen := map[int64]bool{}
	for i, id := range got {
		if seen[id] {
			t.Fatalf("duplicate id %d after resume", id)
		}
		seen[id] = true
		if id != missed[i] {
			t.Fatalf("event %d after resume: id %d, want %d (gap or reorder)", i, id, missed[i])
		}
	}
	// Nothing extra arrives.
	select {
	case ev := <-c2.events:
		t.Fatalf("unexpected extra event %d", ev.id)
	case <-time.After(300 * time.Millisecond):
	}
}

// A row whose transaction commits after a later id became visible must
// still be delivered, and before the later row.
func TestStreamHoldsRowsBehindAnUncommittedID(t *testing.T) {
	e := newEnv(t)
	c := e.openStream("", "")
	waitClients(t, e, 1)
	ctx := context.Background()
	tx, err := storetest.Pool(e.st).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var slow int64
	if err := tx.QueryRow(ctx, `INSERT INTO anomalies (fingerprint, signal, stream, observed_at, score, p_value)
 VALUES ('slow-tx', 'logs', 's', now(), 1, 0.5) RETURNING id`).Scan(&slow); err != nil {
		t.Fatal(err)
	}
	fast := e.insert(row{})[0] // commits first, with the larger id
	// Also burn an id with a rollback: the stream must not wait forever.
	tx2, _ := storetest.Pool(e.st).Begin(ctx)
	_, _ = tx2.Exec(ctx, `INSERT INTO anomalies (fingerprint, signal, stream, observed_at, score, p_value) VALUES ('rolled-back', 'logs', 's', now(), 1, 0.5)`)
	_ = tx2.Rollback(ctx)
	after := e.insert(row{})[0]
	time.Sleep(300 * time.Millisecond) // give the hub a chance to (wrongly) deliver fast
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	e.insert(row{Summary: "poke"}) // notify again
	got := ids(c.next(4))
	want := []int64{slow, fast, after, after + 1}
	if fmt.Sprint(got[:3]) != fmt.Sprint(want[:3]) {
		t.Fatalf("ids %v, want %v (slow=%d fast=%d)", got, want, slow, fast)
	}
}

func TestStreamClientCap(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.SSEMaxClients = 2 })
	e.openStream("", "")
	e.openStream("", "")
	waitClients(t, e, 2)
	c := e.openStream("", "")
	if c.resp.StatusCode != http.StatusServiceUnavailable || c.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third client: status %d Retry-After %q", c.resp.StatusCode, c.resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(string(e.get("/metrics", e.viewer).body), "driftlock_api_sse_rejected_total 1") {
		t.Fatal("rejection not counted")
	}
	// Bad resume ids are refused.
	wantCode(t, e.do("GET", "/v1/stream", e.viewer, "", "Last-Event-ID", "abc"), http.StatusBadRequest)
	wantCode(t, e.get("/v1/stream?status=closed", e.viewer), http.StatusBadRequest)
}

// When the LISTEN connection dies, the stream goes on (fallback polling,
// then a new LISTEN connection) without losing rows.
func TestStreamSurvivesListenConnectionLoss(t *testing.T) {
	e := newEnv(t)
	c := e.openStream("", "")
	waitClients(t, e, 1)
	first := e.insert(row{})[0]
	if got := ids(c.next(1)); got[0] != first {
		t.Fatalf("got %v", got)
	}
	var killed int
	err := storetest.Pool(e.st).QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
 WHERE datname = current_database() AND query ILIKE 'LISTEN%'`).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminated %d LISTEN backends (%v), want 1", killed, err)
	}
	var want []int64
	for range 5 {
		want = append(want, e.insert(row{})[0])
	}
	if got := ids(c.next(5)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after LISTEN loss: %v, want %v", got, want)
	}
}

// A long write transaction that never touches anomalies (another table,
// another database: transaction ids are cluster-wide) must not hold the
// stream behind an id gap.
func TestStreamGapNotHeldByUnrelatedTransaction(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.GapGraceMax = time.Hour })
	c := e.openStream("", "")
	waitClients(t, e, 1)
	ctx := context.Background()
	other, err := storetest.Pool(e.st).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	if _, err := other.Exec(ctx, "INSERT INTO audit_log (actor, action) VALUES ('batch', 'long job')"); err != nil {
		t.Fatal(err)
	}
	// Burn an id, then insert: the new row sits behind a gap.
	tx, _ := storetest.Pool(e.st).Begin(ctx)
	_, _ = tx.Exec(ctx, `INSERT INTO anomalies (fingerprint, signal, stream, observed_at, score, p_value) VALUES ('burnt', 'logs', 's', now(), 1, 0.5)`)
	_ = tx.Rollback(ctx)
	id := e.insert(row{})[0]
	if got := ids(c.next(1)); got[0] != id {
		t.Fatalf("got %v, want [%d]", got, id)
	}
}
