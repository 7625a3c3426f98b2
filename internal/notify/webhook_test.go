package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftlock/driftlock/internal/notify"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// counter sums a metric family's values.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
			if g := m.GetGauge(); g != nil {
				sum += g.GetValue()
			}
		}
	}
	return sum
}

// hookServer is a webhook receiver that fails the first failFirst attempts
// of each idempotency key with status, then accepts.
type hookServer struct {
	secret    []byte
	failFirst int
	status    int
	mu        sync.Mutex
	attempts  map[string]int
	accepted  map[string]int
	bodies    map[string][]byte
	badSig    int
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Header.Get(notify.IdempotencyHeader)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := notify.VerifySignature(h.secret, r.Header.Get(notify.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		h.badSig++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	h.attempts[key]++
	if h.attempts[key] <= h.failFirst {
		w.Header().Set("Retry-After", "0")
		http.Error(w, "try later", h.status)
		return
	}
	h.accepted[key]++
	h.bodies[key] = body
}

func newHookServer(secret string, failFirst, status int) *hookServer {
	return &hookServer{secret: []byte(secret), failFirst: failFirst, status: status,
		attempts: map[string]int{}, accepted: map[string]int{}, bodies: map[string][]byte{}}
}

func TestWebhookSignedRetriedAndDeliveredOnce(t *testing.T) {
	const secret = "s3cret-webhook-key"
	t.Setenv("TEST_HOOK_SECRET", secret)
	hook := newHookServer(secret, 2, http.StatusServiceUnavailable)
	srv := httptest.NewServer(hook)
	defer srv.Close()
	st, _ := storetest.Open(t)
	ctx := context.Background()
	cfg := notify.Config{RetryInitial: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond,
		Webhooks: []notify.WebhookConfig{{Name: "ops", URL: srv.URL, Secret: notify.Secret{Env: "TEST_HOOK_SECRET"}}}}
	var logs bytes.Buffer
	// One handler for both senders: it serializes their writes to logs.
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	reg := newRegistry()
	// Two senders on one outbox: two serve replicas during a failover.
	a, err := notify.NewNotifier(cfg, st, logger, reg)
	if err != nil {
		t.Fatal(err)
	}
	reg2 := newRegistry()
	b, err := notify.NewNotifier(cfg, st, logger, reg2)
	if err != nil {
		t.Fatal(err)
	}
	var sent []notify.Notification
	for i := range 10 {
		in := sampleIncident("k"+itoa(int64(i)), time.Now().UTC().Add(-time.Hour))
		sent = append(sent, saveIncident(t, st, in, store.EventOpened, "opened", nil, a.Receivers()))
		// Replaying the same change (a rebuild) queues nothing new.
		saveIncident(t, st, in, store.EventOpened, "opened", nil, a.Receivers())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var wg sync.WaitGroup
		for _, n := range []*notify.Notifier{a, b} {
			wg.Go(func() {
				if _, err := n.DeliverDue(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if pending, _, _ := st.OutboxCounts(ctx); pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("outbox not drained after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.badSig != 0 {
		t.Fatalf("%d requests had a bad signature", hook.badSig)
	}
	if len(hook.accepted) != 10 {
		t.Fatalf("receiver accepted %d distinct keys, want 10", len(hook.accepted))
	}
	for _, n := range sent {
		if got := hook.accepted[n.IdempotencyKey]; got != 1 {
			t.Errorf("key %s accepted %d times, want once", n.IdempotencyKey, got)
		}
		if got := hook.attempts[n.IdempotencyKey]; got != 3 {
			t.Errorf("key %s took %d attempts, want 3 (two 503s, then 200)", n.IdempotencyKey, got)
		}
		var body notify.Notification
		if err := json.Unmarshal(hook.bodies[n.IdempotencyKey], &body); err != nil {
			t.Fatalf("body: %v", err)
		}
		if body.Event != "opened" || body.Incident.Key != n.Incident.Key || body.Incident.Leader != "ts-basic-service" ||
			body.Incident.URL == "" || len(body.Incident.Services) == 0 {
			t.Errorf("body %+v", body)
		}
	}
	if f := counter(t, reg, "driftlock_notification_failures_total") + counter(t, reg2, "driftlock_notification_failures_total"); f != 20 {
		t.Errorf("failures metrics sum to %v, want 20 (two per notification)", f)
	}
	if s := counter(t, reg, "driftlock_notifications_sent_total") + counter(t, reg2, "driftlock_notifications_sent_total"); s != 10 {
		t.Errorf("sent metrics sum to %v, want 10", s)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatal("the webhook secret appears in the logs")
	}
}

func TestWebhookRefusalIsAbandonedWithoutSecrets(t *testing.T) {
	const secret = "another-secret-value"
	t.Setenv("TEST_HOOK_SECRET", secret)
	hook := newHookServer(secret, 1000, http.StatusBadRequest)
	srv := httptest.NewServer(hook)
	defer srv.Close()
	st, _ := storetest.Open(t)
	ctx := context.Background()
	// Credentials in the URL must not leak either.
	u := strings.Replace(srv.URL, "http://", "http://user:url-password@", 1)
	cfg := notify.Config{Webhooks: []notify.WebhookConfig{{URL: u, Secret: notify.Secret{Env: "TEST_HOOK_SECRET"}}}}
	var logs bytes.Buffer
	reg := newRegistry()
	n, err := notify.NewNotifier(cfg, st, slog.New(slog.NewJSONHandler(&logs, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	saveIncident(t, st, sampleIncident("k-refused", time.Now().UTC()), store.EventOpened, "opened", nil, n.Receivers())
	if got, err := n.DeliverDue(ctx); err != nil || got != 0 {
		t.Fatalf("delivered %d, %v", got, err)
	}
	pending, abandoned, err := st.OutboxCounts(ctx)
	if err != nil || pending != 0 || abandoned != 1 {
		t.Fatalf("a 400 must abandon at once: pending %d abandoned %d (%v)", pending, abandoned, err)
	}
	if counter(t, reg, "driftlock_notifications_abandoned_total") != 1 {
		t.Fatal("abandoned metric not counted")
	}
	if !strings.Contains(logs.String(), "HTTP 400") {
		t.Fatalf("log does not say why: %s", logs.String())
	}
	for _, s := range []string{secret, "url-password"} {
		if strings.Contains(logs.String(), s) {
			t.Fatalf("%q appears in the logs: %s", s, logs.String())
		}
	}
}

func TestSignatureScheme(t *testing.T) {
	secret := []byte("k")
	body := []byte(`{"event":"opened"}`)
	now := time.Unix(1_800_000_000, 0)
	h := notify.Sign(secret, now, body)
	if !strings.HasPrefix(h, "t=1800000000,v1=") || len(h) != len("t=1800000000,v1=")+64 {
		t.Fatalf("header %q", h)
	}
	if err := notify.VerifySignature(secret, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret, body []byte
		header       string
		at           time.Time
		want         error
	}{
		"other secret":  {[]byte("x"), body, h, now, notify.ErrBadSignature},
		"changed body":  {secret, []byte(`{"event":"closed"}`), h, now, notify.ErrBadSignature},
		"replayed late": {secret, body, h, now.Add(time.Hour), notify.ErrStaleSignature},
		"no header":     {secret, body, "", now, notify.ErrNoSignature},
		"garbage":       {secret, body, "t=abc,v1=zz", now, notify.ErrNoSignature},
	} {
		if err := notify.VerifySignature(c.secret, c.header, c.body, c.at, 5*time.Minute); err != c.want {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Setenv("SET_SECRET", "value-never-printed")
	good := notify.Config{Alertmanagers: []notify.AlertmanagerConfig{{URL: "http://127.0.0.1:9093"}},
		Webhooks: []notify.WebhookConfig{{URL: "https://hooks.example/x", Secret: notify.Secret{Env: "SET_SECRET"}}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		cfg  notify.Config
		want string
	}{
		"no url":       {notify.Config{Alertmanagers: []notify.AlertmanagerConfig{{}}}, "alertmanagers[0].url: missing"},
		"bad scheme":   {notify.Config{Alertmanagers: []notify.AlertmanagerConfig{{URL: "ftp://x"}}}, "scheme must be http or https"},
		"no secret":    {notify.Config{Webhooks: []notify.WebhookConfig{{URL: "http://x"}}}, "webhooks[0].secret: no secret source"},
		"unset env":    {notify.Config{Webhooks: []notify.WebhookConfig{{URL: "http://x", Secret: notify.Secret{Env: "NOPE_UNSET"}}}}, "NOPE_UNSET is not set"},
		"missing file": {notify.Config{Webhooks: []notify.WebhookConfig{{URL: "http://x", Secret: notify.Secret{File: "/nonexistent/s"}}}}, "/nonexistent/s"},
		"reserved":     {notify.Config{Alertmanagers: []notify.AlertmanagerConfig{{URL: "http://x", Labels: map[string]string{"service": "x"}}}}, `"service" is set by Driftlock`},
		"dup names": {notify.Config{Alertmanagers: []notify.AlertmanagerConfig{{Name: "a", URL: "http://x"}},
			Webhooks: []notify.WebhookConfig{{Name: "a", URL: "http://x", Secret: notify.Secret{Env: "SET_SECRET"}}}}, `"a" is used twice`},
		"credentials in url": {notify.Config{Alertmanagers: []notify.AlertmanagerConfig{{URL: "gopher://u:pw-in-url@x"}}}, "scheme"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "value-never-printed") || strings.Contains(err.Error(), "pw-in-url") {
			t.Errorf("%s: error shows a secret: %v", name, err)
		}
	}
}
