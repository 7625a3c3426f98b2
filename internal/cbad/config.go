package cbad

import (
	"errors"
	"fmt"
	"time"
)

// Compressor names accepted in Config.Compressor.
const (
	// CompressorNgram is an adaptive token n-gram model (PPM-style code length).
	CompressorNgram = "ngram"
	// CompressorZstd encodes each record with zstd using the baseline as a raw dictionary.
	CompressorZstd = "zstd"
	// CompressorS2 encodes each record with s2 using the baseline as a dictionary.
	CompressorS2 = "s2"
)

// Sentinel errors returned by Config.Validate, wrapped with the field's details.
var (
	ErrCompressor     = errors.New("compressor must be one of ngram, zstd, s2")
	ErrBaselineSize   = errors.New("baseline_size out of range")
	ErrHop            = errors.New("hop out of range")
	ErrCalibration    = errors.New("calibration_size out of range")
	ErrPValue         = errors.New("p_value out of range")
	ErrMinEffect      = errors.New("min_effect out of range")
	ErrMaxStreams     = errors.New("max_streams out of range")
	ErrIdleTimeout    = errors.New("idle_timeout must not be negative")
	ErrDriftWindows   = errors.New("drift_windows out of range")
	ErrPermutations   = errors.New("permutations out of range")
	ErrWarmup         = errors.New("warmup out of range")
	ErrMaxRecordBytes = errors.New("max_record_bytes out of range")
	ErrAdmitAfter     = errors.New("admit_after out of range")
	ErrLatency        = errors.New("latency setting out of range")
	ErrRateBucket     = errors.New("rate_bucket out of range")
	ErrRatePValue     = errors.New("rate_p_value out of range")
	ErrFlagBudget     = errors.New("flag_budget out of range")
)

// Config tunes a Detector. The zero value is not valid: start from
// DefaultConfig and change what you need.
type Config struct {
	// Compressor chooses the per-record cost model.
	Compressor string `mapstructure:"compressor"`
	// BaselineSize is how many recent normal records a stream keeps.
	BaselineSize int `mapstructure:"baseline_size"`
	// NumericBaselineSize is how many recent normal values a metric series
	// keeps; longer than the text baseline because series are cheap per
	// point and daily or weekly cycles need history to be seen as normal.
	NumericBaselineSize int `mapstructure:"numeric_baseline_size"`
	// NumericCalibrationSize is how many recent scores back a series' p-values.
	NumericCalibrationSize int `mapstructure:"numeric_calibration_size"`
	// Hop is the window length in records: window drift is tested, and
	// dictionary compressors are rebuilt, every Hop records.
	Hop int `mapstructure:"hop"`
	// CalibrationSize is how many recent normal scores back the p-value.
	CalibrationSize int `mapstructure:"calibration_size"`
	// Warmup is how many records a stream must see before it may flag.
	Warmup int `mapstructure:"warmup"`
	// PValue is the significance level for flagging a record: the most a
	// record-level test may flag on a quiet stream. On a busy stream with
	// record times the level is lower (see FlagBudget).
	PValue float64 `mapstructure:"p_value"`
	// FlagBudget is the expected number of false record-level flags per
	// stream and hour of record time: a stream's per-record level is
	// min(PValue, FlagBudget / its records per hour), so normal data yields
	// about this many surprise flags per stream-hour at any traffic. 0
	// disables the budget (the level is PValue at any traffic).
	FlagBudget float64 `mapstructure:"flag_budget"`
	// RateBucket is the width, in record time, of the buckets in which a
	// stream's records are counted per kind and per severity to find bursts
	// of familiar records (see rate.go). 0 disables stream-level evidence.
	RateBucket time.Duration `mapstructure:"rate_bucket"`
	// RatePValue is the level of each per-kind burst test (one test per
	// kind present in a bucket; for error-severity counts, the one-bucket
	// and the 2-minute window test together, each at half of it).
	RatePValue float64 `mapstructure:"rate_p_value"`
	// MinEffect is the minimum score excess over the calibration median.
	MinEffect float64 `mapstructure:"min_effect"`
	// MaxStreams bounds the number of live streams (least recently used evicted).
	MaxStreams int `mapstructure:"max_streams"`
	// IdleTimeout evicts streams not seen for this long (by record time); 0 disables.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// DriftWindows is how many consecutive drifting windows rebase a stream.
	DriftWindows int `mapstructure:"drift_windows"`
	// AdmitAfter admits a recurring kind of anomaly to the baseline once it
	// has been flagged this many times (0: anomalies never enter it).
	AdmitAfter int `mapstructure:"admit_after"`
	// Permutations caps the permutation test's shuffles.
	Permutations int `mapstructure:"permutations"`
	// Seed makes the permutation test reproducible.
	Seed uint64 `mapstructure:"seed"`
	// MaxRecordBytes truncates records before scoring.
	MaxRecordBytes int `mapstructure:"max_record_bytes"`
	// Canonicalize masks volatile tokens before scoring.
	Canonicalize bool `mapstructure:"canonicalize"`
	// UseSeverity lets a record's severity weigh on its score.
	UseSeverity bool `mapstructure:"use_severity"`

	// Latency path (span durations, edge gaps, span errors; see latency.go).
	// LatencyBaselineSize is how many recent normal durations a series keeps.
	LatencyBaselineSize int `mapstructure:"latency_baseline_size"`
	// LatencyQuantile is the upper tail a duration must reach to count as
	// slow (0.01: above the baseline's 99th percentile).
	LatencyQuantile float64 `mapstructure:"latency_quantile"`
	// LatencyWindow is how many recent calls the slow (or failed) ones are
	// counted among, 2..64.
	LatencyWindow int `mapstructure:"latency_window"`
	// LatencyPValue is the significance level of that count.
	LatencyPValue float64 `mapstructure:"latency_p_value"`
	// LatencyMinRatio is the effect size: a flagged duration is at least
	// this many times the expected upper bound.
	LatencyMinRatio float64 `mapstructure:"latency_min_ratio"`
}

