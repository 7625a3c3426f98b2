package driftlockexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/driftlock/driftlock/internal/store/storetest"
	"github.com/driftlock/driftlock/processor/driftlockprocessor"
)

// The real driftlock processor in front of the exporter: every record the
// processor flags becomes exactly one row, with its detector configuration.
func TestPipelineProcessorToStore(t *testing.T) {
	st, dsn := openDB(t)
	set, _ := testSettings(t)
	exp := startLogs(t, syncConfig(dsn), set, componenttest.NewNopHost())
	defer exp.Shutdown(context.Background())

	flagged := 0
	counting, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					if v, ok := lrs.At(k).Attributes().Get("driftlock.anomaly"); ok && v.Bool() {
						flagged++
					}
				}
			}
		}
		return exp.ConsumeLogs(ctx, ld)
	})
	if err != nil {
		t.Fatal(err)
	}
	pf := driftlockprocessor.NewFactory()
	pcfg := pf.CreateDefaultConfig()
	sub := map[string]any{"include_config_hash": true}
	if err := unmarshalInto(pcfg, sub); err != nil {
		t.Fatal(err)
	}
	proc, err := pf.CreateLogs(context.Background(), processortest.NewNopSettings(pf.Type()), pcfg, counting)
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer proc.Shutdown(context.Background())

	// 4,000 routine lines, then a burst of lines unlike anything before.
	const total = 4000
	for batch := 0; batch < total/200; batch++ {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("service.name", "payments")
		sl := rl.ScopeLogs().AppendEmpty()
		for i := batch * 200; i < (batch+1)*200; i++ {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(baseTime.Add(time.Duration(i) * time.Second)))
			lr.SetSeverityNumber(9)
			lr.SetSeverityText("INFO")
			lr.Body().SetStr(fmt.Sprintf("GET /api/orders/%d 200 %dms user=u%d", i%500, 10+i%37, i%91))
			if i >= 3600 && i%40 == 0 {
				lr.SetSeverityNumber(17)
				lr.SetSeverityText("ERROR")
				lr.Body().SetStr(fmt.Sprintf("FATAL kernel: segfault at %x ip %x sp %x error 4 in libc.so.6[%x]", i*7919, i*104729, i*31, i*13))
			}
		}
		if err := proc.ConsumeLogs(context.Background(), ld); err != nil {
			t.Fatal(err)
		}
	}
	if flagged == 0 {
		t.Fatal("the processor flagged nothing: the pipeline test proves nothing")
	}
	if got := rowCount(t, st); got != flagged {
		t.Fatalf("rows = %d, processor flagged %d", got, flagged)
	}
	var missingConfig int
	if err := storetest.Pool(st).QueryRow(context.Background(), `SELECT count(*) FROM anomalies a LEFT JOIN detectors d
		ON d.config_hash = a.detector_config_hash WHERE d.config_hash IS NULL OR d.config = '{}'::jsonb`).Scan(&missingConfig); err != nil {
		t.Fatal(err)
	}
	if missingConfig != 0 {
		t.Fatalf("%d rows without their detector configuration", missingConfig)
	}
	t.Logf("%d of %d records flagged and stored", flagged, total)
}
