package correlator

import (
	"errors"
	"fmt"
	"time"

	"github.com/driftlock/driftlock/internal/incident"
)

// Config is the `correlator:` part of serve's incidents configuration.
// DefaultConfig documents the defaults.
type Config struct {
	// Enabled runs the correlator in `driftlock serve` (one replica is
	// active at a time, the others stand by).
	Enabled bool `yaml:"enabled"`
	// Name names the lock and the saved position: replicas sharing a name
	// share one active correlator.
	Name string `yaml:"name"`
	// Batch is how many anomalies one read takes.
	Batch int `yaml:"batch"`
	// Poll is the fallback interval at which new anomalies are looked for
	// when no notification arrives (notifications are a hint).
	Poll time.Duration `yaml:"poll"`
	// Standby is how often a standby replica tries to become active.
	Standby time.Duration `yaml:"standby"`
	// IdleAdvance: when no new anomaly arrived for this long (wall time,
	// counted while the database was reachable), the correlator's clock
	// moves to now - IdleAdvance, so buckets are tested and quiet
	// incidents close even when nothing else is flagged. It is also how
	// late a row may arrive and still count as live; later rows join the
	// open incident of their service, or need `driftlock incidents rebuild`.
	IdleAdvance time.Duration `yaml:"idle_advance"`
	// Warmup is the history before a rebuild's start that is replayed
	// (without writing) to learn the streams' backgrounds.
	Warmup time.Duration `yaml:"warmup"`
	// GapGraceMin and GapGraceMax bound how long rows behind an id gap
	// wait for a slower writer's transaction (as the live stream does).
	GapGraceMin time.Duration `yaml:"gap_grace_min"`
	GapGraceMax time.Duration `yaml:"gap_grace_max"`
	// Incident holds the correlator's own settings (internal/incident,
	// where the defaults are documented): `incident:` in the YAML.
	Incident incident.Config `yaml:"incident"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Enabled:     true,
		Name:        "default",
		Batch:       1000,
		Poll:        2 * time.Second,
		Standby:     5 * time.Second,
		IdleAdvance: time.Minute,
		Warmup:      time.Hour,
		GapGraceMin: 200 * time.Millisecond,
		GapGraceMax: 10 * time.Second,
		Incident:    incident.DefaultConfig(),
	}
}

// Validate reports every unusable setting, naming it.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("correlator.name must not be empty"))
	}
	if c.Batch < 1 || c.Batch > 100_000 {
		errs = append(errs, fmt.Errorf("correlator.batch must be in [1, 100000], got %d", c.Batch))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"poll", c.Poll}, {"standby", c.Standby}, {"idle_advance", c.IdleAdvance}, {"gap_grace_min", c.GapGraceMin}, {"gap_grace_max", c.GapGraceMax}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("correlator.%s must be positive, got %v", d.name, d.v))
		}
	}
	if c.Warmup < 0 {
		errs = append(errs, fmt.Errorf("correlator.warmup must not be negative, got %v", c.Warmup))
	}
	if c.GapGraceMax < c.GapGraceMin {
		errs = append(errs, fmt.Errorf("correlator.gap_grace_max (%v) must be at least gap_grace_min (%v)", c.GapGraceMax, c.GapGraceMin))
	}
	if err := c.Incident.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("correlator.incident: %w", err))
	}
	return errors.Join(errs...)
}