// DefaultConfig returns the defaults shared by the processor and the CLI.
func DefaultConfig() Config {
	return Config{
		Compressor:             CompressorNgram,
		BaselineSize:           512,
		Hop:                    64,
		NumericBaselineSize:    2048,
		NumericCalibrationSize: 2048,
		CalibrationSize:        512,
		Warmup:                 64,
		PValue:                 0.01,
		FlagBudget:             2,
		RateBucket:             30 * time.Second,
		RatePValue:             1e-4,
		MinEffect:              1.0,
		MaxStreams:             10000,
		IdleTimeout:            time.Hour,
		DriftWindows:           4,
		AdmitAfter:             1,
		Permutations:           100,
		Seed:                   1,
		MaxRecordBytes:         16 << 10,
		Canonicalize:           true,
		UseSeverity:            true,
		LatencyBaselineSize:    512,
		LatencyQuantile:        0.01,
		LatencyWindow:          8,
		LatencyPValue:          1e-4,
		LatencyMinRatio:        1.5,
	}
}

// Check reports every out-of-range field at once (errors.Join), so a
// configuration check lists all its mistakes. It is not named Validate on
// purpose: the Collector's config walk calls the Validate of every nested
// config, and the processor, whose `detector` block this is, reports these
// mistakes itself with the block's path (detector.p_value ...); a Validate
// here made `otelcol-driftlock validate` list each mistake twice, the
// second copy without the block's name on all but its first line.
func (c Config) Check() error {
	var errs []error
	switch c.Compressor {
	case CompressorNgram, CompressorZstd, CompressorS2:
	default:
		errs = append(errs, fmt.Errorf("%w: got %q", ErrCompressor, c.Compressor))
	}
	if c.BaselineSize < 16 || c.BaselineSize > 65536 {
		errs = append(errs, fmt.Errorf("%w: got %d, want 16..65536", ErrBaselineSize, c.BaselineSize))
	}
	if c.NumericBaselineSize < 16 || c.NumericBaselineSize > 1<<20 {
		errs = append(errs, fmt.Errorf("%w: numeric_baseline_size got %d, want 16..1048576", ErrBaselineSize, c.NumericBaselineSize))
	}
	if c.NumericCalibrationSize < 16 || c.NumericCalibrationSize > 1<<20 {
		errs = append(errs, fmt.Errorf("%w: numeric_calibration_size got %d, want 16..1048576", ErrCalibration, c.NumericCalibrationSize))
	}
	if c.Hop < 4 || c.Hop > c.BaselineSize {
		errs = append(errs, fmt.Errorf("%w: got %d, want 4..baseline_size (%d)", ErrHop, c.Hop, c.BaselineSize))
	}
	if c.CalibrationSize < 16 || c.CalibrationSize > 65536 {
		errs = append(errs, fmt.Errorf("%w: got %d, want 16..65536", ErrCalibration, c.CalibrationSize))
	}
	// Warm-up counts baseline records, so it cannot exceed the baseline.
	if c.Warmup < 1 || c.Warmup > c.BaselineSize {
		errs = append(errs, fmt.Errorf("%w: got %d, want 1..baseline_size (%d)", ErrWarmup, c.Warmup, c.BaselineSize))
	}
	if !(c.PValue > 0 && c.PValue < 1) {
		errs = append(errs, fmt.Errorf("%w: got %v, want 0 < p_value < 1", ErrPValue, c.PValue))
	}
	if c.FlagBudget < 0 || c.FlagBudget > 1e6 || c.FlagBudget != c.FlagBudget {
		errs = append(errs, fmt.Errorf("%w: got %v, want 0 (no budget) .. 1000000 flags per stream-hour", ErrFlagBudget, c.FlagBudget))
	}
	if c.RateBucket != 0 && (c.RateBucket < time.Second || c.RateBucket > time.Hour) {
		errs = append(errs, fmt.Errorf("%w: got %v, want 0 (off) or 1s..1h", ErrRateBucket, c.RateBucket))
	}
	if !(c.RatePValue > 0 && c.RatePValue < 1) {
		errs = append(errs, fmt.Errorf("%w: got %v, want 0 < rate_p_value < 1", ErrRatePValue, c.RatePValue))
	}
	if c.MinEffect < 0 || c.MinEffect > 64 {
		errs = append(errs, fmt.Errorf("%w: got %v, want 0..64", ErrMinEffect, c.MinEffect))
	}
	if c.MaxStreams < 1 || c.MaxStreams > 10_000_000 {
		errs = append(errs, fmt.Errorf("%w: got %d, want 1..10000000", ErrMaxStreams, c.MaxStreams))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("%w: got %v", ErrIdleTimeout, c.IdleTimeout))
	}
	if c.DriftWindows < 1 || c.DriftWindows > 1000 {
		errs = append(errs, fmt.Errorf("%w: got %d, want 1..1000", ErrDriftWindows, c.DriftWindows))
	}
	if c.AdmitAfter < 0 || c.AdmitAfter > 1000 {
		errs = append(errs, fmt.Errorf("%w: got %d, want 0..1000 (0 disables admission)", ErrAdmitAfter, c.AdmitAfter))
	}
	// With fewer than minPermutations shuffles no window can reach
	// p < driftAlpha: the test would run and never report drift.
	if c.Permutations != 0 && (c.Permutations < minPermutations || c.Permutations > 100000) {
		errs = append(errs, fmt.Errorf("%w: got %d, want 0 (no drift test) or %d..100000", ErrPermutations, c.Permutations, minPermutations))
	}
	if c.MaxRecordBytes < 64 || c.MaxRecordBytes > 16<<20 {
		errs = append(errs, fmt.Errorf("%w: got %d, want 64..16777216", ErrMaxRecordBytes, c.MaxRecordBytes))
	}
	return errors.Join(append(errs, c.validateLatency())...)
}

func (c Config) validateLatency() error {
	switch {
	case c.LatencyBaselineSize < latencyMinPoints || c.LatencyBaselineSize > 1<<20:
		return fmt.Errorf("%w: latency_baseline_size got %d, want %d..1048576", ErrLatency, c.LatencyBaselineSize, latencyMinPoints)
	case !(c.LatencyQuantile > 0 && c.LatencyQuantile < 0.5):
		return fmt.Errorf("%w: latency_quantile got %v, want 0 < q < 0.5", ErrLatency, c.LatencyQuantile)
	case c.LatencyWindow < 2 || c.LatencyWindow > 64:
		return fmt.Errorf("%w: latency_window got %d, want 2..64", ErrLatency, c.LatencyWindow)
	case !(c.LatencyPValue > 0 && c.LatencyPValue < 1):
		return fmt.Errorf("%w: latency_p_value got %v, want 0 < p < 1", ErrLatency, c.LatencyPValue)
	case !(c.LatencyMinRatio >= 1 && c.LatencyMinRatio <= 1000):
		return fmt.Errorf("%w: latency_min_ratio got %v, want 1..1000", ErrLatency, c.LatencyMinRatio)
	}
	return nil
}
