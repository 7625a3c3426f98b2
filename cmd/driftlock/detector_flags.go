package main

import (
	"flag"
	"fmt"
	"os"

	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"

	"github.com/driftlock/driftlock/internal/cbad"
)

// detectorConfig collects the flags shared by commands that run the
// detector, so that `score` and `eval` use the processor's defaults and the
// same option names.
type detectorConfig struct {
	file       *string
	compressor *string
	pValue     *float64
	minEffect  *float64
	baseline   *int
	hop        *int
	warmup     *int
	seed       *uint64
	noCanon    *bool
	noSeverity *bool
	set        map[string]bool
}

func detectorFlags(fs *flag.FlagSet) *detectorConfig {
	def := cbad.DefaultConfig()
	return &detectorConfig{
		file:       fs.String("config", "", "YAML file with detector settings (the processor's `detector:` keys, at top level or under detector:)"),
		compressor: fs.String("compressor", def.Compressor, "cost model: ngram, zstd or s2"),
		pValue:     fs.Float64("p-value", def.PValue, "flag records whose p-value is below this"),
		minEffect:  fs.Float64("min-effect", def.MinEffect, "minimum score excess over the stream median (bits/token)"),
		baseline:   fs.Int("baseline-size", def.BaselineSize, "records kept in the baseline"),
		hop:        fs.Int("hop", def.Hop, "window length in records"),
		warmup:     fs.Int("warmup", def.Warmup, "records before a stream may flag"),
		seed:       fs.Uint64("seed", def.Seed, "seed of the permutation test"),
		noCanon:    fs.Bool("no-canonicalize", false, "score raw text (no masking of volatile tokens)"),
		noSeverity: fs.Bool("no-severity", false, "ignore severity words as evidence"),
	}
}

// config builds the detector config: defaults, then the file, then flags
// given explicitly on the command line.
func (dc *detectorConfig) config() (cbad.Config, error) {
	cfg := cbad.DefaultConfig()
	if *dc.file != "" {
		b, err := os.ReadFile(*dc.file)
		if err != nil {
			return cfg, fmt.Errorf("--config: %w", err)
		}
		var raw map[string]any
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return cfg, fmt.Errorf("--config %s: %w", *dc.file, err)
		}
		if sub, ok := raw["detector"].(map[string]any); ok {
			raw = sub
		}
		if err := confmap.NewFromStringMap(raw).Unmarshal(&cfg); err != nil {
			return cfg, fmt.Errorf("--config %s: %w", *dc.file, err)
		}
	}
	apply := func(name string, f func()) {
		if dc.set[name] {
			f()
		}
	}
	apply("compressor", func() { cfg.Compressor = *dc.compressor })
	apply("p-value", func() { cfg.PValue = *dc.pValue })
	apply("min-effect", func() { cfg.MinEffect = *dc.minEffect })
	apply("baseline-size", func() { cfg.BaselineSize = *dc.baseline })
	apply("hop", func() { cfg.Hop = *dc.hop })
	apply("warmup", func() { cfg.Warmup = *dc.warmup })
	apply("seed", func() { cfg.Seed = *dc.seed })
	apply("no-canonicalize", func() { cfg.Canonicalize = !*dc.noCanon })
	apply("no-severity", func() { cfg.UseSeverity = !*dc.noSeverity })
	if err := cfg.Check(); err != nil {
		return cfg, fmt.Errorf("detector config: %w", err)
	}
	return cfg, nil
}

// parse parses fs and records which flags were given explicitly.
func (dc *detectorConfig) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	dc.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { dc.set[f.Name] = true })
	return nil
}
