// Package nezhaeval judges the whole product on a labeled Nezha day: the
// day's logs, spans and pod metrics are replayed through the driftlock
// processor (its real factory and default config, in process, no
// database), the flagged records go through the incident correlator, and
// both are scored against fault_list.json, beside trivial rules run over
// the same records.
package nezhaeval

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/replay"
	"github.com/driftlock/driftlock/processor/driftlockprocessor"
)

// Window is how long after inject_time a fault counts as detected.
const Window = 5 * time.Minute

// Options control a run.
type Options struct {
	// Processor is the processor's config; nil means its defaults.
	Processor *driftlockprocessor.Config
	// Incident is the correlator's config; zero means its defaults.
	Incident incident.Config
	// Signals selects the archives replayed (default: all three).
	Signals *replay.NezhaSignals
	// Cache, when set, is a file holding the replay's outcome (the
	// processor's flags, edges, rules' flags): read when present, written
	// otherwise, to iterate on the correlator without replaying the day.
	Cache string
	// Limit stops the replay after this many records (0: all).
	Limit int
	// Delay, when set, injects a synthetic network delay into the day's
	// spans (delay.go) and adds it to the fault list.
	Delay *DelayFault
	// Warn receives skipped-row notices and Progress replay progress
	// (nil: discarded).
	Warn, Progress io.Writer
}

// Report is the outcome of a run.
type Report struct {
	Dir     string // the folder, and the injected delay if any
	Delayed int    // calls the injected delay delayed
	Faults  []Fault
	Records replay.Stats
	Start   time.Time // first and last record
	End     time.Time
	// Anomalies are the processor's flags as the store would hold them,
	// in observed-time order; Edges the call graph learned from spans.
	Anomalies []incident.Anomaly
	Edges     []incident.Edge
	Events    []incident.Event

	Signals   [numSignals]SignalScore
	Incidents IncidentScore
	// Rules are the trivial rules' record-level scores (logs, traces,
	// metrics) and RuleIncidents their flags through the same correlator.
	Rules         [numSignals]SignalScore
	RuleIncidents IncidentScore
	// EarlyIncidents scores the incidents as Incidents does, but counting
	// from LabelLag before each inject_time: in many faults the records
	// show the fault before the fault list's clock does (ErrorOnset). A
	// check of the definition, printed beside the official line.
	EarlyIncidents IncidentScore
	// ErrorOnset per fault: the faulted service's first WARN-or-worse log
	// record from ErrorLookback before inject_time to Window after it
	// (zero when none). Many faults' errors begin before the fault list's
	// inject_time: an incident opened on them counts as neither.
	ErrorOnset []time.Time
	Elapsed    time.Duration
}

// ErrorLookback is how far before inject_time the per-fault table looks
// for the faulted service's first error.
const ErrorLookback = 3 * time.Minute

// LabelLag is how much earlier than inject_time EarlyIncidents counts.
const LabelLag = 2 * time.Minute

// shifted returns faults with their inject times moved by d.
func shifted(faults []Fault, d time.Duration) []Fault {
	out := make([]Fault, len(faults))
	for i, f := range faults {
		f.At = f.At.Add(d)
		out[i] = f
	}
	return out
}

// Hours is the span of the day's telemetry in hours.
func (r *Report) Hours() float64 { return r.End.Sub(r.Start).Hours() }

