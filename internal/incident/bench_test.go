package incident

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkCorrelator feeds a day-like stream: 40 services, three signals,
// routine flags at mixed rates plus occasional bursts, 200 anomalies per
// observed second. The bar is 50,000 anomalies/s on one core.
func BenchmarkCorrelator(b *testing.B) {
	as := benchAnomalies()
	b.ReportAllocs()
	b.ResetTimer()
	total := 0
	for b.Loop() {
		c, _ := New(DefaultConfig())
		for s := range 40 {
			c.AddEdge(fmt.Sprintf("svc-%02d", s), fmt.Sprintf("svc-%02d", (s+1)%40), t0)
		}
		for i := range as {
			if _, err := c.Add(as[i]); err != nil {
				b.Fatal(err)
			}
		}
		c.Flush()
		total += len(as)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "anomalies/s")
}

// BenchmarkBaselineCount is the least any grouping does, the baseline of
// BenchmarkCorrelator in the same run: validate each anomaly and count it
// per service, signal and minute in a map.
func BenchmarkBaselineCount(b *testing.B) {
	as := benchAnomalies()
	type key struct {
		service, signal string
		minute          int64
	}
	b.ReportAllocs()
	b.ResetTimer()
	total := 0
	for b.Loop() {
		counts := map[key]int{}
		for i := range as {
			if err := as[i].validate(); err != nil {
				b.Fatal(err)
			}
			counts[key{as[i].Service, as[i].Signal, as[i].ObservedAt.Unix() / 60}]++
		}
		total += len(as)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "anomalies/s")
}

func benchAnomalies() []Anomaly {
	rng := rand.New(rand.NewPCG(9, 10))
	const n = 200000
	as := make([]Anomaly, n)
	sigs := []string{SignalLogs, SignalTraces, SignalMetrics}
	reasons := []string{ReasonNovel, ReasonErrors, ReasonLatency, ReasonValue}
	for i := range as {
		svc := rng.IntN(40)
		if rng.IntN(50) == 0 {
			svc = 7 // a troubled service
		}
		as[i] = Anomaly{ID: int64(i + 1), Signal: sigs[rng.IntN(3)], Service: fmt.Sprintf("svc-%02d", svc),
			ObservedAt: t0.Add(time.Duration(i) * 5 * time.Millisecond), Reason: reasons[rng.IntN(4)],
			Kind: fmt.Sprintf("k%d", rng.IntN(30)), Summary: "line"}
	}
	return as
}
