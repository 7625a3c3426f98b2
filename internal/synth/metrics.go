package synth

import (
	"time"

	"github.com/driftlock/driftlock/internal/replay"
)

// metric produces one scrape of service: CPU utilization and request
// latency gauges with small noise. During a cpu_spike fault both jump.
func (g *Generator) metric(service string, _ time.Time, faulty bool) replay.Record {
	cpu := 0.30 + 0.02*g.rng.NormFloat64()
	lat := 0.050 + 0.004*g.rng.NormFloat64()
	if faulty {
		cpu = 0.97 + 0.01*g.rng.NormFloat64()
		lat = 2.0 + 0.1*g.rng.NormFloat64()
	}
	return replay.Record{Points: []replay.Point{
		{Name: "system.cpu.utilization", Unit: "1", Value: cpu},
		{Name: "http.server.request.duration.p95", Unit: "s", Value: lat},
	}}
}
