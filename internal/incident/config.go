package incident

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the correlator's settings. DefaultConfig documents the
// defaults and why they are what they are; none is fitted to a data set.
type Config struct {
	// Bucket is the short time bucket in which a service's evidence is
	// tested against its background.
	Bucket time.Duration `yaml:"bucket"`
	// Lateness is how long after a bucket ends anomalies for it may still
	// arrive (out-of-order rows): a bucket is tested once the newest
	// observed time seen is Lateness past its end, or on Advance/Flush.
	Lateness time.Duration `yaml:"lateness"`
	// FalseIncidentsPerHour is the false-alarm budget: the open test's
	// level is set so that, if the background model holds, evidence this
	// strong arises by chance at most this often per hour across all
	// services.
	FalseIncidentsPerHour float64 `yaml:"false_incidents_per_hour"`
	// JoinPValue is the level at which a related service's bucket joins an
	// open incident as supporting evidence (it cannot open one).
	JoinPValue float64 `yaml:"join_p_value"`
	// BackgroundHalfLife is the memory of the per-stream background rates.
	BackgroundHalfLife time.Duration `yaml:"background_half_life"`
	// PriorRate is the assumed flags per bucket of a stream with no history
	// and PriorBuckets how many buckets that assumption weighs: a new
	// stream must show more than a lone flag before it is believed.
	PriorRate    float64 `yaml:"prior_rate"`
	PriorBuckets float64 `yaml:"prior_buckets"`
	// SilenceGap: a signal with no anomaly in any service for this long is
	// taken as absent (no data), not as quiet, so backgrounds do not decay
	// through gaps in the data.
	SilenceGap time.Duration `yaml:"silence_gap"`
	// Quiet closes an incident after this long without evidence.
	Quiet time.Duration `yaml:"quiet"`
	// GroupGap is how close in observed time new evidence must be to an
	// open incident's last evidence to join it.
	GroupGap time.Duration `yaml:"group_gap"`
	// JoinWindow is how long after an incident opened a service not yet in
	// it may still join; later evidence elsewhere is a new incident (a
	// cascade unfolds within minutes; an old incident must not swallow
	// every later problem of a densely connected system).
	JoinWindow time.Duration `yaml:"join_window"`
	// EdgeTTL forgets call-graph edges not seen for this long (0: never).
	EdgeTTL time.Duration `yaml:"edge_ttl"`
	// MaxEvidence bounds the evidence groups kept per service of an incident.
	MaxEvidence int `yaml:"max_evidence"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		// A minute: metrics come once a minute, and a page should say
		// "since 10:04", not "since 10:00".
		Bucket:                time.Minute,
		Lateness:              30 * time.Second,
		FalseIncidentsPerHour: 0.5,
		JoinPValue:            0.01,
		BackgroundHalfLife:    6 * time.Hour,
		// One flag per 10 buckets, weighing half an hour: a stream starts as
		// "flags now and then" and earns its quiet.
		PriorRate:    0.1,
		PriorBuckets: 30,
		SilenceGap:   10 * time.Minute,
		Quiet:        5 * time.Minute,
		GroupGap:     5 * time.Minute,
		JoinWindow:   10 * time.Minute,
		EdgeTTL:      24 * time.Hour,
		MaxEvidence:  16,
	}
}

// Validate reports the first unusable setting.
func (c *Config) Validate() error {
	var errs []error
	pos := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %v", name, d))
		}
	}
	pos("bucket", c.Bucket)
	pos("background_half_life", c.BackgroundHalfLife)
	pos("silence_gap", c.SilenceGap)
	pos("quiet", c.Quiet)
	pos("group_gap", c.GroupGap)
	pos("join_window", c.JoinWindow)
	if c.Bucket > 0 && c.Bucket < time.Second {
		errs = append(errs, fmt.Errorf("bucket must be at least 1s, got %v", c.Bucket))
	}
	if c.Lateness < 0 {
		errs = append(errs, fmt.Errorf("lateness must not be negative, got %v", c.Lateness))
	}
	if c.EdgeTTL < 0 {
		errs = append(errs, fmt.Errorf("edge_ttl must not be negative, got %v", c.EdgeTTL))
	}
	if !(c.FalseIncidentsPerHour > 0 && c.FalseIncidentsPerHour <= 60) {
		errs = append(errs, fmt.Errorf("false_incidents_per_hour must be in (0, 60], got %v", c.FalseIncidentsPerHour))
	}
	if !(c.JoinPValue > 0 && c.JoinPValue < 1) {
		errs = append(errs, fmt.Errorf("join_p_value must be in (0, 1), got %v", c.JoinPValue))
	}
	if !(c.PriorRate > 0) || !(c.PriorBuckets > 0) {
		errs = append(errs, fmt.Errorf("prior_rate and prior_buckets must be positive, got %v and %v", c.PriorRate, c.PriorBuckets))
	}
	if c.MaxEvidence < 1 {
		errs = append(errs, fmt.Errorf("max_evidence must be at least 1, got %d", c.MaxEvidence))
	}
	return errors.Join(errs...)
}
