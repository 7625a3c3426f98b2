package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/driftlock/driftlock/internal/replay"
	"github.com/driftlock/driftlock/internal/synth"
)

func init() {
	register(command{name: "replay", summary: "send telemetry (a log file, the Nezha dataset or a synthetic stream) to an OTLP endpoint", run: runReplay})
}

const replayUsage = `usage:
  driftlock replay [flags] --format lines --service NAME FILE   (FILE "-" is stdin)
  driftlock replay [flags] --format nezha DIR                   (DIR holds log.tgz, trace.tgz, metric.tgz)
  driftlock replay [flags] --synthetic                          (synthetic logs, spans, metrics with injected faults)

Progress (records sent, rate, elapsed) goes to stderr.

flags:
`

func runReplay(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, replayUsage); fs.PrintDefaults() }
	format := fs.String("format", "", "input format: lines or nezha")
	service := fs.String("service", "", "service.name of the stream (--format lines)")
	synthetic := fs.Bool("synthetic", false, "generate a synthetic stream with injected faults instead of reading input")
	steps := fs.Int("steps", 1200, "synthetic: ticks to generate (one log, span and metric scrape per service per tick)")
	seed := fs.Uint64("seed", 1, "synthetic: random seed")
	faultsOut := fs.String("faults-out", "", "synthetic: write the injected faults (service, signal, kind, start, end) as JSON to this file")
	signals := fs.String("signals", "logs,traces,metrics", "nezha: signals to replay")
	protocol := fs.String("protocol", "grpc", "OTLP protocol: grpc or http")
	endpoint := fs.String("endpoint", "", "OTLP endpoint (default 127.0.0.1:4317 for grpc, http://127.0.0.1:4318 for http)")
	speed := fs.Float64("speed", 0, "time compression: 60 replays an hour in a minute; 0 sends as fast as possible")
	batch := fs.Int("batch", 512, "records per OTLP request")
	limit := fs.Int("limit", 0, "stop after this many records (0: all)")
	quiet := fs.Bool("quiet", false, "no progress lines, only the final one")
	// Flags may come before or after the input (FILE/DIR), as in the usage.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *speed < 0 {
		return fmt.Errorf("%w: --speed must not be negative", errUsage)
	}
	if *batch < 1 {
		return fmt.Errorf("%w: --batch must be at least 1", errUsage)
	}
	if *endpoint == "" {
		*endpoint = "127.0.0.1:4317"
		if *protocol == replay.ProtocolHTTP {
			*endpoint = "http://127.0.0.1:4318"
		}
	}

	var src replay.Source
	var closeSrc func()
	switch {
	case *synthetic:
		if len(pos) != 0 || *format != "" {
			return fmt.Errorf("%w: --synthetic takes no --format and no input", errUsage)
		}
		g, err := synth.New(synth.Config{Seed: *seed, Steps: *steps})
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		src = g
		if *faultsOut != "" {
			if err := writeFaults(*faultsOut, g.Faults()); err != nil {
				return err
			}
		}
		fmt.Fprintf(stderr, "replay: synthetic stream, %d records, services %s, faults:\n", g.Total(), strings.Join(g.Config().Services, ","))
		for _, f := range g.Faults() {
			fmt.Fprintf(stderr, "  %-10s %-7s %-12s %s .. %s\n", f.Service, f.Signal, f.Kind, f.Start.Format(time.RFC3339), f.End.Format(time.RFC3339))
		}
	case *format == "lines":
		if len(pos) != 1 {
			return fmt.Errorf("%w: --format lines needs exactly one FILE", errUsage)
		}
		if *service == "" {
			return fmt.Errorf("%w: --format lines needs --service NAME", errUsage)
		}
		name := pos[0]
		var r io.Reader = os.Stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			closeSrc = func() { f.Close() }
			r = f
		}
		src = replay.NewLineSource(r, name, *service)
	case *format == "nezha":
		if len(pos) != 1 {
			return fmt.Errorf("%w: --format nezha needs exactly one DIR", errUsage)
		}
		sig, err := parseSignals(*signals)
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		n, err := replay.OpenNezha(pos[0], sig, stderr)
		if err != nil {
			return err
		}
		closeSrc = func() {
			if k := n.Skipped(); k > 0 {
				fmt.Fprintf(stderr, "replay: %d unparseable input rows skipped (listed above)\n", k)
			}
			n.Close()
		}
		src = n
	case *format == "":
		return fmt.Errorf("%w: give --format lines|nezha with an input, or --synthetic", errUsage)
	default:
		return fmt.Errorf("%w: unknown --format %q (want lines or nezha)", errUsage, *format)
	}
	if closeSrc != nil {
		defer closeSrc()
	}

	sender, err := replay.NewSender(*protocol, *endpoint)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer sender.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opt := replay.Options{Speed: *speed, BatchSize: *batch, Limit: *limit, Progress: stderr}
	if *quiet {
		opt.ProgressEvery = 24 * time.Hour
	}
	fmt.Fprintf(stderr, "replay: sending to %s over OTLP/%s\n", *endpoint, *protocol)
	_, err = replay.Run(ctx, src, sender, opt)
	return err
}

func parseSignals(s string) (replay.NezhaSignals, error) {
	var sig replay.NezhaSignals
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "logs":
			sig.Logs = true
		case "traces":
			sig.Traces = true
		case "metrics":
			sig.Metrics = true
		case "":
		default:
			return sig, fmt.Errorf("unknown signal %q in --signals (want logs, traces, metrics)", p)
		}
	}
	if sig == (replay.NezhaSignals{}) {
		return sig, errors.New("--signals selects nothing")
	}
	return sig, nil
}

// faultJSON is the on-disk shape of an injected fault (--faults-out).
type faultJSON struct {
	Service string    `json:"service"`
	Signal  string    `json:"signal"`
	Kind    string    `json:"kind"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
}

func writeFaults(path string, faults []synth.Fault) error {
	out := make([]faultJSON, 0, len(faults))
	for _, f := range faults {
		out = append(out, faultJSON{f.Service, f.Signal.String(), f.Kind, f.Start, f.End})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
