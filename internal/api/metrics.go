package api

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/driftlock/driftlock/internal/store"
)

// metrics are the server's Prometheus series, on a registry of its own so
// several servers (tests) can live in one process.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	sseClients  prometheus.Gauge
	sseEvents   prometheus.Counter
	sseRejected prometheus.Counter
	rateLimited prometheus.Counter
}

// MetricNames lists the API's own series (the Grafana dashboard test checks
// its queries against these).
var MetricNames = []string{
	"driftlock_api_requests_total",
	"driftlock_api_request_duration_seconds",
	"driftlock_api_sse_clients",
	"driftlock_api_sse_events_total",
	"driftlock_api_sse_rejected_total",
	"driftlock_api_rate_limited_total",
	"driftlock_api_db_pool_acquired_conns",
	"driftlock_api_db_pool_idle_conns",
	"driftlock_api_db_pool_total_conns",
	"driftlock_api_db_pool_max_conns",
	"driftlock_api_db_pool_acquires_total",
	"driftlock_api_db_pool_acquire_wait_seconds_total",
	"driftlock_api_db_pool_empty_acquires_total",
}

func newMetrics(st *store.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftlock_api_requests_total", Help: "HTTP requests by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "driftlock_api_request_duration_seconds", Help: "HTTP request latency by method and route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		sseClients:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "driftlock_api_sse_clients", Help: "Connected live-stream clients."}),
		sseEvents:   prometheus.NewCounter(prometheus.CounterOpts{Name: "driftlock_api_sse_events_total", Help: "Anomaly events written to live-stream clients."}),
		sseRejected: prometheus.NewCounter(prometheus.CounterOpts{Name: "driftlock_api_sse_rejected_total", Help: "Live-stream connections refused by the client cap."}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{Name: "driftlock_api_rate_limited_total", Help: "Requests answered 429."}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.sseClients, m.sseEvents, m.sseRejected, m.rateLimited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&poolCollector{st: st})
	return m
}

// poolCollector reads the store's connection-pool statistics at scrape time.
type poolCollector struct{ st *store.Store }

var (
	poolAcquired = prometheus.NewDesc("driftlock_api_db_pool_acquired_conns", "Connections in use.", nil, nil)
	poolIdle     = prometheus.NewDesc("driftlock_api_db_pool_idle_conns", "Idle connections.", nil, nil)
	poolTotal    = prometheus.NewDesc("driftlock_api_db_pool_total_conns", "Open connections.", nil, nil)
	poolMax      = prometheus.NewDesc("driftlock_api_db_pool_max_conns", "Pool size limit.", nil, nil)
	poolAcq      = prometheus.NewDesc("driftlock_api_db_pool_acquires_total", "Successful connection acquisitions.", nil, nil)
	poolWait     = prometheus.NewDesc("driftlock_api_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil)
	poolEmpty    = prometheus.NewDesc("driftlock_api_db_pool_empty_acquires_total", "Acquisitions that had to wait for a connection.", nil, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolTotal, poolMax, poolAcq, poolWait, poolEmpty} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.PoolStats()
	ch <- prometheus.MustNewConstMetric(poolAcquired, prometheus.GaugeValue, float64(s.AcquiredConns))
	ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.IdleConns))
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.TotalConns))
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns))
	ch <- prometheus.MustNewConstMetric(poolAcq, prometheus.CounterValue, float64(s.AcquireCount))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.AcquireWait.Seconds())
	ch <- prometheus.MustNewConstMetric(poolEmpty, prometheus.CounterValue, float64(s.EmptyAcquireCount))
}
