package driftlockprocessor

import (
	"testing"
	"time"
)

// nezhaEvalWindow is the issue-13 definition of "detected": the faulted
// service has a flag of the signal within 5 minutes after inject_time.
const nezhaEvalWindow = 5 * time.Minute

// nezhaEval computes the `nezha signal=... faults=D/N chance=C
// false_flags_per_hour=X` line of `driftlock eval nezha` (issue 13) from
// per-record flags, so the processor's tests report the same figures:
//   - faults: faults whose service has a flag in [inject, inject+5m);
//   - chance: per fault, the share of the other services (those with
//     records of the signal) that have a flag in that window, summed;
//   - false flags per hour: flags outside every fault's faulted-service
//     window, divided by the hours (distinct minutes / 60) with records.
func nezhaEval(signal string, faults []nezhaFault, recs []nezhaRec, flags []bool) (detected int, chance, falsePerHour float64) {
	services := map[string]bool{}
	minutes := map[int64]bool{}
	for _, r := range recs {
		services[r.service] = true
		minutes[r.ns/60e9] = true
	}
	inFault := func(r nezhaRec) bool {
		for _, f := range faults {
			if r.service == f.service && r.ns >= f.at.UnixNano() && r.ns < f.at.Add(nezhaEvalWindow).UnixNano() {
				return true
			}
		}
		return false
	}
	falseFlags := 0
	for i, r := range recs {
		if flags[i] && !inFault(r) {
			falseFlags++
		}
	}
	for _, f := range faults {
		lo, hi := f.at.UnixNano(), f.at.Add(nezhaEvalWindow).UnixNano()
		flagged := map[string]bool{}
		for i, r := range recs {
			if flags[i] && r.ns >= lo && r.ns < hi {
				flagged[r.service] = true
			}
		}
		if flagged[f.service] {
			detected++
		}
		others, otherFlagged := 0, 0
		for s := range services {
			if s == f.service {
				continue
			}
			others++
			if flagged[s] {
				otherFlagged++
			}
		}
		if others > 0 {
			chance += float64(otherFlagged) / float64(others)
		}
	}
	hours := float64(len(minutes)) / 60
	if hours > 0 {
		falsePerHour = float64(falseFlags) / hours
	}
	return detected, chance, falsePerHour
}

func logNezhaEval(t *testing.T, signal string, faults []nezhaFault, recs []nezhaRec, flags []bool) {
	d, chance, fph := nezhaEval(signal, faults, recs, flags)
	t.Logf("nezha signal=%s faults=%d/%d chance=%.1f false_flags_per_hour=%.0f (beyond chance %.1f)",
		signal, d, len(faults), chance, fph, float64(d)-chance)
}
