package driftlockexporter

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// BenchmarkLogsExport measures flagged log records written per second
// through the exporter (pdata -> rows -> InsertAnomalies, batches of
// 1,000), beside a bare pgx CopyFrom of the same rows in the same run.
// Run with -cpu 1. Skips without DRIFTLOCK_TEST_DSN.
func BenchmarkLogsExport(b *testing.B) {
	const batchSize = 1000
	b.Run("bare_copy", func(b *testing.B) {
		st, _ := openDBB(b)
		w := goldenWriter(true)
		rows := w.logsBatch(flaggedLogs(0, batchSize, all), baseTime).rows
		cols := []string{"fingerprint", "signal", "stream", "service", "observed_at", "detected_at",
			"score", "p_value", "ncd", "compression_ratio", "entropy", "severity", "summary", "explanation",
			"trace_id", "span_id", "attributes", "resource", "record"}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			src := make([][]any, len(rows))
			for j := range rows {
				a := &rows[j]
				src[j] = []any{a.Fingerprint + "-" + itoa(i), a.Signal, a.Stream, a.Service, a.ObservedAt,
					a.DetectedAt, a.Score, a.PValue, a.NCD, a.CompressionRatio, a.Entropy, a.Severity,
					a.Summary, a.Explanation, a.TraceID, a.SpanID, a.AttributesJSON, a.ResourceJSON, a.RecordJSON}
			}
			if n, err := storetest.Pool(st).CopyFrom(context.Background(), pgx.Identifier{"anomalies"}, cols, pgx.CopyFromRows(src)); err != nil || n != batchSize {
				b.Fatalf("copy %d: %v", n, err)
			}
		}
		b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("insert_anomalies", func(b *testing.B) {
		st, _ := openDBB(b)
		w := goldenWriter(true)
		tmpl := w.logsBatch(flaggedLogs(0, batchSize, all), baseTime).rows
		rows := make([]store.Anomaly, len(tmpl))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			copy(rows, tmpl)
			for j := range rows {
				rows[j].Fingerprint += "-" + itoa(i)
			}
			if n, err := st.InsertAnomalies(context.Background(), rows); err != nil || n != batchSize {
				b.Fatalf("insert %d: %v", n, err)
			}
		}
		b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("exporter", func(b *testing.B) {
		_, dsn := openDBB(b)
		cfg := syncConfig(dsn)
		exp := startExporter(b, NewFactory().CreateLogs, cfg, testSettingsB(), componenttest.NewNopHost())
		defer exp.Shutdown(context.Background())
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			ld := flaggedLogs(i*batchSize, batchSize, all) // fresh records: no duplicates
			b.StartTimer()
			if err := exp.ConsumeLogs(context.Background(), ld); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "rows/s")
	})
}

// exporter_queue is the default configuration's path: the sending queue's
// consumers convert one request while another is being written (writes
// themselves are serialized by the store's advisory lock). The timer covers
// draining the queue (Shutdown).
func BenchmarkLogsExportQueued(b *testing.B) {
	const batchSize = 1000
	st, dsn := openDBB(b)
	cfg := syncConfig(dsn)
	q := exporterhelper.NewDefaultQueueConfig()
	q.BlockOnOverflow = true
	q.NumConsumers = 4
	cfg.QueueSettings = configoptional.Some(q)
	exp := startExporter(b, NewFactory().CreateLogs, cfg, testSettingsB(), componenttest.NewNopHost())
	inputs := make([]plog.Logs, b.N)
	for i := range inputs {
		inputs[i] = flaggedLogs(i*batchSize, batchSize, all)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := exp.ConsumeLogs(context.Background(), inputs[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := exp.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	var n int
	if err := storetest.Pool(st).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&n); err != nil || n != b.N*batchSize {
		b.Fatalf("stored %d rows, want %d (%v)", n, b.N*batchSize, err)
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "rows/s")
}

func openDBB(b *testing.B) (*store.Store, string) {
	b.Helper()
	return storetestOpen(b)
}
