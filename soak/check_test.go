package soak

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/exporter/driftlockexporter"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// flag marks every record as the processor would have.
func flag(ld plog.Logs) {
	for _, rl := range ld.ResourceLogs().All() {
		svc, _ := rl.Resource().Attributes().Get("service.name")
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				lr.Attributes().PutBool("driftlock.anomaly", true)
				lr.Attributes().PutStr("driftlock.stream", "logs/"+svc.AsString())
				lr.Attributes().PutDouble("driftlock.score", 9)
			}
		}
	}
}

// The soak's check against the real exporter and a real PostgreSQL: records
// go through the exporter into the store and, as the file exporter would
// write them, through ReadFlagged; Compare must find each stored exactly
// once (by soak.seq, with one fingerprint each), and must see a deleted row
// and a record stored twice.
func TestCheckAgainstTheExporter(t *testing.T) {
	st, dsn := storetest.Open(t)
	f := driftlockexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*driftlockexporter.Config)
	cfg.DSN = configopaque.String(dsn)
	cfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.BackOffConfig.Enabled = false
	cfg.Retention = 0
	exp, err := f.CreateLogs(context.Background(), exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, exp.Shutdown(context.Background())) }()

	g := NewGenerator(3, 10, 7)
	out := filepath.Join(t.TempDir(), "logs.jsonl")
	file, err := os.Create(out)
	require.NoError(t, err)
	injected := 0
	for i := range 4 {
		ld, inj := g.Next(25, time.Date(2026, 11, 25, 9, 0, i, 0, time.UTC))
		injected += inj
		flag(ld)
		b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
		require.NoError(t, err)
		_, err = file.Write(append(b, '\n'))
		require.NoError(t, err)
		require.NoError(t, exp.ConsumeLogs(context.Background(), ld))
	}
	require.NoError(t, file.Close())

	flagged := map[int64]Flagged{}
	n, err := ReadFlagged(out, flagged, false)
	require.NoError(t, err)
	require.Equal(t, 100, n)
	require.Len(t, flagged, 100)

	// A torn last line (SIGKILL mid-write) is skipped only when allowed.
	torn := filepath.Join(t.TempDir(), "torn.jsonl")
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(torn, append(b, `{"resourceLogs":[{"resou`...), 0o600))
	_, err = ReadFlagged(torn, map[int64]Flagged{}, false)
	require.Error(t, err)
	n, err = ReadFlagged(torn, map[int64]Flagged{}, true)
	require.NoError(t, err)
	require.Equal(t, 100, n)
	require.NoError(t, os.WriteFile(torn, append([]byte("{bad}\n"), b...), 0o600))
	_, err = ReadFlagged(torn, map[int64]Flagged{}, true)
	require.Error(t, err, "a bad line followed by good ones is corruption, not a torn tail")

	rows, err := storetest.Pool(st).Query(context.Background(), "SELECT fingerprint, (attributes->>'soak.seq')::bigint FROM anomalies")
	require.NoError(t, err)
	var stored []StoredRow
	for rows.Next() {
		var r StoredRow
		require.NoError(t, rows.Scan(&r.Fingerprint, &r.Seq))
		stored = append(stored, r)
	}
	require.NoError(t, rows.Err())
	res := Compare(flagged, stored, injected)
	require.Equal(t, Result{Flagged: 100, Stored: 100, Injected: injected, InjectedHit: injected}, res)
	require.Equal(t, 13, injected, "seq 10, 17, ..., 94")

	// A row missing, a record stored twice under another fingerprint, and
	// a fingerprint stored twice are all seen.
	res = Compare(flagged, stored[1:], injected)
	require.Equal(t, 1, res.Lost)
	require.Equal(t, []int64{stored[0].Seq}, res.LostSeqs)
	twice := append(slices.Clone(stored), StoredRow{Fingerprint: "other", Seq: stored[5].Seq})
	require.Equal(t, 1, Compare(flagged, twice, injected).Duplicated)
	twice = append(slices.Clone(stored), stored[5])
	require.Equal(t, 1, Compare(flagged, twice, injected).Duplicated, "the same row twice")
	// Every stored row has its own fingerprint from the exporter.
	fps := map[string]bool{}
	for _, r := range stored {
		require.NotEmpty(t, r.Fingerprint)
		fps[r.Fingerprint] = true
	}
	require.Len(t, fps, len(stored))
}

func TestGeneratorInjects(t *testing.T) {
	g := NewGenerator(4, 100, 50)
	ld, inj := g.Next(300, time.Unix(0, 0))
	require.Equal(t, 300, ld.LogRecordCount())
	require.Equal(t, 4, inj, "seq 100, 150, 200, 250")
	seen := map[int64]bool{}
	novel := 0
	for _, rl := range ld.ResourceLogs().All() {
		for _, lr := range rl.ScopeLogs().At(0).LogRecords().All() {
			seq, _ := lr.Attributes().Get(SeqKey)
			require.False(t, seen[seq.Int()])
			seen[seq.Int()] = true
			if _, ok := lr.Attributes().Get(InjectedKey); ok {
				novel++
				require.True(t, g.Injected(int(seq.Int())))
				require.Equal(t, "ERROR", lr.SeverityText())
			}
		}
	}
	require.Equal(t, 4, novel)
	require.Equal(t, 300, g.Seq())
}

const promSample = `# HELP otelcol_processor_driftlock_scoring_duration_seconds x
# TYPE otelcol_processor_driftlock_scoring_duration_seconds histogram
otelcol_processor_driftlock_scoring_duration_seconds_bucket{otel_scope_name="x",signal="logs",le="1e-05"} 10
otelcol_processor_driftlock_scoring_duration_seconds_bucket{otel_scope_name="x",signal="logs",le="0.0001"} 90
otelcol_processor_driftlock_scoring_duration_seconds_bucket{otel_scope_name="x",signal="logs",le="0.001"} 100
otelcol_processor_driftlock_scoring_duration_seconds_bucket{otel_scope_name="x",signal="logs",le="+Inf"} 100
otelcol_processor_driftlock_scoring_duration_seconds_sum{signal="logs"} 0.004
otelcol_processor_driftlock_scoring_duration_seconds_count{signal="logs"} 100
otelcol_other_bucket{le="1"} 5
`

func TestHistogramQuantile(t *testing.T) {
	h, err := ParseHistogram(strings.NewReader(promSample), "otelcol_processor_driftlock_scoring_duration")
	require.NoError(t, err)
	require.Equal(t, 100.0, h.Count())
	require.InDelta(t, 1e-5+(1e-4-1e-5)*40/80, h.Quantile(0.5), 1e-12)
	require.InDelta(t, 1e-4+(1e-3-1e-4)*9/10, h.Quantile(0.99), 1e-12)
	h.Add(h)
	require.Equal(t, 200.0, h.Count())
	require.InDelta(t, 1e-4+(1e-3-1e-4)*9/10, h.Quantile(0.99), 1e-12, "doubling every bucket keeps the quantiles")

	_, err = ParseHistogram(strings.NewReader(promSample), "otelcol_nothing")
	require.Error(t, err)
	require.True(t, math.IsNaN(Histogram{}.Quantile(0.99)))
}

func TestProcStatus(t *testing.T) {
	v, err := ProcStatusOf(os.Getpid(), "VmHWM")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	require.Greater(t, v, uint64(1<<20))
	_, err = ProcStatusOf(os.Getpid(), "NoSuchField")
	require.Error(t, err)
}
