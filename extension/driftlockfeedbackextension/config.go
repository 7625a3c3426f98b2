package driftlockfeedbackextension

import (
	"errors"
	"fmt"
	"os"

	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/driftlock/driftlock/internal/store"
)

// EnvDSN is read when dsn is empty (the driftlock exporter reads the same).
const EnvDSN = "DRIFTLOCK_DSN"

// Config is the driftlock_feedback extension's configuration.
type Config struct {
	// DSN is the anomaly store's PostgreSQL connection string (URL or
	// key=value). Empty means the DRIFTLOCK_DSN environment variable.
	// Opaque: never logged; errors name the problem, never the string.
	DSN configopaque.String `mapstructure:"dsn"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Sentinel errors returned by Validate.
var (
	errNoDSN      = errors.New("dsn is empty and " + EnvDSN + " is not set")
	errInvalidDSN = errors.New("dsn is not a valid PostgreSQL connection string")
)

// Validate parses the DSN without connecting.
func (c *Config) Validate() error {
	dsn := c.dsn()
	if dsn == "" {
		return errNoDSN
	}
	if err := store.ParseDSN(dsn); err != nil {
		return fmt.Errorf("%w: %w", errInvalidDSN, err)
	}
	return nil
}

func (c *Config) dsn() string {
	if c.DSN != "" {
		return string(c.DSN)
	}
	return os.Getenv(EnvDSN)
}
