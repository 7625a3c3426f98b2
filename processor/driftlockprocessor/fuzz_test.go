package driftlockprocessor

import (
	"context"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
)

// FuzzConsumeLogs feeds arbitrary OTLP log payloads (decoded from the
// fuzzer's bytes with the protobuf unmarshaler) through the processor: it
// must not panic, and every record must come out.
func FuzzConsumeLogs(f *testing.F) {
	seed, err := golden.ReadLogs("testdata/logs/input.yaml")
	require.NoError(f, err)
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(seed)
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte{})
	big := plog.NewLogs()
	lr := big.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	m := lr.Body().SetEmptyMap()
	for range 100 {
		m = m.PutEmptyMap("nested")
	}
	lr.Attributes().PutStr("service.name", "\xff\xfe invalid utf-8")
	b, err = (&plog.ProtoMarshaler{}).MarshalLogs(big)
	require.NoError(f, err)
	f.Add(b)

	cfg := testConfig()
	cfg.Annotate = AnnotateAll
	cfg.Logs.Attributes = []string{"http.route", "nested"}
	cfg.Detector.Warmup = 4
	cfg.Detector.CalibrationSize = 16
	cfg.Detector.BaselineSize = 16
	cfg.Detector.Hop = 4
	sink := new(consumertest.LogsSink)
	p := startLogs(f, cfg, sink, testSettings(), componenttest.NewNopHost())

	u := &plog.ProtoUnmarshaler{}
	f.Fuzz(func(t *testing.T, data []byte) {
		ld, err := u.UnmarshalLogs(data)
		if err != nil {
			return // not OTLP: the receiver would have rejected it
		}
		want := ld.LogRecordCount()
		sink.Reset()
		require.NoError(t, p.ConsumeLogs(context.Background(), ld))
		require.Equal(t, want, sink.LogRecordCount())
	})
}
