// Code written by hand in mdatagen's shape (mdatagen is not served here).

// Package metadata contains the telemetry and build information for the
// exporter/driftlock component.
package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	Type      = component.MustNewType("driftlock")
	ScopeName = "github.com/driftlock/driftlock/exporter/driftlockexporter"
)

const (
	LogsStability    = component.StabilityLevelAlpha
	TracesStability  = component.StabilityLevelAlpha
	MetricsStability = component.StabilityLevelAlpha
)
