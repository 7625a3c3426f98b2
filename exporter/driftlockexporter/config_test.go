package driftlockexporter

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/driftlock/driftlock/exporter/driftlockexporter/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	id := component.NewIDWithName(metadata.Type, name)
	if name == "" {
		id = component.NewID(metadata.Type)
	}
	sub, err := cm.Sub(id.String())
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatalf("unmarshal %s: %v", id, err)
	}
	return cfg
}

func TestConfigStruct(t *testing.T) {
	if err := componenttest.CheckConfigStruct(NewFactory().CreateDefaultConfig()); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	if !cfg.OnlyAnomalies || !cfg.MigrateOnStart || cfg.Retention != 720*time.Hour ||
		cfg.BatchSize != 1000 || cfg.RetentionInterval != time.Hour || !cfg.QueueSettings.HasValue() ||
		!cfg.BackOffConfig.Enabled || cfg.Timeout != 5*time.Second ||
		!cfg.ServiceGraph.Enabled || cfg.ServiceGraph.FlushInterval != 10*time.Second {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestLoadConfig(t *testing.T) {
	t.Setenv(EnvDSN, "")
	def := loadConfig(t, "")
	if string(def.DSN) != "postgres://driftlock:secret@db.example:5432/driftlock?sslmode=disable" || !def.OnlyAnomalies {
		t.Fatalf("default variant: %+v", def)
	}
	if err := confmap.Validate(def); err != nil {
		t.Fatalf("default variant invalid: %v", err)
	}

	full := loadConfig(t, "full")
	if full.OnlyAnomalies || full.MigrateOnStart || full.Retention != 168*time.Hour ||
		full.RetentionInterval != 15*time.Minute || full.BatchSize != 500 || full.Timeout != 10*time.Second ||
		full.BackOffConfig.MaxElapsedTime != 10*time.Minute || full.BackOffConfig.InitialInterval != time.Second ||
		!full.ServiceGraph.Enabled || full.ServiceGraph.FlushInterval != 30*time.Second {
		t.Fatalf("full variant: %+v", full)
	}
	q := full.QueueSettings.Get()
	if q == nil || q.NumConsumers != 4 || q.QueueSize != 5000 || q.StorageID == nil ||
		q.StorageID.String() != "file_storage/driftlock" {
		t.Fatalf("full variant queue: %+v", q)
	}
	if err := confmap.Validate(full); err != nil {
		t.Fatalf("full variant invalid: %v", err)
	}

	noQueue := loadConfig(t, "no_queue")
	if noQueue.QueueSettings.HasValue() || noQueue.Retention != 0 || noQueue.ServiceGraph.Enabled {
		t.Fatalf("no_queue variant: queue %v retention %v service graph %v", noQueue.QueueSettings.HasValue(), noQueue.Retention, noQueue.ServiceGraph.Enabled)
	}
	if err := confmap.Validate(noQueue); err != nil {
		t.Fatalf("no_queue variant invalid: %v", err)
	}
}

func TestConfigValidateErrors(t *testing.T) {
	t.Setenv(EnvDSN, "")
	for name, want := range map[string]error{
		"bad_batch":         errBatchSize,
		"bad_retention":     errNegativeRetention,
		"bad_dsn":           errInvalidDSN,
		"no_dsn":            errNoDSN,
		"bad_service_graph": errFlushInterval,
	} {
		t.Run(name, func(t *testing.T) {
			err := confmap.Validate(loadConfig(t, name))
			if !errors.Is(err, want) {
				t.Fatalf("got %v, want %v", err, want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestConfigDSNFromEnv(t *testing.T) {
	cfg := loadConfig(t, "no_dsn")
	t.Setenv(EnvDSN, "postgres://env@127.0.0.1:5432/x")
	if err := confmap.Validate(cfg); err != nil {
		t.Fatalf("DSN from %s not used: %v", EnvDSN, err)
	}
	if cfg.dsn() != "postgres://env@127.0.0.1:5432/x" {
		t.Fatalf("dsn() = %q", cfg.dsn())
	}
}

func TestConfigRetentionIntervalRequired(t *testing.T) {
	cfg := loadConfig(t, "")
	cfg.RetentionInterval = 0
	if err := confmap.Validate(cfg); !errors.Is(err, errRetentionInterval) {
		t.Fatalf("got %v", err)
	}
	cfg.Retention = 0
	if err := confmap.Validate(cfg); err != nil {
		t.Fatalf("retention off needs no interval: %v", err)
	}
}

// TestConfigMalformedDSNNeverEchoed: each malformed form of a DSN, in
// dsn or in DRIFTLOCK_DSN, is reported by its problem without the
// password (pgconn's own masking misses some forms, e.g. spaces around
// '=' in key=value).
func TestConfigMalformedDSNNeverEchoed(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:s3cret@host:notaport/db",
		"postgres://u:s3cret@host:5432/db?sslmode=bogus",
		"postgres://u:s3cret@[::1/db",
		"postgres://u:s3%cret@host/db",
		"postgres://u@host/db?password=s3cret&port=x",
		"host=h password=s3cret port=notaport",
		"host=h password='s3cret port=5432",
		"host=h  password = s3cret port=x",
		"password=s3cret =x",
	} {
		for _, viaEnv := range []bool{false, true} {
			cfg := loadConfig(t, "")
			if viaEnv {
				cfg.DSN = ""
				t.Setenv(EnvDSN, dsn)
			} else {
				cfg.DSN = configopaque.String(dsn)
			}
			err := confmap.Validate(cfg)
			if !errors.Is(err, errInvalidDSN) {
				t.Fatalf("%q (env %v): got %v, want %v", dsn, viaEnv, err, errInvalidDSN)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%q (env %v): error echoes the password: %v", dsn, viaEnv, err)
			}
		}
	}
}
