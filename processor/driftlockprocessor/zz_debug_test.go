package driftlockprocessor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

func TestZZDebugSpans(t *testing.T) {
	if os.Getenv("ZZ") == "" {
		t.Skip()
	}
	dir := sharedDir(t, filepath.Join("data", "nezha", "2023-01-29"))
	faults := readNezhaFaults(t, dir)
	recs := readNezhaSpans(t, dir)
	cfg := testConfig()
	if v := os.Getenv("LP"); v != "" {
		cfg.Detector.LatencyPValue, _ = strconv.ParseFloat(v, 64)
	}
	if v := os.Getenv("LR"); v != "" {
		cfg.Detector.LatencyMinRatio, _ = strconv.ParseFloat(v, 64)
	}
	if v := os.Getenv("LQ"); v != "" {
		cfg.Detector.LatencyQuantile, _ = strconv.ParseFloat(v, 64)
	}
	if v := os.Getenv("LW"); v != "" {
		cfg.Detector.LatencyWindow, _ = strconv.Atoi(v)
	}
	p := startTraces(t, cfg, consumertest.NewNop())
	flags := make([]bool, len(recs))
	numFlags := make([]bool, len(recs))
	reasons := map[string]int{}
	nearReasons := map[string]int{}
	inFault := func(r nezhaRec) int {
		for i, f := range faults {
			if r.service == f.service && r.ns >= f.at.UnixNano() && r.ns < f.at.Add(nezhaEvalWindow).UnixNano() {
				return i
			}
		}
		return -1
	}
	perFault := map[int][]string{}
	for start := 0; start < len(recs); start += 500 {
		end := min(start+500, len(recs))
		td, idx := nezhaTraces(recs[start:end])
		require.NoError(t, p.ConsumeTraces(context.Background(), td))
		for i, sp := range idx {
			v, ok := sp.Attributes().Get(attrAnomaly)
			if ok && v.Bool() {
				flags[start+i] = true
				reason := "text"
				if rs, ok := sp.Attributes().Get("driftlock.reason"); ok {
					reason = rs.AsString()
					numFlags[start+i] = reason == "latency" || reason == "edge_latency" || reason == "errors"
				}
				if k := inFault(recs[start+i]); k >= 0 {
					nearReasons[reason]++
					ex := ""
					if v, ok := sp.Attributes().Get(attrExplanation); ok {
						ex = v.AsString()
					}
					perFault[k] = append(perFault[k], reason+" "+recs[start+i].text+" "+ex)
				} else {
					reasons[reason]++
					if reason != "text" || os.Getenv("ZZT") != "" {
						ex := ""
						if v, ok := sp.Attributes().Get(attrExplanation); ok {
							ex = v.AsString()
						}
						fmt.Println("FALSE", recs[start+i].ns/1e9, recs[start+i].service, reason, recs[start+i].text, ex)
					}
				}
			}
		}
	}
	fmt.Println("false by reason", reasons, "near by reason", nearReasons)
	keys := []int{}
	for k := range perFault {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		fmt.Println(faults[k].at, faults[k].service, faults[k].kind, len(perFault[k]))
		for i, l := range perFault[k] {
			if i < 3 {
				fmt.Println("   ", l)
			}
		}
	}
	logNezhaEval(t, "traces", faults, recs, flags)
	logNezhaEval(t, "traces-numeric-only", faults, recs, numFlags)
}
