package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/driftlock/driftlock/internal/store"
)

// Notifier delivers the notification outbox to the configured receivers
// and keeps open incidents firing in Alertmanager. It runs in the active
// correlator's process; the outbox's claims (FOR UPDATE SKIP LOCKED and a
// lease) make a second sender, e.g. during a failover, harmless: each row
// is held by one sender at a time and marked delivered once.
type Notifier struct {
	cfg      Config
	st       *store.Store
	log      *slog.Logger
	metrics  *Metrics
	receiver map[string]receiver
	names    []string
	ams      []*Alertmanager
	limit    map[string]*rate.Limiter
	wake     chan struct{}
	now      func() time.Time
}

// receiver delivers one stored notification.
type receiver interface {
	deliver(ctx context.Context, it *store.OutboxItem, now time.Time) error
}

func (a *Alertmanager) deliver(ctx context.Context, it *store.OutboxItem, now time.Time) error {
	var n Notification
	if err := json.Unmarshal(it.Payload, &n); err != nil {
		return permanent(fmt.Errorf("stored notification %d does not decode: %v", it.ID, err))
	}
	return a.Send(ctx, &n, now)
}

func (w *Webhook) deliver(ctx context.Context, it *store.OutboxItem, now time.Time) error {
	return w.Deliver(ctx, it.IdempotencyKey, it.Event, it.Payload, now)
}

// claimBatch is how many notifications one claim leases.
const claimBatch = 16

// NewNotifier checks cfg, reads the secrets and builds the receivers. reg
// (may be nil) gets the notification metrics.
func NewNotifier(cfg Config, st *store.Store, log *slog.Logger, reg prometheus.Registerer) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := &http.Client{Timeout: cfg.Timeout}
	n := &Notifier{cfg: cfg, st: st, log: log, metrics: NewMetrics(reg), receiver: map[string]receiver{},
		limit: map[string]*rate.Limiter{}, wake: make(chan struct{}, 1), now: time.Now}
	for _, c := range cfg.Alertmanagers {
		am, err := newAlertmanager(c, client, cfg.RunbookURL)
		if err != nil {
			return nil, err
		}
		n.ams = append(n.ams, am)
		n.add(c.Name, am)
	}
	for _, c := range cfg.Webhooks {
		w, err := newWebhook(c, client)
		if err != nil {
			return nil, err
		}
		n.add(c.Name, w)
	}
	return n, nil
}

func (n *Notifier) add(name string, r receiver) {
	n.receiver[name] = r
	n.names = append(n.names, name)
	// A burst of incidents (a rebuild, a big outage) must not flood a
	// receiver: 10 posts a second, bursts of 20.
	n.limit[name] = rate.NewLimiter(10, 20)
	n.metrics.init(name)
}

// Receivers are the configured receiver names: one outbox row each per
// notification (OutboxItems).
func (n *Notifier) Receivers() []string { return n.names }

// PublicURL is the configured base URL of the web page.
func (n *Notifier) PublicURL() string { return n.cfg.PublicURL }

// Wake makes Run look at the outbox now (after new rows were committed).
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Run delivers due notifications (every Poll and on Wake) and re-sends the
// open incidents to the Alertmanagers every resend interval, until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	poll := time.NewTicker(n.cfg.Poll)
	defer poll.Stop()
	var refresh <-chan time.Time
	if every := n.resendInterval(); every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		refresh = t.C
	}
	for {
		if _, err := n.DeliverDue(ctx); err != nil && ctx.Err() == nil {
			n.log.Error("notifications: deliver", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-poll.C:
		case <-refresh:
			if err := n.RefreshOpen(ctx); err != nil && ctx.Err() == nil {
				n.log.Warn("notifications: re-send open incidents to Alertmanager", "err", err)
			}
		}
	}
}

func (n *Notifier) resendInterval() time.Duration {
	var every time.Duration
	for _, am := range n.ams {
		if every == 0 || am.ResendInterval() < every {
			every = am.ResendInterval()
		}
	}
	return every
}

// DeliverDue claims and sends due notifications until none is left; it
// returns how many were delivered. A failed attempt is scheduled again
// with exponential backoff, or abandoned when it cannot succeed or is too
// old; either way it is counted in the failure metrics and logged without
// secrets.
func (n *Notifier) DeliverDue(ctx context.Context) (int, error) {
	delivered := 0
	lease := time.Duration(claimBatch+1) * n.cfg.Timeout
	for ctx.Err() == nil {
		// The claim runs to completion even when ctx ends meanwhile: a
		// claim cut off client-side may still commit, leaving rows leased
		// by nobody until the lease runs out. What was claimed is handed
		// back below if ctx has ended.
		claimCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.Timeout)
		items, err := n.st.ClaimNotifications(claimCtx, claimBatch, lease)
		cancel()
		if err != nil {
			return delivered, err
		}
		for i := range items {
			if ctx.Err() != nil {
				n.release(items[i:])
				break
			}
			ok, err := n.deliverOne(ctx, &items[i])
			if err != nil {
				n.release(items[i+1:])
				return delivered, err
			}
			if ok {
				delivered++
			} else if ctx.Err() != nil {
				n.release(items[i:])
				break
			}
		}
		if err := n.updatePending(ctx); err != nil {
			return delivered, err
		}
		if len(items) < claimBatch {
			break
		}
	}
	return delivered, ctx.Err()
}

