package correlator

import "github.com/prometheus/client_golang/prometheus"

// metrics are the correlator's series in `driftlock serve`.
type metrics struct {
	active  prometheus.Gauge
	open    *prometheus.GaugeVec
	opened  prometheus.Counter
	closed  prometheus.Counter
	lag     prometheus.Gauge
	skipped prometheus.Counter
	late    prometheus.Counter
}

// MetricNames lists the correlator's series.
var MetricNames = []string{
	"driftlock_correlator_active",
	"driftlock_incidents_open",
	"driftlock_incidents_opened_total",
	"driftlock_incidents_closed_total",
	"driftlock_correlator_lag_seconds",
	"driftlock_correlator_skipped_anomalies_total",
	"driftlock_correlator_late_anomalies_total",
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "driftlock_correlator_active",
			Help: "1 on the replica whose correlator is active, 0 on standbys."}),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "driftlock_incidents_open",
			Help: "Open incidents by leading (most probable root-cause) service; set by the active correlator."}, []string{"service"}),
		opened: prometheus.NewCounter(prometheus.CounterOpts{Name: "driftlock_incidents_opened_total",
			Help: "Incidents opened by this replica's correlator."}),
		closed: prometheus.NewCounter(prometheus.CounterOpts{Name: "driftlock_incidents_closed_total",
			Help: "Incidents closed by this replica's correlator."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "driftlock_correlator_lag_seconds",
			Help: "Age (since it was stored) of the newest anomaly the correlator read while it was still behind; 0 when caught up."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "driftlock_correlator_skipped_anomalies_total",
			Help: "Stored anomalies the correlator refused (no service, unknown signal, no time); they stay in the store."}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Name: "driftlock_correlator_late_anomalies_total",
			Help: "Anomalies read after their time bucket was weighed (later than lateness and idle_advance allow); they join an open incident of their service or count as routine."}),
	}
	if reg != nil {
		reg.MustRegister(m.active, m.open, m.opened, m.closed, m.lag, m.skipped, m.late)
	}
	return m
}
