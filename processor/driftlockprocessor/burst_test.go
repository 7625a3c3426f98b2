package driftlockprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/driftlock/driftlock/internal/attrs"
	"github.com/driftlock/driftlock/internal/cbad"
)

// A burst of a KNOWN error line (the Nezha contacts fault: 20 identical
// ERROR lines in a minute, of a kind the service logs every few minutes)
// leaves the processor flagged with driftlock.reason rate or errors, its
// kind and the episode's start, while routine traffic carries no burst flag.
func TestBurstOfKnownErrorAnnotated(t *testing.T) {
	p := startLogs(t, testConfig(), consumertest.NewNop(), testSettings(), componenttest.NewNopHost())
	t0 := time.Date(2026, 1, 29, 8, 0, 0, 0, time.UTC)
	burstAt := 90 * time.Minute
	contacts := func(s int) string {
		return fmt.Sprintf("[No contacts according to contactsId] contactsId=%08x-aaaa-bbbb-cccc-%012x", s, s)
	}
	templates := []string{"GET /api/v1/orders/%d 200 in %d ms", "cache hit key=user:%d ttl=%d", "worker %d finished job in %d ms"}
	var burstFlags []pcommon.Map
	routineBurstFlags := 0
	for minute := 0; minute < 120; minute++ {
		ld, appendTo := logsByService()
		var burst, routine []plog.LogRecord
		for sec := 0; sec < 60; sec++ {
			s := minute*60 + sec
			tm := t0.Add(time.Duration(s) * time.Second)
			if sec%2 == 0 {
				lr := appendTo("checkout")
				lr.SetTimestamp(pcommon.NewTimestampFromTime(tm))
				lr.SetSeverityNumber(plog.SeverityNumberInfo)
				lr.Body().SetStr(fmt.Sprintf(templates[s%3], s%97, s%13))
				routine = append(routine, lr)
			}
			inBurst := time.Duration(s)*time.Second >= burstAt && time.Duration(s)*time.Second < burstAt+time.Minute && sec%3 == 0
			if s%300 == 1 || inBurst {
				lr := appendTo("checkout")
				lr.SetTimestamp(pcommon.NewTimestampFromTime(tm))
				lr.SetSeverityNumber(plog.SeverityNumberError)
				lr.Body().SetStr(contacts(s))
				if inBurst {
					burst = append(burst, lr)
				}
			}
		}
		require.NoError(t, p.ConsumeLogs(context.Background(), ld))
		for _, lr := range routine {
			if v, ok := lr.Attributes().Get(attrs.Reason); ok && (v.Str() == attrs.ReasonRate || v.Str() == attrs.ReasonErrors) {
				routineBurstFlags++
			}
		}
		for _, lr := range burst {
			if v, ok := lr.Attributes().Get(attrAnomaly); ok && v.Bool() {
				burstFlags = append(burstFlags, lr.Attributes())
			}
		}
	}
	assert.Zero(t, routineBurstFlags, "routine records flagged as a burst")
	require.NotEmpty(t, burstFlags, "the burst of a known ERROR line was not flagged")
	a := burstFlags[0]
	reason, _ := a.Get(attrs.Reason)
	assert.Contains(t, []string{attrs.ReasonRate, attrs.ReasonErrors}, reason.Str())
	kind, _ := a.Get(attrs.Kind)
	assert.Equal(t, cbad.FormatKind(cbad.KindOf([]byte(contacts(1)))), kind.Str(), "driftlock.kind is the line's template id")
	ep, ok := a.Get(attrs.Episode)
	require.True(t, ok, "a burst flag carries driftlock.episode")
	start, err := time.Parse(time.RFC3339Nano, ep.Str())
	require.NoError(t, err)
	assert.False(t, start.Before(t0.Add(burstAt)) || start.After(t0.Add(burstAt+time.Minute)),
		"episode start %v is not in the burst's minute", start)
}
