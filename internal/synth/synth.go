// Package synth generates realistic synthetic telemetry (logs, spans and
// metric scrapes for a few services of a small shop) with faults injected
// at known times. It backs `driftlock replay --synthetic`, the demo when no
// dataset is present, and the end-to-end tests, which need ground truth.
//
// The output is deterministic for a given Config (seeded PCG), so a test can
// replay the same stream twice (single collector vs. fleet) and compare.
package synth

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/driftlock/driftlock/internal/replay"
)

// Fault kinds.
const (
	// KindException: the service's logs turn into a novel exception template.
	KindException = "exception"
	// KindErrorSpans: the service's spans fail (status error, 503, 100x slower).
	KindErrorSpans = "error_spans"
	// KindCPU: the service's CPU and latency gauges jump.
	KindCPU = "cpu_spike"
)

// FaultSpec places a fault: Service's Signal misbehaves for Steps ticks
// starting at tick AtStep.
type FaultSpec struct {
	Service string
	Signal  replay.Signal
	Kind    string
	AtStep  int
	Steps   int
}

// Fault is a FaultSpec resolved to wall-clock times [Start, End).
type Fault struct {
	FaultSpec
	Start, End time.Time
}

// Contains reports whether a record of service/signal at t lies in the fault.
func (f Fault) Contains(service string, sig replay.Signal, t time.Time) bool {
	return f.Service == service && f.Signal == sig && !t.Before(f.Start) && t.Before(f.End)
}

// Config shapes the stream. Zero fields take the defaults noted.
type Config struct {
	Seed  uint64        // default 1
	Start time.Time     // time of tick 0; default now - Steps*Tick (so the stream ends "now")
	Tick  time.Duration // default 1s
	Steps int           // ticks; default 1200
	// Services; default Services.
	Services []string
	// Faults; nil means DefaultFaults(Steps). An empty non-nil slice means none.
	Faults []FaultSpec
}

// Services are the default services.
var Services = []string{"frontend", "checkout", "payment", "inventory"}

// DefaultFaults places one fault per signal in the last third of the
// stream, after every stream's warm-up, on three different services.
func DefaultFaults(steps int) []FaultSpec {
	return []FaultSpec{
		{Service: "checkout", Signal: replay.Logs, Kind: KindException, AtStep: steps * 2 / 3, Steps: 12},
		{Service: "payment", Signal: replay.Traces, Kind: KindErrorSpans, AtStep: steps*2/3 + steps/12, Steps: 12},
		{Service: "inventory", Signal: replay.Metrics, Kind: KindCPU, AtStep: steps*2/3 + steps/6, Steps: 10},
	}
}

// ErrConfig is returned for an invalid Config.
var ErrConfig = errors.New("synth: invalid config")

// Generator is a replay.Source of synthetic records.
type Generator struct {
	cfg    Config
	rng    *rand.Rand
	faults []Fault
	step   int
	svc    int
	sig    int
}

// New validates cfg, fills defaults and returns a generator.
func New(cfg Config) (*Generator, error) {
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Steps == 0 {
		cfg.Steps = 1200
	}
	if cfg.Steps < 0 {
		return nil, fmt.Errorf("%w: steps must be positive, got %d", ErrConfig, cfg.Steps)
	}
	if len(cfg.Services) == 0 {
		cfg.Services = Services
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Now().Add(-time.Duration(cfg.Steps) * cfg.Tick).Truncate(time.Second)
	}
	if cfg.Faults == nil {
		cfg.Faults = DefaultFaults(cfg.Steps)
	}
	known := map[string]bool{}
	for _, s := range cfg.Services {
		known[s] = true
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
	for _, f := range cfg.Faults {
		if !known[f.Service] {
			return nil, fmt.Errorf("%w: fault on unknown service %q", ErrConfig, f.Service)
		}
		if f.AtStep < 0 || f.Steps <= 0 || f.AtStep+f.Steps > cfg.Steps {
			return nil, fmt.Errorf("%w: fault %s/%s at step %d for %d steps is outside 0..%d", ErrConfig, f.Service, f.Signal, f.AtStep, f.Steps, cfg.Steps)
		}
		switch f.Kind {
		case KindException, KindErrorSpans, KindCPU:
		default:
			return nil, fmt.Errorf("%w: unknown fault kind %q", ErrConfig, f.Kind)
		}
		g.faults = append(g.faults, Fault{
			FaultSpec: f,
			Start:     cfg.Start.Add(time.Duration(f.AtStep) * cfg.Tick),
			End:       cfg.Start.Add(time.Duration(f.AtStep+f.Steps) * cfg.Tick),
		})
	}
	return g, nil
}

// Faults returns the injected faults with their times.
func (g *Generator) Faults() []Fault { return g.faults }

// Config returns the effective configuration (defaults filled).
func (g *Generator) Config() Config { return g.cfg }

// Total is the number of records the generator yields.
func (g *Generator) Total() int { return g.cfg.Steps * len(g.cfg.Services) * 3 }

// InFault returns the fault a record of service/signal at t belongs to.
func (g *Generator) InFault(service string, sig replay.Signal, t time.Time) (Fault, bool) {
	for _, f := range g.faults {
		if f.Contains(service, sig, t) {
			return f, true
		}
	}
	return Fault{}, false
}

// Next yields, tick by tick, for each service one log record, one span
// and one metric scrape, in time order.
func (g *Generator) Next() (replay.Record, error) {
	if g.step >= g.cfg.Steps {
		return replay.Record{}, io.EOF
	}
	service := g.cfg.Services[g.svc]
	sig := replay.Signal(g.sig)
	slots := len(g.cfg.Services) * 3
	slot := g.svc*3 + g.sig
	t := g.cfg.Start.Add(time.Duration(g.step)*g.cfg.Tick + time.Duration(slot)*g.cfg.Tick/time.Duration(slots))
	_, faulty := g.InFault(service, sig, t)
	var r replay.Record
	switch sig {
	case replay.Logs:
		r = g.log(service, t, faulty)
	case replay.Traces:
		r = g.span(service, t, faulty)
	default:
		r = g.metric(service, t, faulty)
	}
	r.Signal, r.Time, r.Service = sig, t, service
	r.Pod = service + "-7d9f8b6c5d-" + podSuffix(service)

	g.sig++
	if g.sig == 3 {
		g.sig = 0
		g.svc++
		if g.svc == len(g.cfg.Services) {
			g.svc = 0
			g.step++
		}
	}
	return r, nil
}

func podSuffix(s string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	const alpha = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, 5)
	for i := range b {
		b[i] = alpha[h%uint32(len(alpha))]
		h /= uint32(len(alpha))
		h ^= h << 7
	}
	return string(b)
}

// lognormal returns a latency in ms around median m.
func (g *Generator) lognormal(m, sigma float64) float64 {
	return m * math.Exp(sigma*g.rng.NormFloat64())
}

func (g *Generator) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *Generator) ids(r *replay.Record) {
	for i := range r.TraceID {
		r.TraceID[i] = byte(g.rng.UintN(256))
	}
	for i := range r.SpanID {
		r.SpanID[i] = byte(g.rng.UintN(256))
	}
	r.TraceID[0] |= 1 // never all-zero
	r.SpanID[0] |= 1
}
