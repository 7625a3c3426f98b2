package soak

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/driftlock/driftlock/internal/testutil"
	"github.com/driftlock/driftlock/processor/driftlockprocessor"
)

// TestCardinalityBound sends one log record per distinct service.name (a
// new stream key per record: 1,000,000 of them, 50,000 under -short)
// through the processor with a small max_streams (200,000 under -race). The detector must keep at
// most max_streams streams, count every eviction in its telemetry, and the
// heap must not grow with the number of keys seen.
func TestCardinalityBound(t *testing.T) {
	const (
		maxStreams = 1000
		batch      = 5000
	)
	total := 1_000_000
	switch {
	case testing.Short():
		total = 50_000
	case raceEnabled:
		total = 200_000 // about 25 s under the race detector
	}

	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	factory := driftlockprocessor.NewFactory()
	cfg := factory.CreateDefaultConfig().(*driftlockprocessor.Config)
	cfg.Detector.MaxStreams = maxStreams
	set := processortest.NewNopSettings(factory.Type())
	set.TelemetrySettings = tel.NewTelemetrySettings()
	var passed atomic.Int64
	sink, err := consumer.NewLogs(func(_ context.Context, ld plog.Logs) error {
		passed.Add(int64(ld.LogRecordCount()))
		return nil
	})
	require.NoError(t, err)
	p, err := factory.CreateLogs(context.Background(), set, cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, p.Shutdown(context.Background())) }()

	gauge := func(name string) int64 { return testutil.Int64Metric(t, tel, name) }

	var tenth uint64 // heap in use after GC at 10% of the keys
	peakActive := int64(0)
	for sent := 0; sent < total; sent += batch {
		ld := plog.NewLogs()
		for i := sent; i < sent+batch && i < total; i++ {
			rl := ld.ResourceLogs().AppendEmpty()
			rl.Resource().Attributes().PutStr("service.name", "svc-"+strconv.Itoa(i))
			rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("user " + strconv.Itoa(i) + " logged in from 10.0.0.1")
		}
		require.NoError(t, p.ConsumeLogs(context.Background(), ld))
		if a := gauge("otelcol_processor_driftlock_active_streams"); a > peakActive {
			peakActive = a
		}
		if tenth == 0 && sent+batch >= total/10 {
			tenth = testutil.HeapInUse()
		}
	}
	require.Equal(t, int64(total), passed.Load(), "every record passes through")

	active := gauge("otelcol_processor_driftlock_active_streams")
	evicted := gauge("otelcol_processor_driftlock_evicted_streams")
	final := testutil.HeapInUse()
	rss, hwm := procStatus("VmRSS"), procStatus("VmHWM")
	fmt.Printf("cardinality: %d distinct stream keys, max_streams=%d: active=%d (peak %d) evicted=%d; heap in use after GC %.1f MiB at 10%% of keys, %.1f MiB at the end; process RSS %.1f MiB, peak RSS %.1f MiB\n",
		total, maxStreams, active, peakActive, evicted, mib(tenth), mib(final), mib(rss), mib(hwm))

	require.LessOrEqual(t, peakActive, int64(maxStreams), "active streams stay within max_streams")
	require.Positive(t, active)
	require.GreaterOrEqual(t, evicted, int64(total-maxStreams), "every stream past max_streams evicts one")
	// Nine times as many keys after the 10% mark must not mean more heap:
	// allow 50% (and 16 MiB) for GC and pool noise.
	require.Less(t, final, tenth+tenth/2+16<<20, "heap grows with the number of distinct keys")
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