// Run replays dir (log.tgz, trace.tgz, metric.tgz, fault_list.json) and
// scores it.
func Run(ctx context.Context, dir string, opt Options) (*Report, error) {
	started := time.Now()
	faults, err := ReadFaults(dir)
	if err != nil {
		return nil, err
	}
	replayed := dir // what the cache must have replayed
	if opt.Delay != nil {
		faults = append(faults, opt.Delay.Fault())
		sort.SliceStable(faults, func(i, j int) bool { return faults[i].At.Before(faults[j].At) })
		replayed = fmt.Sprintf("%s with a delay of %v into %s at %s for %v", dir, opt.Delay.Delay, opt.Delay.Service,
			opt.Delay.At.Format(time.RFC3339), opt.Delay.For)
	}
	icfg := opt.Incident
	if icfg == (incident.Config{}) {
		icfg = incident.DefaultConfig()
	}
	if err := icfg.Validate(); err != nil {
		return nil, err
	}
	var day *Replayed
	if opt.Cache != "" {
		// A missing cache, or one of another folder, is rebuilt. The cache
		// does not know the processor's code: delete it when that changes.
		if day, _ = loadReplayed(opt.Cache); day != nil && day.Dir != replayed {
			day = nil
		}
	}
	if day == nil {
		if day, err = replayDay(ctx, dir, replayed, opt); err != nil {
			return nil, err
		}
		if opt.Cache != "" {
			if err := day.save(opt.Cache); err != nil {
				return nil, err
			}
		}
	}
	act := day.activity()
	rep := &Report{Dir: day.Dir, Delayed: day.Delayed, Faults: faults, Records: day.Stats, Start: day.Start, End: day.End,
		Anomalies: day.Anomalies, Edges: day.Edges}
	var bySignal [numSignals][]incident.Anomaly
	for _, a := range rep.Anomalies {
		i := signalIndexOf(a.Signal)
		bySignal[i] = append(bySignal[i], a)
	}
	for i := range numSignals {
		rep.Signals[i] = scoreFlags(i, bySignal[i], faults, act, Window)
		rep.Rules[i] = scoreFlags(i, day.RuleFlags[i], faults, act, Window)
	}
	rep.Events, err = Correlate(icfg, rep.Anomalies, rep.Edges)
	if err != nil {
		return nil, err
	}
	rep.Incidents = scoreIncidents(rep.Events, faults, rep.Hours(), Window)
	rep.EarlyIncidents = scoreIncidents(rep.Events, shifted(faults, -LabelLag), rep.Hours(), Window+LabelLag)
	if rep.EarlyIncidents.Detected > 0 {
		rep.EarlyIncidents.MedianDelay -= LabelLag // delays from inject_time, as the official line's
	}
	rep.ErrorOnset = make([]time.Time, len(faults))
	for i, f := range faults {
		rep.ErrorOnset[i] = act.errorOnset(f.Service, f.At.Add(-ErrorLookback), f.At.Add(Window))
	}

	var ruleFlags []incident.Anomaly
	for i := range numSignals {
		ruleFlags = append(ruleFlags, day.RuleFlags[i]...)
	}
	sortAnomalies(ruleFlags)
	ruleEvents, err := Correlate(icfg, ruleFlags, rep.Edges)
	if err != nil {
		return nil, err
	}
	rep.RuleIncidents = scoreIncidents(ruleEvents, faults, rep.Hours(), Window)
	rep.Elapsed = time.Since(started)
	return rep, nil
}

// Replayed is what the replay of a day yields, before any scoring: the
// processor's flags as the store would hold them (observed-time order, ids
// from 1), the call graph learned from spans, the rules' flags, and where
// each signal has data.
type Replayed struct {
	Dir        string // the folder, and the injected delay if any
	Delayed    int    // calls the injected delay delayed
	Stats      replay.Stats
	Start, End time.Time
	Anomalies  []incident.Anomaly
	Edges      []incident.Edge
	RuleFlags  [numSignals][]incident.Anomaly
	Services   [numSignals][]string
	Minutes    [numSignals][]int64
	// Errors holds, per service, the times (unix ns) of its WARN-or-worse
	// log records.
	Errors map[string][]int64
}

func (d *Replayed) activity() *activity {
	a := newActivity()
	a.first, a.last = d.Start, d.End
	for s := range numSignals {
		for _, svc := range d.Services[s] {
			a.services[s][svc] = true
		}
		for _, m := range d.Minutes[s] {
			a.minutes[s][m] = true
		}
	}
	for svc, ts := range d.Errors {
		a.errors[svc] = ts
	}
	return &a
}

