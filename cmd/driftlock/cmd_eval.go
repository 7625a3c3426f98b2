package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/driftlock/driftlock/internal/eval"
	"github.com/driftlock/driftlock/internal/nezhaeval"
)

func init() {
	register(command{name: "eval", summary: "measure detection quality on the labeled data in ../shared (BGL, NAB, loghub); `eval nezha DIR`: faults found by incidents on a Nezha day", run: runEval})
}

func runEval(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "nezha" {
		return runEvalNezha(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "the shared data folder (default: ../shared/data beside the repository)")
	dc := detectorFlags(fs)
	if err := dc.parse(fs, args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	cfg, err := dc.config()
	if err != nil {
		return err
	}
	dir := *data
	if dir == "" {
		dir = defaultSharedData()
	}
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("shared data not found at %s (pass --data DIR): %w", dir, err)
	}
	rep, err := eval.Run(dir, cfg)
	if err != nil {
		return err
	}
	rep.Print(stdout)
	return nil
}

// defaultSharedData finds ../shared/data beside the repository root (the
// folder holding go.mod), starting from the working directory.
func defaultSharedData() string {
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join("..", "shared", "data")
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared", "data")
		}
		if filepath.Dir(dir) == dir {
			return filepath.Join("..", "shared", "data")
		}
	}
}

// runEvalNezha is `driftlock eval nezha DIR`: the day replayed through the
// processor (defaults) and the incident correlator in process, scored
// against DIR/fault_list.json. The machine-readable lines come last.
func runEvalNezha(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval nezha", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cache := fs.String("cache", "", "file holding the replay's outcome: read when present, else written (to iterate on the correlator; delete it when the processor changes)")
	quiet := fs.Bool("quiet", false, "no replay progress on stderr")
	inc := addIncidentFlags(fs, false)
	delay := fs.String("inject-delay", "", "add a synthetic network delay into a service's incoming calls and score it as a 29th fault: SERVICE@TIME[,FOR[,DELAY]], e.g. ts-station-service@2023-01-29T12:30:00Z,5m,1s")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: driftlock eval nezha [--cache FILE] [--quiet] [--incidents-config FILE] [--inject-delay SERVICE@TIME[,FOR[,DELAY]]] DIR   (DIR holds log.tgz, trace.tgz, metric.tgz, fault_list.json)")
		fs.PrintDefaults()
	}
	// Flags may come before or after DIR.
	var dir string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) > 0 {
			if dir != "" {
				return fmt.Errorf("%w: one folder expected, got %q and %q", errUsage, dir, args[0])
			}
			dir, args = args[0], args[1:]
		}
	}
	if dir == "" {
		fs.Usage()
		return fmt.Errorf("%w: eval nezha needs a Nezha day folder", errUsage)
	}
	if err := nezhaeval.CheckDir(dir); err != nil {
		return err
	}
	ccfg, _, err := inc.load()
	if err != nil {
		return err
	}
	opt := nezhaeval.Options{Cache: *cache, Warn: stderr, Incident: ccfg.Incident}
	if *delay != "" {
		f, err := nezhaeval.ParseDelayFault(*delay)
		if err != nil {
			return fmt.Errorf("%w: --inject-delay: %v", errUsage, err)
		}
		opt.Delay = &f
	}
	if !*quiet {
		opt.Progress = stderr
	}
	rep, err := nezhaeval.Run(context.Background(), dir, opt)
	if err != nil {
		return err
	}
	rep.Print(stdout)
	return nil
}
