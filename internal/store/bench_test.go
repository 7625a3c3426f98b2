package store_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// BenchmarkInsert compares InsertAnomalies with a bare pgx CopyFrom of the
// same rows into the same table, in batches of 1,000 (run with -cpu 1).
// Compare the rows/s metrics of the two sub-benchmarks: the target is
// insert >= 50% of bare_copy and >= 20,000 rows/s.
func BenchmarkInsert(b *testing.B) {
	const batch = 1000
	tmpl := sampleRows(batch, "bench/stream")
	b.Run("bare_copy", func(b *testing.B) {
		s, _ := storetest.Open(b)
		ctx := context.Background()
		cols := []string{"fingerprint", "signal", "stream", "service", "observed_at", "detected_at",
			"score", "p_value", "ncd", "compression_ratio", "entropy", "severity", "summary", "explanation",
			"trace_id", "span_id", "attributes", "resource", "record"}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			src := make([][]any, batch)
			for j := range tmpl {
				a := &tmpl[j]
				src[j] = []any{strconv.Itoa(i) + "-" + strconv.Itoa(j), a.Signal, a.Stream, a.Service,
					a.ObservedAt, a.ObservedAt, a.Score, a.PValue, a.NCD, a.CompressionRatio, a.Entropy,
					a.Severity, a.Summary, a.Explanation, a.TraceID, a.SpanID, a.Attributes, a.Resource, a.Record}
			}
			n, err := storetest.Pool(s).CopyFrom(ctx, pgx.Identifier{"anomalies"}, cols, pgx.CopyFromRows(src))
			if err != nil || n != batch {
				b.Fatalf("copy: %d %v", n, err)
			}
		}
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
	})
	// The two insert paths, measured alike: fresh fingerprints every batch.
	for _, path := range []struct {
		name   string
		insert func(*store.Store, context.Context, []store.Anomaly) (int, error)
	}{
		{"copy_staging", store.InsertAnomaliesCopy},
		{"insert_anomalies", (*store.Store).InsertAnomalies},
	} {
		b.Run(path.name, func(b *testing.B) {
			s, _ := storetest.Open(b)
			ctx := context.Background()
			rows := make([]store.Anomaly, batch)
			copy(rows, tmpl)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range rows {
					rows[j].Fingerprint = strconv.Itoa(i) + "-" + strconv.Itoa(j)
				}
				n, err := path.insert(s, ctx, rows)
				if err != nil || n != batch {
					b.Fatalf("insert: %d %v", n, err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
