package nezhaeval

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/driftlock/driftlock/internal/replay"
)

// A synthetic network delay, for the fault type the shared day lacks:
// network delay or packet loss in front of a service is mostly invisible
// in that service's own telemetry and visible in its callers' view of it
// (issue 13). DelayFault adds Delay to every call into Service that starts
// in [At, At+For): the callee's own spans are unchanged, its caller's span
// of the call and every ancestor of that span (the request waits for the
// call) end Delay later. Logs and metrics are replayed unchanged, so only
// the spans carry the fault, which is the hard case.
type DelayFault struct {
	Service string
	At      time.Time
	For     time.Duration
	Delay   time.Duration
}

// DefaultDelayFault fills what ParseDelayFault leaves unset: five minutes
// of one second, the size of the delays in the measurement.
const (
	defaultDelayFor = 5 * time.Minute
	defaultDelay    = time.Second
)

// ParseDelayFault reads SERVICE@TIME[,FOR[,DELAY]] (TIME in RFC 3339, FOR
// and DELAY Go durations), e.g.
// ts-station-service@2023-01-29T12:30:00Z,5m,1s.
func ParseDelayFault(s string) (DelayFault, error) {
	svc, rest, ok := strings.Cut(s, "@")
	if !ok || svc == "" || rest == "" {
		return DelayFault{}, fmt.Errorf("delay fault %q: want SERVICE@TIME[,FOR[,DELAY]]", s)
	}
	parts := strings.Split(rest, ",")
	if len(parts) > 3 {
		return DelayFault{}, fmt.Errorf("delay fault %q: want SERVICE@TIME[,FOR[,DELAY]]", s)
	}
	at, err := time.Parse(time.RFC3339, parts[0])
	if err != nil {
		return DelayFault{}, fmt.Errorf("delay fault %q: time: %w", s, err)
	}
	f := DelayFault{Service: svc, At: at.UTC(), For: defaultDelayFor, Delay: defaultDelay}
	for i, dst := range []*time.Duration{&f.For, &f.Delay} {
		if len(parts) > i+1 {
			d, err := time.ParseDuration(parts[i+1])
			if err != nil || d <= 0 {
				return DelayFault{}, fmt.Errorf("delay fault %q: %q is not a positive duration", s, parts[i+1])
			}
			*dst = d
		}
	}
	return f, nil
}

// Fault is the fault-list entry of the synthetic fault.
func (f DelayFault) Fault() Fault {
	return Fault{At: f.At, Service: f.Service, Type: "network_delay (synthetic)"}
}

// injectDelay reads src whole and returns a source of its records with
// the delay applied, and how many calls it delayed. Spans are matched by
// span id within their trace (the replay's records are in start order,
// so the whole day is read first: a caller's span may come before or after
// its callee's in the files).
func injectDelay(src replay.Source, f DelayFault) (replay.Source, int, error) {
	var recs []replay.Record
	for {
		r, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, replay.ErrBadRecord) {
				continue
			}
			return nil, 0, err
		}
		recs = append(recs, r)
	}
	type spanKey struct {
		trace [16]byte
		span  [8]byte
	}
	index := map[spanKey]int{}
	for i := range recs {
		if recs[i].Signal == replay.Traces {
			index[spanKey{recs[i].TraceID, recs[i].SpanID}] = i
		}
	}
	calls := 0
	end := f.At.Add(f.For)
	for i := range recs {
		r := &recs[i]
		if r.Signal != replay.Traces || r.Service != f.Service || r.Time.Before(f.At) || !r.Time.Before(end) {
			continue
		}
		p, ok := index[spanKey{r.TraceID, r.ParentID}]
		if !ok || recs[p].Service == f.Service {
			continue // not a call into the service from another one
		}
		calls++
		// The caller waits: its span and every ancestor end later.
		for seen := 0; ok && seen < 64; seen++ {
			recs[p].End = recs[p].End.Add(f.Delay)
			p, ok = index[spanKey{recs[p].TraceID, recs[p].ParentID}]
		}
	}
	return replay.SliceSource(recs), calls, nil
}
