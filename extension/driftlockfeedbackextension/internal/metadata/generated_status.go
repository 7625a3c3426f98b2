// Code written by hand in mdatagen's shape (mdatagen is not served by the
// module proxy). Keep in sync with metadata.yaml.

// Package metadata contains the build information for the
// extension/driftlock_feedback component.
package metadata

import (
	"go.opentelemetry.io/collector/component"
)

var (
	Type      = component.MustNewType("driftlock_feedback")
	ScopeName = "github.com/driftlock/driftlock/extension/driftlockfeedbackextension"
)

const (
	ExtensionStability = component.StabilityLevelAlpha
)
