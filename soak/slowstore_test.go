package soak

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/driftlock/driftlock/internal/faultproxy"
	"github.com/driftlock/driftlock/internal/proctest"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// slowStoreConfig: memory_limiter first, the driftlock processor, and the
// driftlock exporter storing every record (only_anomalies: false, so the
// row count is the accepted record count) through a small in-memory queue.
const slowStoreConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:${env:T_HEALTH}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${env:T_GRPC}
processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: 400
    spike_limit_mib: 100
  driftlock:
    stream_by: [service.name]
exporters:
  driftlock:
    dsn: ${env:T_DSN}
    only_anomalies: false
    migrate_on_start: false
    retention: 0s
    timeout: 60s
    retry_on_failure:
      enabled: true
      max_elapsed_time: 0
    sending_queue:
      enabled: true
      queue_size: 16
      num_consumers: 1
service:
  extensions: [health_check]
  telemetry:
    logs:
      level: error
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      processors: [memory_limiter, driftlock]
      exporters: [driftlock]
`

// bigRequest is one ~1 MiB request: 1,000 records of ~1 KiB.
func bigRequest(req int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "slow-store")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	pad := strings.Repeat("p", 1000)
	ts := pcommon.NewTimestampFromTime(time.Now())
	for i := range 1000 {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(ts)
		lr.Body().SetStr(fmt.Sprintf("GET /item/%d/%d 200 %s", req, i, pad))
	}
	return ld
}

// The distribution in front of a store that answers slowly (PostgreSQL
// behind the latency proxy, 500 ms each way): the pipeline pushes back on
// its senders (gRPC Unavailable/ResourceExhausted, which OTLP clients
// retry) rather than buffering what it is offered. About 600 MiB are
// offered; the collector's peak RSS stays far below that, and once the
// store is fast again every record it accepted is stored, exactly once.
func TestSlowStorePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the collector distribution; skipped under -short")
	}
	st, dsn := storetest.Open(t)
	bin := collectorBin(t)
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	proxy, err := faultproxy.New(u.Host)
	require.NoError(t, err)
	defer proxy.Close()
	u.Host = proxy.Addr()
	proxy.SetLatency(500 * time.Millisecond)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "collector.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(slowStoreConfig), 0o600))
	grpcPort, health := freePort(t), freePort(t)
	cmd := exec.Command(bin, "--config", cfgPath)
	cmd.Env = append(os.Environ(), "T_HEALTH="+strconv.Itoa(health), "T_GRPC="+strconv.Itoa(grpcPort), "T_DSN="+u.String())
	logs := new(lockedBuffer)
	cmd.Stdout, cmd.Stderr = logs, logs
	proc, err := proctest.Start(cmd)
	require.NoError(t, err)
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		proxy.SetLatency(0) // let the queue drain so the collector can stop
		_ = proc.Stop(syscall.SIGTERM, 60*time.Second)
	}
	defer stop()
	require.NoError(t, proc.WaitHealthy(context.Background(), health, 30*time.Second), "collector not healthy:\n%s", logs.String())
	base, err := ProcStatusOf(cmd.Process.Pid, "VmRSS")
	require.NoError(t, err)

	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(grpcPort),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(16<<20)))
	require.NoError(t, err)
	defer conn.Close()
	client := plogotlp.NewGRPCClient(conn)

	const requests = 600
	accepted, refused := 0, map[codes.Code]int{}
	var peak uint64
	for r := range requests {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := client.Export(ctx, plogotlp.NewExportRequestFromLogs(bigRequest(r)))
		cancel()
		if err == nil {
			accepted++
		} else {
			refused[status.Code(err)]++
		}
		if v, err := ProcStatusOf(cmd.Process.Pid, "VmHWM"); err == nil {
			peak = v
		}
	}
	nRefused := 0
	for c, n := range refused {
		nRefused += n
		require.Contains(t, []codes.Code{codes.Unavailable, codes.ResourceExhausted}, c,
			"a refusal must be retryable for OTLP clients, got %v (%d)", c, n)
	}
	offered := float64(requests) * 1.03
	t.Logf("slow store (500 ms each way) behind memory_limiter + 16-request queue: %d of %d requests accepted, refused %v; collector RSS %.0f MiB at start, peak %.0f MiB, while %.0f MiB were offered",
		accepted, requests, refused, float64(base)/(1<<20), float64(peak)/(1<<20), offered)
	require.Positive(t, nRefused, "the slow store must make the pipeline refuse")
	require.Positive(t, accepted)
	require.Less(t, float64(peak)/(1<<20), offered/2, "peak RSS must stay well below what was offered")

	// The store recovers: every accepted record is stored, once.
	proxy.SetLatency(0)
	want := accepted * 1000
	var rows int
	for range 600 {
		require.NoError(t, storetest.Pool(st).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&rows))
		if rows >= want {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	require.NoError(t, storetest.Pool(st).QueryRow(context.Background(), "SELECT count(*) FROM anomalies").Scan(&rows))
	require.Equal(t, want, rows, "every accepted record stored exactly once\n%s", logs.String())
}
