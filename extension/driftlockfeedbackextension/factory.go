// Package driftlockfeedbackextension offers the driftlock processor the
// records people marked false_positive in Driftlock's PostgreSQL anomaly
// store (triage.Source), so that the processor itself links no database
// driver. Collectors that hold an API key instead of database credentials
// need no extension: the processor's feedback.endpoint reads the API.
package driftlockfeedbackextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/driftlock/driftlock/extension/driftlockfeedbackextension/internal/metadata"
)

// NewFactory returns the factory of the driftlock_feedback extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config { return &Config{} }

func create(_ context.Context, _ extension.Settings, cfg component.Config) (extension.Extension, error) {
	return &feedbackExtension{cfg: cfg.(*Config)}, nil
}
