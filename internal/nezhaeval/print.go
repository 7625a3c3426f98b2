package nezhaeval

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/driftlock/driftlock/internal/incident"
)

// Print writes the per-fault table, the rules' rows and the references,
// then, last, the machine-readable lines:
//
//	nezha signal=logs faults=D/N chance=C false_flags_per_hour=X
//	nezha signal=traces ...
//	nezha signal=metrics ...
//	nezha faults=D/N median_delay_s=S incidents=I false_incidents_per_hour=F rca_top1=A/N rca_top3=B/N
func (r *Report) Print(w io.Writer) {
	n := len(r.Faults)
	fmt.Fprintf(w, "Nezha day %s: %d faults; telemetry %s .. %s (%.1f h); %d log records, %d spans, %d metric scrapes; %d anomalies, %d call-graph edges; %s\n",
		r.Dir, n, r.Start.Format("2006-01-02 15:04:05"), r.End.Format("15:04:05"), r.Hours(),
		r.Records.Logs, r.Records.Traces, r.Records.Metrics, len(r.Anomalies), len(r.Edges), r.Elapsed.Round(time.Second))
	if r.Delayed > 0 {
		fmt.Fprintf(w, "synthetic network delay: %d calls delayed (their callers' spans and every ancestor end later; logs and metrics unchanged)\n", r.Delayed)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%-19s %-15s %-30s %-8s %7s %4s  %-5s %-5s %-5s  %-6s  %s\n", "inject_time", "type", "service", "detected", "delay", "rank", "logs", "spans", "metr", "errors", "incident (leader)")
	for i, f := range r.Incidents.Faults {
		det, delay, rank := "no", "-", "-"
		if f.Detected {
			det, delay, rank = "yes", fmt.Sprintf("%.0fs", f.Delay.Seconds()), fmt.Sprint(f.Rank)
		}
		var sig [numSignals]string
		for s := range numSignals {
			sig[s] = "-"
			if t := r.Signals[s].FirstFlag[i]; !t.IsZero() {
				sig[s] = fmt.Sprintf("%.0fs", t.Sub(f.Fault.At).Seconds())
			}
		}
		errs := "-"
		if i < len(r.ErrorOnset) && !r.ErrorOnset[i].IsZero() {
			errs = fmt.Sprintf("%+.0fs", r.ErrorOnset[i].Sub(f.Fault.At).Seconds())
		}
		inc := ""
		switch {
		case f.Detected:
			inc = f.Incident + " (" + f.Leader + ")"
		case f.Early > 0:
			inc = fmt.Sprintf("(an incident gained it %.0fs before inject_time)", f.Early.Seconds())
		}
		fmt.Fprintf(w, "%-19s %-15s %-30s %-8s %7s %4s  %-5s %-5s %-5s  %-6s  %s\n", f.Fault.At.Format("2006-01-02 15:04:05"), f.Fault.Type,
			f.Fault.Service, det, delay, rank, sig[0], sig[1], sig[2], errs, inc)
	}
	before := 0
	for i, t := range r.ErrorOnset {
		if !t.IsZero() && t.Before(r.Faults[i].At) {
			before++
		}
	}
	fmt.Fprintf(w, "logs, spans, metr: the faulted service's first flag of each signal in [inject_time, +%s); errors: its first WARN-or-worse log record in [-%s, +%s)\n",
		Window, ErrorLookback, Window)
	fmt.Fprintf(w, "faults whose service logged errors before inject_time (in the %s before): %d\n", ErrorLookback, before)
	early := 0
	for _, f := range r.Incidents.Faults {
		if f.Early > 0 {
			early++
		}
	}
	fmt.Fprintf(w, "faults missed only because an incident gained their service in the minute before inject_time: %d\n", early)
	fmt.Fprintf(w, "counting from %s before inject_time (a check of the fault list's clock, not the official line): %s\n",
		LabelLag, incidentLine(r.EarlyIncidents, n))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Incidents (opened):")
	for _, ev := range r.Events {
		if ev.Type == incident.Opened {
			fmt.Fprintf(w, "  %s  %s  [%s]\n", ev.Incident.Opened.Format("15:04:05"), cut(ev.Incident.Title, 110), leaders(ev.Incident.Services))
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Trivial rules over the same records (issue 12), scored the same way:")
	for s := range numSignals {
		fmt.Fprintf(w, "rule=%s signal=%s faults=%d/%d chance=%.1f false_flags_per_hour=%.0f\n", ruleNames[s], signalNames[s],
			r.Rules[s].Detected, n, r.Rules[s].Chance, r.Rules[s].FalsePerHour())
	}
	fmt.Fprintf(w, "rules+correlator %s\n", incidentLine(r.RuleIncidents, n))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "References: Nezha (IntelligentDDS/Nezha, published) RCA top-1 86.7%, top-3 97.8% on these TrainTicket faults,")
	fmt.Fprintln(w, "  measured against a fault-free reference period; a one-hour unsupervised prototype detected 8/28 with ~6 false episodes/hour.")
	fmt.Fprintln(w)
	for s := range numSignals {
		fmt.Fprintf(w, "nezha signal=%s faults=%d/%d chance=%.1f false_flags_per_hour=%.0f\n", signalNames[s],
			r.Signals[s].Detected, n, r.Signals[s].Chance, r.Signals[s].FalsePerHour())
	}
	fmt.Fprintf(w, "nezha %s\n", incidentLine(r.Incidents, n))
}

func incidentLine(s IncidentScore, n int) string {
	return fmt.Sprintf("faults=%d/%d median_delay_s=%.0f incidents=%d false_incidents_per_hour=%.2f rca_top1=%d/%d rca_top3=%d/%d",
		s.Detected, n, s.MedianDelay.Seconds(), s.Incidents, s.FalsePerHour(), s.Top1, n, s.Top3, n)
}

// leaders names the first three ranked services.
func leaders(rs []incident.RankedService) string {
	var names []string
	for i, r := range rs {
		if i == 3 {
			names = append(names, fmt.Sprintf("+%d", len(rs)-3))
			break
		}
		names = append(names, r.Service)
	}
	return strings.Join(names, ", ")
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n-3] + "..."
	}
	return s
}

// Line is the score in the form of the eval's last line (without "nezha "):
// faults=D/N median_delay_s=S incidents=I false_incidents_per_hour=F rca_top1=A/N rca_top3=B/N.
func (s IncidentScore) Line() string { return incidentLine(s, len(s.Faults)) }
