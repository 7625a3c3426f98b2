package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/driftlock/driftlock/internal/notify"
	"github.com/driftlock/driftlock/internal/notify/amtest"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// amWebhook records what Alertmanager itself sends on (its webhook
// receiver format): proof that the alert went through its pipeline.
type amWebhook struct {
	mu   sync.Mutex
	msgs []struct {
		Status string `json:"status"`
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
}

func (w *amWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var m struct {
		Status string `json:"status"`
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	b, _ := io.ReadAll(r.Body)
	if json.Unmarshal(b, &m) == nil {
		w.mu.Lock()
		w.msgs = append(w.msgs, m)
		w.mu.Unlock()
	}
}

// saw reports whether Alertmanager sent an alert with the given status and
// service label.
func (w *amWebhook) saw(status, service string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		for _, a := range m.Alerts {
			if a.Status == status && a.Labels["service"] == service {
				return true
			}
		}
	}
	return false
}

func getAlerts(t *testing.T, base string) models.GettableAlerts {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out models.GettableAlerts
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode GET /api/v2/alerts: %v", err)
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRealAlertmanagerAlertArrivesUpdatesAndResolves(t *testing.T) {
	hook := &amWebhook{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	am := amtest.Start(t, srv.URL)
	st, _ := storetest.Open(t)
	ctx := context.Background()

	cfg := notify.Config{PublicURL: "http://driftlock.test",
		Alertmanagers: []notify.AlertmanagerConfig{{URL: am, ResendInterval: 2 * time.Second, Labels: map[string]string{"team": "sre"}}}}
	n, err := notify.NewNotifier(cfg, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Now().UTC().Add(-3 * time.Minute).Truncate(time.Second)
	in := sampleIncident("20261129T220000Z-ts-basic-service", opened)

	// Opened: the alert arrives with Alertmanager's conventions.
	saveIncident(t, st, in, store.EventOpened, "opened", nil, n.Receivers())
	if got, err := n.DeliverDue(ctx); err != nil || got != 1 {
		t.Fatalf("deliver opened: %d, %v", got, err)
	}
	alerts := getAlerts(t, am)
	if len(alerts) != 1 {
		t.Fatalf("Alertmanager holds %d alerts, want 1: %+v", len(alerts), alerts)
	}
	a := alerts[0]
	wantLabels := map[string]string{"alertname": notify.AlertName, "incident": in.Key, "service": "ts-basic-service", "severity": "warning", "team": "sre"}
	for k, v := range wantLabels {
		if a.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, a.Labels[k], v, a.Labels)
		}
	}
	if a.Annotations["summary"] != in.Title || a.Annotations["runbook_url"] == "" || a.Annotations["description"] == "" {
		t.Errorf("annotations %v", a.Annotations)
	}
	if string(a.GeneratorURL) != "http://driftlock.test/#/incidents/"+itoa(in.ID) {
		t.Errorf("generatorURL %q", a.GeneratorURL)
	}
	if *a.Status.State != "active" || !time.Time(*a.StartsAt).Equal(opened) {
		t.Errorf("state %s startsAt %v, want active since %v", *a.Status.State, time.Time(*a.StartsAt), opened)
	}
	firstEnd := time.Time(*a.EndsAt)
	if d := time.Until(firstEnd); d < 5*time.Second || d > 9*time.Second {
		t.Errorf("endsAt in %v, want about 4 x the 2s resend interval", d)
	}
	waitFor(t, "Alertmanager to route the firing alert", func() bool { return hook.saw("firing", "ts-basic-service") })

	// Re-sent before endsAt while open: the refresh pushes endsAt on.
	time.Sleep(1100 * time.Millisecond)
	if err := n.RefreshOpen(ctx); err != nil {
		t.Fatal(err)
	}
	alerts = getAlerts(t, am)
	if len(alerts) != 1 || !time.Time(*alerts[0].EndsAt).After(firstEnd) {
		t.Fatalf("after refresh: %d alerts, endsAt %v (was %v)", len(alerts), alerts[0].EndsAt, firstEnd)
	}

	// Updated: a new leading service and a higher severity replace the
	// alert (the old label set is resolved).
	prev := &notify.Identity{Leader: in.Leader, Severity: in.Severity}
	in.Leader, in.Severity, in.Revision = "ts-price-service", "critical", 2
	in.Services = json.RawMessage(`[{"service":"ts-price-service","why":["callee of 2 troubled services"]},{"service":"ts-basic-service"}]`)
	saveIncident(t, st, in, store.EventChanged, "new leader ts-price-service (was ts-basic-service)", prev, n.Receivers())
	if got, err := n.DeliverDue(ctx); err != nil || got != 1 {
		t.Fatalf("deliver changed: %d, %v", got, err)
	}
	alerts = getAlerts(t, am)
	if len(alerts) != 1 || alerts[0].Labels["service"] != "ts-price-service" || alerts[0].Labels["severity"] != "critical" {
		t.Fatalf("after the change: %+v", alerts)
	}
	waitFor(t, "the old label set to resolve", func() bool { return hook.saw("resolved", "ts-basic-service") })
	waitFor(t, "the new label set to fire", func() bool { return hook.saw("firing", "ts-price-service") })

	// Closed: the alert resolves.
	closed := time.Now().UTC()
	in.State, in.ClosedAt, in.Revision = store.IncidentClosed, &closed, 3
	saveIncident(t, st, in, store.EventClosed, "closed after 5m0s without evidence", nil, n.Receivers())
	if got, err := n.DeliverDue(ctx); err != nil || got != 1 {
		t.Fatalf("deliver closed: %d, %v", got, err)
	}
	if alerts = getAlerts(t, am); len(alerts) != 0 {
		t.Fatalf("after close Alertmanager still lists %d active alerts: %+v", len(alerts), alerts)
	}
	waitFor(t, "Alertmanager to send the resolution", func() bool { return hook.saw("resolved", "ts-price-service") })
	// A closed incident is not re-sent.
	if err := n.RefreshOpen(ctx); err != nil {
		t.Fatal(err)
	}
	if alerts = getAlerts(t, am); len(alerts) != 0 {
		t.Fatalf("refresh re-fired a closed incident: %+v", alerts)
	}
}

func TestAlertmanagerDownIsRetriedThenDelivered(t *testing.T) {
	hook := &amWebhook{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	st, _ := storetest.Open(t)
	ctx := context.Background()
	port := amtest.FreePort(t) // nothing listens there yet
	cfg := notify.Config{RetryInitial: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond,
		Alertmanagers: []notify.AlertmanagerConfig{{URL: "http://127.0.0.1:" + itoa(int64(port))}}}
	reg := newRegistry()
	n, err := notify.NewNotifier(cfg, st, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	saveIncident(t, st, sampleIncident("k-down", time.Now().UTC().Add(-time.Minute)), store.EventOpened, "opened", nil, n.Receivers())
	if got, _ := n.DeliverDue(ctx); got != 0 {
		t.Fatalf("delivered %d to a closed port", got)
	}
	if f := counter(t, reg, "driftlock_notification_failures_total"); f != 1 {
		t.Fatalf("failures metric %v, want 1", f)
	}
	// Alertmanager comes up on a port of its own; point a notifier there
	// (same receiver name) and the queued row goes out on its retry.
	am := amtest.Start(t, srv.URL)
	cfg.Alertmanagers[0].URL = am
	n2, err := notify.NewNotifier(cfg, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	if got, err := n2.DeliverDue(ctx); err != nil || got != 1 {
		t.Fatalf("retry: delivered %d, %v", got, err)
	}
	if alerts := getAlerts(t, am); len(alerts) != 1 {
		t.Fatalf("alerts after retry: %d", len(alerts))
	}
}
