package correlator_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/correlator"
	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/notify"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// base is the start of the scenario's observed time: far enough in the
// past that no idle advance (1h in these tests) can reach into it.
var base = time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)

// scenario is three hours of one system: routine flags in a noisy, a quiet
// and a middling service, and two faults (bursts of errors in the quiet
// service, then in the middling one), as the store holds them.
func scenario() []store.Anomaly {
	rng := rand.New(rand.NewPCG(7, 11))
	type svc struct {
		name string
		rate float64 // flags per minute
	}
	services := []svc{{"noisy", 5}, {"quiet", 0.05}, {"other", 1}}
	var out []store.Anomaly
	add := func(s string, at time.Time, reason, kind, summary string) {
		out = append(out, store.Anomaly{Fingerprint: fmt.Sprintf("fp-%d", len(out)), Signal: store.SignalLogs,
			Stream: s + "/logs", Service: s, ObservedAt: at, Score: 1, PValue: 0.008, Summary: summary,
			Attributes: map[string]any{attrs.Reason: reason, attrs.Kind: kind}})
	}
	for sec := 0; sec < 3*3600; sec++ {
		at := base.Add(time.Duration(sec) * time.Second)
		for _, s := range services {
			if rng.Float64() < s.rate/60 {
				add(s.name, at, attrs.ReasonNovel, "routine", "routine line")
			}
		}
	}
	for i := range 12 {
		add("quiet", base.Add(2*time.Hour+time.Duration(i)*5*time.Second), attrs.ReasonErrors, "k-quiet", "ERROR cannot reach contacts")
	}
	for i := range 20 {
		add("other", base.Add(2*time.Hour+40*time.Minute+time.Duration(i)*3*time.Second), attrs.ReasonErrors, "k-other", "ERROR price lookup failed")
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ObservedAt.Before(out[j].ObservedAt) })
	return out
}

// outcome is what the store holds: per incident key, its state and members.
type outcome map[string]string

