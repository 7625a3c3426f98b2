package nezhaeval

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/incident"
)

func TestDbg(t *testing.T) {
	path := os.Getenv("DBG_CACHE")
	if path == "" {
		t.Skip()
	}
	day, err := loadReplayed(path)
	if err != nil {
		t.Fatal(err)
	}
	faults, _ := ReadFaults("../../../shared/data/nezha/2023-01-29")
	cfg := incident.DefaultConfig()
	if v := os.Getenv("PRIOR"); v != "" {
		fmt.Sscan(v, &cfg.PriorRate)
	}
	if v := os.Getenv("PW"); v != "" {
		fmt.Sscan(v, &cfg.PriorBuckets)
	}
	as := day.Anomalies
	if os.Getenv("DBG_RULES") != "" {
		as = nil
		for i := range numSignals {
			as = append(as, day.RuleFlags[i]...)
		}
		sortAnomalies(as)
	}
	ev, err := Correlate(cfg, as, day.Edges)
	if err != nil {
		t.Fatal(err)
	}
	s := scoreIncidents(ev, faults, day.End.Sub(day.Start).Hours(), Window)
	fmt.Println(incidentLine(s, len(faults)))
	fi := 0
	for _, e := range ev {
		for fi < len(faults) && faults[fi].At.Before(e.At) {
			fmt.Printf("---- FAULT %s %s %s\n", faults[fi].At.Format("15:04:05"), faults[fi].Service, faults[fi].Type)
			fi++
		}
		if e.Type == incident.Updated && !e.Material && os.Getenv("DBG_ALL") == "" {
			continue
		}
		var ss []string
		for _, r := range e.Incident.Services {
			ss = append(ss, fmt.Sprintf("%s(%.0f)", r.Service, r.Score))
		}
		fmt.Printf("%s %-7s %s %s | %v\n", e.At.Format("15:04:05"), e.Type, e.Incident.ID[9:15], e.Change[:min(len(e.Change), 60)], ss)
	}
	_ = time.Second
}

func short(s string) string {
	s = strings.TrimPrefix(s, "ts-")
	s = strings.TrimSuffix(s, "-service")
	return s
}
