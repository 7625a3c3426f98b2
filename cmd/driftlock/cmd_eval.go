package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/driftlock/driftlock/internal/eval"
)

func init() {
	register(command{name: "eval", summary: "measure detection quality on the labeled data in ../shared (BGL, NAB, loghub)", run: runEval})
}

func runEval(args []string, stdout, stderr io.Writer) error {
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
