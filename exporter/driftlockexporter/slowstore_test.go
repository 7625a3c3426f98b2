package driftlockexporter_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/exporter/driftlockexporter"
	"github.com/driftlock/driftlock/internal/faultproxy"
	"github.com/driftlock/driftlock/internal/store/storetest"
	"github.com/driftlock/driftlock/internal/testutil"
)

// slowRequest is one request of perRequest flagged records with 1 KiB
// bodies, distinct across requests.
func slowRequest(req, perRequest int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "slow-store")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	pad := strings.Repeat("x", 1000)
	ts := pcommon.NewTimestampFromTime(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	for i := range perRequest {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(ts)
		lr.Body().SetStr(fmt.Sprintf("request %d record %d %s", req, i, pad))
		lr.Attributes().PutBool("driftlock.anomaly", true)
		lr.Attributes().PutDouble("driftlock.score", 8)
		lr.Attributes().PutStr("driftlock.stream", "logs/slow-store")
	}
	return ld
}

// A store that answers slowly (PostgreSQL behind a proxy adding 250 ms each
// way) must push back: the bounded sending queue fills and the exporter
// refuses further requests with ErrQueueIsFull (counted in
// otelcol_exporter_enqueue_failed_log_records), which a receiver turns into
// a retryable error for its client, instead of holding everything offered
// in memory. Once the store is fast again, every request that was accepted
// is stored: refusing is the only way data is turned away.
func TestSlowStoreBackpressure(t *testing.T) {
	st, dsn := storetest.Open(t) // migrated directly, not through the proxy
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	proxy, err := faultproxy.New(u.Host)
	require.NoError(t, err)
	defer proxy.Close()
	u.Host = proxy.Addr()

	const (
		queueSize  = 8
		requests   = 400
		perRequest = 200 // 400 x 200 x ~1 KiB: about 80 MiB of bodies offered
	)
	f := driftlockexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*driftlockexporter.Config)
	cfg.DSN = configopaque.String(u.String())
	cfg.Retention = 0
	cfg.MigrateOnStart = false
	cfg.Timeout = 30 * time.Second
	q := exporterhelper.NewDefaultQueueConfig()
	q.QueueSize = queueSize
	q.NumConsumers = 1
	q.BlockOnOverflow = false
	q.Batch = configoptional.None[exporterhelper.BatchConfig]()
	cfg.QueueSettings = configoptional.Some(q)
	require.NoError(t, cfg.Validate())

	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	set := exportertest.NewNopSettings(f.Type())
	set.TelemetrySettings = tel.NewTelemetrySettings()
	exp, err := f.CreateLogs(context.Background(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	stopped := false
	defer func() {
		if !stopped {
			proxy.SetLatency(0)
			_ = exp.Shutdown(context.Background())
		}
	}()

	proxy.SetLatency(250 * time.Millisecond)
	before := testutil.HeapInUse()
	accepted, refused := 0, 0
	maxQueue := int64(0)
	for r := range requests {
		err := exp.ConsumeLogs(context.Background(), slowRequest(r, perRequest))
		switch {
		case err == nil:
			accepted++
		case errors.Is(err, exporterhelper.ErrQueueIsFull):
			refused++
		default:
			t.Fatalf("request %d: unexpected error %v", r, err)
		}
		if qs := testutil.Int64Metric(t, tel, "otelcol_exporter_queue_size"); qs > maxQueue {
			maxQueue = qs
		}
	}
	during := testutil.HeapInUse()
	growth := int64(during) - int64(before)
	t.Logf("slow store (250 ms each way): %d requests offered, %d accepted, %d refused with %v; queue peak %d of %d; heap in use %+.1f MiB while about %.0f MiB of records were offered",
		requests, accepted, refused, exporterhelper.ErrQueueIsFull, maxQueue, queueSize,
		float64(growth)/(1<<20), float64(requests*perRequest*1030)/(1<<20))

	require.Positive(t, refused, "a slow store must make the queue refuse")
	require.LessOrEqual(t, maxQueue, int64(queueSize))
	require.Equal(t, int64(refused*perRequest), testutil.Int64Metric(t, tel, "otelcol_exporter_enqueue_failed_log_records"))
	// What stays in memory is the queue (plus the request being written),
	// not what was offered: allow the queue's worth three times over.
	bound := int64((queueSize+2)*perRequest*1030*3) + 16<<20
	require.Less(t, growth, bound, "memory held must be bounded by the queue, not by the offered load")

	// The store recovers: every accepted record is written, none twice.
	proxy.SetLatency(0)
	want := accepted * perRequest
	deadline := time.Now().Add(2 * time.Minute)
	var rows int
	for time.Now().Before(deadline) {
		require.NoError(t, storetest.Pool(st).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&rows))
		if rows >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stopped = true
	require.NoError(t, exp.Shutdown(context.Background()))
	require.NoError(t, storetest.Pool(st).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&rows))
	require.Equal(t, want, rows, "every accepted record stored exactly once")
	require.Positive(t, proxy.Connections())
}
