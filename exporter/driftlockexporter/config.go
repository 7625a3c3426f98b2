package driftlockexporter

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/driftlock/driftlock/internal/store"
)

// EnvDSN is read when dsn is empty.
const EnvDSN = "DRIFTLOCK_DSN"

// maxBatchSize bounds batch_size: PostgreSQL accepts at most 1 GB per
// parameter, and 1 MiB bodies times 100,000 rows would exceed it.
const maxBatchSize = 100_000

// Config is the driftlock exporter's configuration.
type Config struct {
	exporterhelper.TimeoutConfig `mapstructure:",squash"`
	BackOffConfig                configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
	QueueSettings                configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// DSN is the PostgreSQL connection string (URL or key=value). Empty
	// means the DRIFTLOCK_DSN environment variable. Opaque: never logged.
	DSN configopaque.String `mapstructure:"dsn"`
	// OnlyAnomalies stores only records flagged driftlock.anomaly=true;
	// the others are counted and skipped.
	OnlyAnomalies bool `mapstructure:"only_anomalies"`
	// Retention deletes anomalies detected longer ago than this; 0 keeps
	// them forever.
	Retention time.Duration `mapstructure:"retention"`
	// RetentionInterval is how often retention runs (and once at start).
	RetentionInterval time.Duration `mapstructure:"retention_interval"`
	// BatchSize is the most rows written by one INSERT statement (and
	// deleted by one retention statement).
	BatchSize int `mapstructure:"batch_size"`
	// MigrateOnStart applies pending schema migrations (under an advisory
	// lock) before the first write.
	MigrateOnStart bool `mapstructure:"migrate_on_start"`
	// ServiceGraph learns the service call graph from every span the
	// traces exporter receives (flagged or not) and stores it for the
	// incident correlator. Ignored by the logs and metrics exporters.
	ServiceGraph ServiceGraphConfig `mapstructure:"service_graph"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// ServiceGraphConfig is the `service_graph` section.
type ServiceGraphConfig struct {
	// Enabled learns and stores the graph (traces pipelines only).
	Enabled bool `mapstructure:"enabled"`
	// FlushInterval is how often the edges learned since the last write
	// are upserted into service_edges (and once at shutdown).
	FlushInterval time.Duration `mapstructure:"flush_interval"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// Sentinel errors returned by Validate.
var (
	errNoDSN             = errors.New("dsn is empty and " + EnvDSN + " is not set")
	errInvalidDSN        = errors.New("dsn is not a valid PostgreSQL connection string")
	errNegativeRetention = errors.New("retention must be >= 0 (0 keeps anomalies forever)")
	errRetentionInterval = errors.New("retention_interval must be > 0 when retention is set")
	errBatchSize         = fmt.Errorf("batch_size must be between 1 and %d", maxBatchSize)
	errNegativeTimeout   = errors.New("timeout must be >= 0")
	errFlushInterval     = errors.New("service_graph.flush_interval must be > 0 when service_graph is enabled")
)

// Validate checks the configuration. The DSN is parsed but no connection
// is made; parse errors never contain the password.
func (cfg *Config) Validate() error {
	var errs error
	dsn := cfg.dsn()
	switch {
	case dsn == "":
		errs = errors.Join(errs, errNoDSN)
	default:
		if err := store.ParseDSN(dsn); err != nil {
			errs = errors.Join(errs, fmt.Errorf("%w: %v", errInvalidDSN, err))
		}
	}
	if cfg.Retention < 0 {
		errs = errors.Join(errs, errNegativeRetention)
	}
	if cfg.Retention > 0 && cfg.RetentionInterval <= 0 {
		errs = errors.Join(errs, errRetentionInterval)
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > maxBatchSize {
		errs = errors.Join(errs, fmt.Errorf("%w (got %d)", errBatchSize, cfg.BatchSize))
	}
	if cfg.Timeout < 0 {
		errs = errors.Join(errs, errNegativeTimeout)
	}
	if cfg.ServiceGraph.Enabled && cfg.ServiceGraph.FlushInterval <= 0 {
		errs = errors.Join(errs, fmt.Errorf("%w (got %v)", errFlushInterval, cfg.ServiceGraph.FlushInterval))
	}
	return errs
}

// dsn resolves the connection string: the config value, else the env.
func (cfg *Config) dsn() string {
	if cfg.DSN != "" {
		return string(cfg.DSN)
	}
	return os.Getenv(EnvDSN)
}