// release hands claimed, unsent notifications back when the sender stops,
// so that another sender need not wait for their leases to run out.
func (n *Notifier) release(items []store.OutboxItem) {
	if len(items) == 0 {
		return
	}
	ids := make([]int64, len(items))
	for i := range items {
		ids[i] = items[i].ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.st.ReleaseNotifications(ctx, ids); err != nil {
		n.log.Warn("notifications: release unsent claims (they go out after their lease)", "err", err)
	}
}

func (n *Notifier) deliverOne(ctx context.Context, it *store.OutboxItem) (bool, error) {
	r, ok := n.receiver[it.Receiver]
	if !ok {
		// A receiver removed from the configuration: its rows wait (a
		// restart with it configured again delivers them) but are not
		// retried in a tight loop.
		return false, n.st.NotificationFailed(ctx, it.ID, "receiver "+it.Receiver+" is not configured", n.now().Add(n.cfg.RetryMax), false)
	}
	if err := n.limit[it.Receiver].Wait(ctx); err != nil {
		return false, nil // ctx ended: the lease runs out and the row is due again
	}
	// A send that started finishes and is recorded even when the sender is
	// stopping (within Timeout): cutting it off could deliver it without
	// recording it, and the next sender would deliver it again.
	detached := context.WithoutCancel(ctx)
	sendCtx, cancel := context.WithTimeout(detached, n.cfg.Timeout)
	defer cancel()
	err := r.deliver(sendCtx, it, n.now())
	if err == nil {
		n.metrics.sent.WithLabelValues(it.Receiver, it.Event).Inc()
		return true, n.st.NotificationDelivered(sendCtx, it.ID)
	}
	n.metrics.failures.WithLabelValues(it.Receiver).Inc()
	abandon := IsPermanent(err) || it.Attempts >= n.cfg.MaxAttempts || n.now().Sub(it.CreatedAt) > n.cfg.MaxAge
	next := n.now().Add(n.backoff(it.Attempts, retryAfter(err)))
	if abandon {
		n.metrics.abandoned.WithLabelValues(it.Receiver).Inc()
		n.log.Error("notification abandoned", "receiver", it.Receiver, "event", it.Event, "incident_id", it.IncidentID,
			"idempotency_key", it.IdempotencyKey, "attempts", it.Attempts, "err", err)
	} else {
		n.log.Warn("notification failed; will retry", "receiver", it.Receiver, "event", it.Event, "incident_id", it.IncidentID,
			"attempts", it.Attempts, "retry_at", next.UTC().Format(time.RFC3339), "err", err)
	}
	return false, n.st.NotificationFailed(sendCtx, it.ID, err.Error(), next, abandon)
}

// backoff is the wait before attempt+1: RetryInitial doubled per attempt,
// capped at RetryMax, with "equal jitter" (half fixed, half random) so
// that senders do not retry in lockstep; at least the receiver's
// Retry-After.
func (n *Notifier) backoff(attempts int, hint time.Duration) time.Duration {
	d := n.cfg.RetryInitial
	for i := 1; i < attempts && d < n.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, n.cfg.RetryMax)
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	return max(d, hint)
}

func (n *Notifier) updatePending(ctx context.Context) error {
	pending, _, err := n.st.OutboxCounts(ctx)
	if err != nil {
		return err
	}
	n.metrics.pending.Set(float64(pending))
	return nil
}

// RefreshOpen re-sends every open incident to every Alertmanager.
func (n *Notifier) RefreshOpen(ctx context.Context) error {
	if len(n.ams) == 0 {
		return nil
	}
	open, err := n.st.OpenIncidents(ctx)
	if err != nil {
		return err
	}
	incidents := make([]Incident, 0, len(open))
	for i := range open {
		incidents = append(incidents, New(&open[i], "", "", nil, n.cfg.PublicURL).Incident)
	}
	var errs []error
	for _, am := range n.ams {
		sendCtx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
		err := am.Refresh(sendCtx, incidents, n.now())
		cancel()
		if err != nil {
			n.metrics.failures.WithLabelValues(am.Name()).Inc()
			errs = append(errs, fmt.Errorf("%s: %w", am.Name(), err))
		}
	}
	return errors.Join(errs...)
}