func replayDay(ctx context.Context, dir, replayed string, opt Options) (*Replayed, error) {
	cfg := opt.Processor
	if cfg == nil {
		cfg = driftlockprocessor.NewFactory().CreateDefaultConfig().(*driftlockprocessor.Config)
	}
	sig := replay.AllSignals
	if opt.Signals != nil {
		sig = *opt.Signals
	}
	warn := opt.Warn
	if warn == nil {
		warn = io.Discard
	}
	src, err := replay.OpenNezha(dir, sig, warn)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	var from replay.Source = src
	delayed := 0
	if opt.Delay != nil {
		if from, delayed, err = injectDelay(src, *opt.Delay); err != nil {
			return nil, err
		}
		if delayed == 0 {
			return nil, fmt.Errorf("delay fault: no call into %s starts in the %v from %s", opt.Delay.Service, opt.Delay.For, opt.Delay.At.Format(time.RFC3339))
		}
	}
	p, err := newPipeline(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("processor: %w", err)
	}
	st, err := replay.Run(ctx, from, senderAdapter{p}, replay.Options{Limit: opt.Limit, Progress: opt.Progress, ProgressEvery: 10 * time.Second})
	if cerr := p.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("replay %s: %w", dir, err)
	}
	if st.Records() == 0 {
		return nil, fmt.Errorf("replay %s: no records", dir)
	}
	p.rules.finish()
	day := &Replayed{Dir: replayed, Delayed: delayed, Stats: st, Start: p.activity.first, End: p.activity.last, Anomalies: p.anomalies}
	sortAnomalies(day.Anomalies)
	for i := range day.Anomalies {
		day.Anomalies[i].ID = int64(i + 1)
	}
	day.Edges = p.learnedEdges()
	sort.Slice(day.Edges, func(i, j int) bool {
		a, b := day.Edges[i], day.Edges[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		if a.Caller != b.Caller {
			return a.Caller < b.Caller
		}
		return a.Callee < b.Callee
	})
	day.Errors = p.activity.errors
	for s := range numSignals {
		day.RuleFlags[s] = p.rules.flags[s]
		sortAnomalies(day.RuleFlags[s])
		day.Services[s] = sortedKeys(p.activity.services[s])
		for m := range p.activity.minutes[s] {
			day.Minutes[s] = append(day.Minutes[s], m)
		}
		slices.Sort(day.Minutes[s])
	}
	return day, nil
}

// cacheVersion changes when Replayed does.
const cacheVersion = 3

func (d *Replayed) save(path string) error {
	b, err := json.Marshal(struct {
		Version int
		Day     *Replayed
	}{cacheVersion, d})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func loadReplayed(path string) (*Replayed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c struct {
		Version int
		Day     *Replayed
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Version != cacheVersion || c.Day == nil {
		return nil, fmt.Errorf("%s: not a replay cache of this version", path)
	}
	return c.Day, nil
}

// Correlate runs a fresh correlator over anomalies (in observed-time
// order) with the call-graph edges fed as their first sighting comes, and
// returns every event.
func Correlate(cfg incident.Config, anomalies []incident.Anomaly, edges []incident.Edge) ([]incident.Event, error) {
	c, err := incident.New(cfg)
	if err != nil {
		return nil, err
	}
	var events []incident.Event
	e := 0
	for _, a := range anomalies {
		for e < len(edges) && !edges[e].At.After(a.ObservedAt) {
			c.AddEdge(edges[e].Caller, edges[e].Callee, edges[e].At)
			e++
		}
		ev, err := c.Add(a)
		if err != nil {
			return nil, err
		}
		events = append(events, ev...)
	}
	return append(events, c.Flush()...), nil
}

func sortAnomalies(as []incident.Anomaly) {
	sort.SliceStable(as, func(i, j int) bool { return as[i].ObservedAt.Before(as[j].ObservedAt) })
}

func signalIndexOf(s string) int {
	for i, n := range signalNames {
		if n == s {
			return i
		}
	}
	return sigLogs
}

// CheckDir reports a clear error when dir does not look like a Nezha day.
func CheckDir(dir string) error {
	for _, f := range []string{"fault_list.json", "log.tgz", "trace.tgz", "metric.tgz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("%s is not a Nezha day folder: %w", dir, err)
		}
	}
	return nil
}
