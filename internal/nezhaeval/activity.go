package nezhaeval

import (
	"time"
)

// Signal indices of the per-signal tables.
const (
	sigLogs = iota
	sigTraces
	sigMetrics
	numSignals
)

var signalNames = [numSignals]string{"logs", "traces", "metrics"}

// activity records where each signal has data: the services that send it
// (the "other services" of the chance score) and the minutes in which it
// has records (the hours of the false-flag rate), plus the day's span and
// when each service logged WARN-or-worse records (to show, per fault, when
// its errors began relative to the fault list's inject_time).
type activity struct {
	services    [numSignals]map[string]bool
	minutes     [numSignals]map[int64]bool
	first, last time.Time
	errors      map[string][]int64 // service -> unix ns of its WARN+ log records
}

func newActivity() activity {
	var a activity
	for i := range numSignals {
		a.services[i] = map[string]bool{}
		a.minutes[i] = map[int64]bool{}
	}
	a.errors = map[string][]int64{}
	return a
}

// severe records a WARN-or-worse log record of service at t.
func (a *activity) severe(service string, t time.Time) {
	a.errors[service] = append(a.errors[service], t.UnixNano())
}

// errorOnset is the first WARN-or-worse record of service in [from, to),
// zero when none.
func (a *activity) errorOnset(service string, from, to time.Time) time.Time {
	var first int64
	for _, ns := range a.errors[service] {
		if ns >= from.UnixNano() && ns < to.UnixNano() && (first == 0 || ns < first) {
			first = ns
		}
	}
	if first == 0 {
		return time.Time{}
	}
	return time.Unix(0, first).UTC()
}

func (a *activity) see(sig int, service string, t time.Time) {
	a.services[sig][service] = true
	a.minutes[sig][t.Unix()/60] = true
	if a.first.IsZero() || t.Before(a.first) {
		a.first = t
	}
	if t.After(a.last) {
		a.last = t
	}
}

// hours is the number of hours in which the signal has records (minutes
// with records / 60).
func (a *activity) hours(sig int) float64 { return float64(len(a.minutes[sig])) / 60 }
