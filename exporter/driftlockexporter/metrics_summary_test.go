package driftlockexporter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/recorddoc"
)

// A metric row's summary says what was seen against what was expected
// when the processor explained the point, on the flagged point or its
// companion; otherwise the value (or "anomalous" for a companion) and the
// score.
func TestMetricSummary(t *testing.T) {
	explained := pcommon.NewMap()
	explained.PutDouble(attrs.Observed, 499.6516653157638)
	explained.PutDouble(attrs.ExpectedLow, 1.2887269201734028)
	explained.PutDouble(attrs.ExpectedHigh, 12.010912744075336)
	value := map[string]any{recorddoc.KeyValue: 499.6516653157638}
	assert.Equal(t, "nezha.cpu_usage = 499.652 (expected 1.28873..12.0109)", metricSummary("nezha.cpu_usage", true, value, explained, 4.43))
	assert.Equal(t, "nezha.cpu_usage = 499.652 (expected 1.28873..12.0109)", metricSummary("nezha.cpu_usage", false, value, explained, 4.43))

	plain := pcommon.NewMap()
	assert.Equal(t, "nezha.cpu_usage anomalous (score 4.43)", metricSummary("nezha.cpu_usage", true, map[string]any{recorddoc.KeyValue: 1.0}, plain, 4.43))
	assert.Equal(t, "latency = 12 (score 4.43)", metricSummary("latency", false, map[string]any{recorddoc.KeyValue: 12.0}, plain, 4.43))
	// A malformed annotation (a string where a number belongs) falls back.
	bad := pcommon.NewMap()
	bad.PutStr(attrs.Observed, "lots")
	bad.PutDouble(attrs.ExpectedLow, 1)
	bad.PutDouble(attrs.ExpectedHigh, 2)
	assert.Equal(t, "latency = 12 (score 4.43)", metricSummary("latency", false, map[string]any{recorddoc.KeyValue: 12.0}, bad, 4.43))
}
