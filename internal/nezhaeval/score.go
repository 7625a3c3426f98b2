package nezhaeval

import (
	"sort"
	"time"

	"github.com/driftlock/driftlock/internal/incident"
)

// SignalScore is the record-level score of one signal's flags.
type SignalScore struct {
	Signal   string
	Detected int     // faults whose service has a flag within the window
	Chance   float64 // what flagging a random other service would score
	// FalseFlags are flags outside every fault's faulted-service window;
	// Hours the hours in which the signal has records.
	FalseFlags int
	Flags      int
	Hours      float64
	// FirstFlag per fault: the first flag of the faulted service in the
	// window (zero when none).
	FirstFlag []time.Time
}

// FalsePerHour is FalseFlags / Hours.
func (s SignalScore) FalsePerHour() float64 {
	if s.Hours == 0 {
		return 0
	}
	return float64(s.FalseFlags) / s.Hours
}

// scoreFlags scores flags of one signal against the faults: a fault is
// detected when its service has a flag in [inject, inject+window); chance
// is, summed over faults, the share of the other services (those with
// records of the signal) that have a flag in the same window; a flag is
// false when it is outside every fault's faulted-service window.
func scoreFlags(sig int, flags []incident.Anomaly, faults []Fault, act *activity, window time.Duration) SignalScore {
	s := SignalScore{Signal: signalNames[sig], Flags: len(flags), Hours: act.hours(sig), FirstFlag: make([]time.Time, len(faults))}
	inWindow := func(f Fault, t time.Time) bool { return !t.Before(f.At) && t.Before(f.At.Add(window)) }
	for _, a := range flags {
		near := false
		for i, f := range faults {
			if a.Service == f.Service && inWindow(f, a.ObservedAt) {
				near = true
				if s.FirstFlag[i].IsZero() || a.ObservedAt.Before(s.FirstFlag[i]) {
					s.FirstFlag[i] = a.ObservedAt
				}
			}
		}
		if !near {
			s.FalseFlags++
		}
	}
	for i, f := range faults {
		if !s.FirstFlag[i].IsZero() {
			s.Detected++
		}
		others := 0
		for svc := range act.services[sig] {
			if svc != f.Service {
				others++
			}
		}
		if others == 0 {
			continue
		}
		hit := map[string]bool{}
		for _, a := range flags {
			if a.Service != f.Service && inWindow(f, a.ObservedAt) {
				hit[a.Service] = true
			}
		}
		s.Chance += float64(len(hit)) / float64(others)
	}
	return s
}

// FaultResult is how the incidents did on one fault.
type FaultResult struct {
	Fault    Fault
	Detected bool
	Delay    time.Duration // from inject_time to the incident event
	Rank     int           // of the faulted service there (0: not detected)
	Incident string        // the incident's id
	Title    string
	Leader   string
	// Early is set on a fault not detected whose service an incident
	// gained (opened with it, or ranked it anew) in the minute before
	// inject_time: the records show the fault before the fault list's
	// clock does. Reported, not counted.
	Early time.Duration
}

// IncidentScore is the incident-level score.
type IncidentScore struct {
	Faults         []FaultResult
	Detected       int
	MedianDelay    time.Duration
	Incidents      int
	FalseIncidents int
	Hours          float64 // the hours the day's telemetry spans
	Top1, Top3     int
}

// FalsePerHour is FalseIncidents / Hours.
func (s IncidentScore) FalsePerHour() float64 {
	if s.Hours == 0 {
		return 0
	}
	return float64(s.FalseIncidents) / s.Hours
}

// scoreIncidents scores the correlator's events against the faults. A
// fault is detected when, within window after inject_time, an incident
// opens whose ranked services include the faulted service, or an incident
// already open gains it as a new ranked service; its rank there is the
// root-cause rank. An incident opened with no fault in the window before
// it is false.
func scoreIncidents(events []incident.Event, faults []Fault, hours float64, window time.Duration) IncidentScore {
	s := IncidentScore{Hours: hours, Faults: make([]FaultResult, len(faults))}
	for i, f := range faults {
		s.Faults[i].Fault = f
	}
	known := map[string]map[string]bool{} // incident -> services ranked so far
	for _, ev := range events {
		inc := &ev.Incident
		prev := known[inc.ID]
		if prev == nil {
			prev = map[string]bool{}
			known[inc.ID] = prev
		}
		if ev.Type == incident.Opened {
			s.Incidents++
			falseAlarm := true
			for _, f := range faults {
				if !inc.Opened.Before(f.At) && inc.Opened.Before(f.At.Add(window)) {
					falseAlarm = false
				}
			}
			if falseAlarm {
				s.FalseIncidents++
			}
		}
		if ev.Type == incident.Opened || ev.Type == incident.Updated {
			at := ev.At
			if ev.Type == incident.Opened {
				at = inc.Opened
			}
			for i, f := range faults {
				r := &s.Faults[i]
				if d := f.At.Sub(at); d > 0 && d <= time.Minute && !prev[f.Service] && inc.Rank(f.Service) > 0 && r.Early == 0 {
					r.Early = d
				}
				if r.Detected || prev[f.Service] || at.Before(f.At) || !at.Before(f.At.Add(window)) {
					continue
				}
				if k := inc.Rank(f.Service); k > 0 {
					r.Detected, r.Delay, r.Rank = true, at.Sub(f.At), k
					r.Incident, r.Title, r.Leader = inc.ID, inc.Title, inc.Leader()
				}
			}
		}
		for _, rs := range inc.Services {
			prev[rs.Service] = true
		}
	}
	for i := range s.Faults {
		if s.Faults[i].Detected {
			s.Faults[i].Early = 0
		}
	}
	var delays []time.Duration
	for _, r := range s.Faults {
		if !r.Detected {
			continue
		}
		s.Detected++
		delays = append(delays, r.Delay)
		if r.Rank == 1 {
			s.Top1++
		}
		if r.Rank <= 3 {
			s.Top3++
		}
	}
	if len(delays) > 0 {
		sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
		n := len(delays)
		if n%2 == 1 {
			s.MedianDelay = delays[n/2]
		} else {
			s.MedianDelay = (delays[n/2-1] + delays[n/2]) / 2
		}
	}
	return s
}

// ScoreIncidents scores incident events against faults with the eval's
// criteria and Window: for callers that hold the events themselves (the
// demo's summary scores the incidents `driftlock serve` stored).
func ScoreIncidents(events []incident.Event, faults []Fault, hours float64) IncidentScore {
	return scoreIncidents(events, faults, hours, Window)
}