func stored(t *testing.T, st *store.Store) outcome {
	t.Helper()
	ctx := context.Background()
	max, err := st.MaxAnomalyID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := st.MembersObserved(ctx, time.Time{}, max, nil, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	members := map[int64][]int64{}
	for _, r := range rows {
		if r.IncidentID != 0 {
			members[r.IncidentID] = append(members[r.IncidentID], r.ID)
		}
	}
	incs, err := st.IncidentsActiveSince(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	out := outcome{}
	for _, in := range incs {
		m := members[in.ID]
		sort.Slice(m, func(i, j int) bool { return m[i] < m[j] })
		out[in.Key] = fmt.Sprintf("%s leader=%s members=%v", in.State, in.Leader, m)
	}
	return out
}

// reference is the pure correlator fed the stored anomalies in observed
// order, as the store would hold its events.
func reference(t *testing.T, st *store.Store) outcome {
	t.Helper()
	ctx := context.Background()
	max, _ := st.MaxAnomalyID(ctx)
	rows, err := st.MembersObserved(ctx, time.Time{}, max, nil, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	c, err := incident.New(incident.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	leader := map[string]string{}
	members := map[string][]int64{}
	for i := range rows {
		ev, err := c.Add(correlator.Input(&rows[i]))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ev {
			members[e.Incident.ID] = append(members[e.Incident.ID], e.NewMembers...)
			state[e.Incident.ID], leader[e.Incident.ID] = "open", e.Incident.Leader()
			if !e.Incident.Open() {
				state[e.Incident.ID] = "closed"
			}
		}
	}
	out := outcome{}
	for k, s := range state {
		m := members[k]
		sort.Slice(m, func(i, j int) bool { return m[i] < m[j] })
		out[k] = fmt.Sprintf("%s leader=%s members=%v", s, leader[k], m)
	}
	return out
}

func testConfig() correlator.Config {
	cfg := correlator.DefaultConfig()
	cfg.Poll = 50 * time.Millisecond
	cfg.Standby = 50 * time.Millisecond
	cfg.IdleAdvance = time.Hour
	cfg.Batch = 200
	return cfg
}

func insert(t *testing.T, st *store.Store, rows []store.Anomaly) {
	t.Helper()
	if _, err := st.InsertAnomalies(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
}

// waitCaughtUp waits until the saved position covers every stored anomaly.
func waitCaughtUp(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for {
		max, _ := st.MaxAnomalyID(ctx)
		pos, err := st.CorrelatorPosition(ctx, "default")
		if err == nil && pos.LastID >= max && pos.Snapshot != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("correlator not caught up after 30s: position %d, max id %d (err %v)", pos.LastID, max, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type replica struct {
	cancel context.CancelFunc
	done   chan struct{}
	reg    *prometheus.Registry
	st     *store.Store
}

// startReplica runs a runner as one `serve` replica would, on its own pool.
func startReplica(t *testing.T, dsn string, n func(*store.Store, *prometheus.Registry) *notify.Notifier) *replica {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var notifier *notify.Notifier
	if n != nil {
		notifier = n(st, reg)
	}
	r, err := correlator.New(st, testConfig(), notifier, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rep := &replica{cancel: cancel, done: make(chan struct{}), reg: reg, st: st}
	go func() {
		defer close(rep.done)
		r.Run(ctx)
	}()
	t.Cleanup(rep.stop)
	return rep
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
	r.st.Close()
}

// waitStarted waits until one of the replicas is active and its start-up
// (resume, and the initial rebuild of an empty store) has saved a position.
func waitStarted(t *testing.T, st *store.Store, rs ...*replica) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		active := 0.0
		for _, r := range rs {
			active += r.active(t)
		}
		var saved bool
		_ = storetest.Pool(st).QueryRow(context.Background(), "SELECT count(*) > 0 FROM correlator_state WHERE snapshot IS NOT NULL").Scan(&saved)
		if active == 1 && saved {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no replica became active and saved its starting position within 10 s (active %v, saved %v)", active, saved)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *replica) active(t *testing.T) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "driftlock_correlator_active" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// hook is a webhook receiver counting deliveries per idempotency key.
type hook struct {
	mu   sync.Mutex
	keys map[string]int
	evs  map[string]int
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys[r.Header.Get(notify.IdempotencyHeader)]++
	h.evs[r.Header.Get(notify.EventHeader)]++
}

func TestTwoReplicasOneActiveTakeoverAndNoDuplicateNotifications(t *testing.T) {
	st, dsn := storetest.Open(t)
	h := &hook{keys: map[string]int{}, evs: map[string]int{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	t.Setenv("TEST_CORRELATOR_HOOK", "hook-secret")
	notifier := func(st *store.Store, reg *prometheus.Registry) *notify.Notifier {
		n, err := notify.NewNotifier(notify.Config{Poll: 20 * time.Millisecond, Webhooks: []notify.WebhookConfig{{
			URL: srv.URL, Secret: notify.Secret{Env: "TEST_CORRELATOR_HOOK"}}}}, st, nil, reg)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	rows := scenario()
	half := len(rows) * 3 / 4 // past the first fault, before the second
	a := startReplica(t, dsn, notifier)
	b := startReplica(t, dsn, notifier)
	// Rows present before the first active spell finished its start-up are
	// rebuilt, and a rebuild pages no incident that is already closed (by
	// design: history is not news). This test is about live correlation and
	// takeover, so the rows arrive once a replica is active and has saved
	// its starting position.
	waitStarted(t, st, a, b)
	insert(t, st, rows[:half])
	waitCaughtUp(t, st)
	if got := a.active(t) + b.active(t); got != 1 {
		t.Fatalf("active gauges sum to %v, want exactly one active replica", got)
	}
	first, second := a, b
	if b.active(t) == 1 {
		first, second = b, a
	}
	// The active replica goes away; the standby takes over from the saved
	// position and state.
	first.stop()
	insert(t, st, rows[half:])
	waitCaughtUp(t, st)
	if second.active(t) != 1 {
		t.Fatal("the standby did not become active")
	}
	got, want := stored(t, st), reference(t, st)
	if len(want) < 2 {
		t.Fatalf("the scenario yields %d incidents; the test needs the two faults", len(want))
	}
	assertSame(t, got, want)
	// Every notification went out exactly once, across both replicas.
	deadline := time.Now().Add(10 * time.Second)
	for {
		pending, _, _ := st.OutboxCounts(context.Background())
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			rows, _ := storetest.Pool(st).Query(context.Background(), "SELECT id, coalesce(incident_id, 0), event, attempts, coalesce(lease_until::text, '-'), last_error FROM notification_outbox WHERE delivered_at IS NULL ORDER BY id")
			var desc []string
			for rows.Next() {
				var id, inc int64
				var ev, lease, lastErr string
				var attempts int
				_ = rows.Scan(&id, &inc, &ev, &attempts, &lease, &lastErr)
				desc = append(desc, fmt.Sprintf("id=%d incident=%d %s attempts=%d lease=%s err=%q", id, inc, ev, attempts, lease, lastErr))
			}
			rows.Close()
			t.Fatalf("%d notifications still pending (now %s):\n%s", pending, time.Now().UTC().Format(time.RFC3339Nano), strings.Join(desc, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, n := range h.keys {
		if n != 1 {
			t.Errorf("notification %s delivered %d times", k, n)
		}
	}
	if h.evs["opened"] != len(want) {
		t.Errorf("%d opened notifications for %d incidents (events %v; incidents %+v)", h.evs["opened"], len(want), h.evs, want)
		rows, _ := storetest.Pool(st).Query(context.Background(), "SELECT id, coalesce(incident_id, 0), event, attempts, delivered_at IS NOT NULL, abandoned_at IS NOT NULL, last_error FROM notification_outbox ORDER BY id")
		for rows.Next() {
			var id, inc int64
			var ev, lastErr string
			var attempts int
			var del, ab bool
			_ = rows.Scan(&id, &inc, &ev, &attempts, &del, &ab, &lastErr)
			t.Logf("outbox id=%d incident=%d %s attempts=%d delivered=%v abandoned=%v err=%q", id, inc, ev, attempts, del, ab, lastErr)
		}
		rows.Close()
	}
	if v := metricSum(t, second.reg, "driftlock_incidents_opened_total"); v < 1 {
		t.Errorf("opened counter of the taking-over replica: %v", v)
	}
}

func TestRestartResumesFromSavedState(t *testing.T) {
	st, dsn := storetest.Open(t)
	rows := scenario()
	cut := []int{len(rows) / 3, 2 * len(rows) / 3, len(rows)}
	prev := 0
	for _, c := range cut {
		r := startReplica(t, dsn, nil)
		insert(t, st, rows[prev:c])
		waitCaughtUp(t, st)
		r.stop() // a restart between every third of the day
		prev = c
	}
	assertSame(t, stored(t, st), reference(t, st))
}

func TestBacklogAfterOutageIsWeighedInObservedTime(t *testing.T) {
	st, dsn := storetest.Open(t)
	rows := scenario()
	// Live until 40 minutes before the second fault's end, then an outage:
	// two collectors drain their queues one after the other, so the
	// backlog reaches the store in an order 40 minutes out of observed order.
	split := sort.Search(len(rows), func(i int) bool { return !rows[i].ObservedAt.Before(base.Add(2*time.Hour + 10*time.Minute)) })
	r := startReplica(t, dsn, nil)
	insert(t, st, rows[:split])
	waitCaughtUp(t, st)
	r.stop()
	var collectorA, collectorB []store.Anomaly
	for _, a := range rows[split:] {
		if a.Service == "other" {
			collectorB = append(collectorB, a)
		} else {
			collectorA = append(collectorA, a)
		}
	}
	insert(t, st, collectorA)
	insert(t, st, collectorB)
	rep := startReplica(t, dsn, nil)
	waitCaughtUp(t, st)
	got, want := stored(t, st), reference(t, st)
	assertSame(t, got, want)
	if late := metricSum(t, rep.reg, "driftlock_correlator_late_anomalies_total"); late != 0 {
		t.Errorf("%v anomalies of the backlog counted late", late)
	}
	// A straggler an hour older than everything read is counted late.
	insert(t, st, []store.Anomaly{{Fingerprint: "straggler", Signal: store.SignalLogs, Stream: "quiet/logs",
		Service: "quiet", ObservedAt: base.Add(time.Hour), Score: 1, PValue: 0.001}})
	waitCaughtUp(t, st)
	if late := metricSum(t, rep.reg, "driftlock_correlator_late_anomalies_total"); late != 1 {
		t.Errorf("late anomalies %v, want the straggler", late)
	}
	found := false
	for k := range want {
		if k >= "20250601T1040" && k < "20250601T1050" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the second fault (in the backlog) opened no incident: %v", want)
	}
}

func TestRebuildRecomputesAndKeepsTriage(t *testing.T) {
	st, dsn := storetest.Open(t)
	rows := scenario()
	insert(t, st, rows)
	r := startReplica(t, dsn, nil)
	waitCaughtUp(t, st)
	r.stop()
	want := reference(t, st)
	assertSame(t, stored(t, st), want)
	ctx := context.Background()
	pool := storetest.Pool(st)
	// People triaged one incident; someone broke the membership of another.
	if _, err := pool.Exec(ctx, "UPDATE incidents SET triage = 'acknowledged' WHERE id = (SELECT min(id) FROM incidents)"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "UPDATE anomalies SET incident_id = NULL"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO incidents (key, opened_at, last_evidence_at) VALUES ('bogus', $1, $1)", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := st.RequestRebuild(ctx, "default", time.Time{}); err != nil {
		t.Fatal(err)
	}
	run, err := correlator.New(st, testConfig(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	assertSame(t, stored(t, st), want)
	var triaged int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM incidents WHERE triage = 'acknowledged'").Scan(&triaged); err != nil || triaged != 1 {
		t.Fatalf("triage kept on %d incidents (%v), want 1", triaged, err)
	}
	if p, _ := st.CorrelatorPosition(ctx, "default"); !p.RebuildFrom.IsZero() {
		t.Fatal("rebuild request not cleared")
	}
}

func assertSame(t *testing.T, got, want outcome) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("incident %s:\n got  %s\n want %s", k, got[k], w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected incident %s: %s", k, g)
		}
	}
}

func metricSum(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}
