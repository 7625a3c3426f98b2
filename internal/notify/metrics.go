package notify

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the notification series of `driftlock serve`.
type Metrics struct {
	sent      *prometheus.CounterVec
	failures  *prometheus.CounterVec
	abandoned *prometheus.CounterVec
	pending   prometheus.Gauge
}

// MetricNames lists the series (the docs and dashboards use these names).
var MetricNames = []string{
	"driftlock_notifications_sent_total",
	"driftlock_notification_failures_total",
	"driftlock_notifications_abandoned_total",
	"driftlock_notifications_pending",
}

// NewMetrics creates the series and registers them on reg (nil: nowhere).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftlock_notifications_sent_total",
			Help: "Incident notifications delivered, by receiver and event (opened, changed, closed)."}, []string{"receiver", "event"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftlock_notification_failures_total",
			Help: "Failed delivery attempts (including Alertmanager re-sends), by receiver."}, []string{"receiver"}),
		abandoned: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftlock_notifications_abandoned_total",
			Help: "Notifications given up (refused by the receiver, or out of attempts or age), by receiver."}, []string{"receiver"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "driftlock_notifications_pending",
			Help: "Notifications in the outbox not delivered yet."}),
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.failures, m.abandoned, m.pending)
	}
	return m
}

// init makes a receiver's series exist at zero before its first event.
func (m *Metrics) init(receiver string) {
	m.failures.WithLabelValues(receiver)
	m.abandoned.WithLabelValues(receiver)
}
