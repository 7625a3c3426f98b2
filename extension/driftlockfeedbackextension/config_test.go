package driftlockfeedbackextension

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/driftlock/driftlock/extension/driftlockfeedbackextension/internal/metadata"
)

func load(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg, confmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	cfg, err := load(t, "")
	require.NoError(t, err)
	assert.Equal(t, "postgres://driftlock:secret@db.internal:5432/driftlock?sslmode=verify-full", string(cfg.DSN))

	// No dsn: DRIFTLOCK_DSN, as the exporter reads it.
	t.Setenv(EnvDSN, "")
	_, err = load(t, "env")
	require.ErrorIs(t, err, errNoDSN)
	t.Setenv(EnvDSN, "postgres://driftlock@127.0.0.1:5432/driftlock")
	_, err = load(t, "env")
	require.NoError(t, err)
}

// TestBadDSNNamesTheProblemNotThePassword: a DSN that does not parse is
// reported by what is wrong with it, never echoed (pgconn would echo this
// one, spaces around '=', with its password).
func TestBadDSNNamesTheProblemNotThePassword(t *testing.T) {
	_, err := load(t, "bad_port")
	require.ErrorIs(t, err, errInvalidDSN)
	assert.Contains(t, err.Error(), "invalid port")
	assert.NotContains(t, err.Error(), "s3cret")
}
