package driftlockexporter

import "testing"

// BenchmarkLogsConvert is the CPU half of an export: 1,000 flagged records
// turned into rows and their JSON documents, without the database.
func BenchmarkLogsConvert(b *testing.B) {
	w := goldenWriter(true)
	ld := flaggedLogs(0, 1000, all)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if rows := w.logsBatch(ld, baseTime).rows; len(rows) != 1000 || rows[0].RecordJSON == "" {
			b.Fatal("conversion lost rows")
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "rows/s")
}
