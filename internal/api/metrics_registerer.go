package api

import "github.com/prometheus/client_golang/prometheus"

// MetricsRegisterer is the registry behind GET /metrics, for the series of
// components that run beside the API in `driftlock serve` (the incident
// correlator and its notifications).
func (s *Server) MetricsRegisterer() prometheus.Registerer { return s.metrics.reg }
