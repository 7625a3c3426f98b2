package nezhaeval

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/driftlock/driftlock/internal/replay"
)

func TestParseDelayFault(t *testing.T) {
	f, err := ParseDelayFault("ts-x@2023-01-29T11:29:20Z")
	require.NoError(t, err)
	assert.Equal(t, DelayFault{Service: "ts-x", At: time.Date(2023, 1, 29, 11, 29, 20, 0, time.UTC), For: 5 * time.Minute, Delay: time.Second}, f)
	f, err = ParseDelayFault("ts-x@2023-01-29T11:29:20+01:00,2m,250ms")
	require.NoError(t, err)
	assert.Equal(t, DelayFault{Service: "ts-x", At: time.Date(2023, 1, 29, 10, 29, 20, 0, time.UTC), For: 2 * time.Minute, Delay: 250 * time.Millisecond}, f)
	for in, want := range map[string]string{
		"ts-x":                            "want SERVICE@TIME",
		"@2023-01-29T11:29:20Z":           "want SERVICE@TIME",
		"ts-x@yesterday":                  "time",
		"ts-x@2023-01-29T11:29:20Z,-1m":   "not a positive duration",
		"ts-x@2023-01-29T11:29:20Z,1m,":   "not a positive duration",
		"ts-x@2023-01-29T11:29:20Z,1,2,3": "want SERVICE@TIME",
	} {
		_, err := ParseDelayFault(in)
		if assert.Error(t, err, in) {
			assert.Contains(t, err.Error(), want, in)
		}
	}
}

// The delay lengthens the caller's span of a call into the service and
// every ancestor of it, and nothing else: not the callee's spans, not
// calls outside the window, not calls within the service.
func TestInjectDelay(t *testing.T) {
	at := time.Date(2023, 1, 29, 12, 0, 0, 0, time.UTC)
	span := func(svc string, id, parent byte, start time.Duration) replay.Record {
		r := replay.Record{Signal: replay.Traces, Service: svc, Time: at.Add(start), End: at.Add(start + 100*time.Millisecond)}
		r.TraceID[0], r.SpanID[0], r.ParentID[0] = 1, id, parent
		return r
	}
	recs := []replay.Record{
		span("gateway", 1, 0, 0),                // root
		span("front", 2, 1, time.Millisecond),   // calls the slow one
		span("slow", 3, 2, 2*time.Millisecond),  // the delayed service: a call into it
		span("slow", 4, 3, 3*time.Millisecond),  // within the service: no delay
		span("slow", 5, 2, 10*time.Minute),      // outside the window
		span("front", 6, 0, 4*time.Millisecond), // unrelated
		{Signal: replay.Logs, Service: "slow", Time: at, Body: "unchanged"},
	}
	src, calls, err := injectDelay(replay.SliceSource(recs), DelayFault{Service: "slow", At: at, For: time.Minute, Delay: time.Second})
	require.NoError(t, err)
	assert.Equal(t, 1, calls)
	var got []replay.Record
	for {
		r, err := src.Next()
		if err != nil {
			break
		}
		got = append(got, r)
	}
	require.Len(t, got, len(recs))
	for i, r := range got {
		longer := r.End.Sub(recs[i].End)
		switch i {
		case 0, 1: // the caller and its ancestor wait
			assert.Equal(t, time.Second, longer, "span %d", i)
		default:
			assert.Zero(t, longer, "span %d", i)
		}
	}
}

// A network delay is the fault type the shared day lacks (issue 13: the
// callee's own telemetry does not move, its callers' view of it does).
// Injected into real spans of the shared day, in a window where the day
// has spans and no fault of the service, it must open an incident naming
// the delayed service first, within a minute.
func TestSyntheticNetworkDelay(t *testing.T) {
	dir := wholeDay(t)
	for _, tc := range []struct {
		service string
		at      time.Time
		delay   time.Duration
		within  time.Duration
	}{
		// A delay far above the calls' usual tail.
		{"ts-station-service", time.Date(2023, 1, 29, 11, 29, 20, 0, time.UTC), time.Second, time.Minute},
		{"ts-route-service", time.Date(2023, 1, 29, 11, 29, 20, 0, time.UTC), time.Second, time.Minute},
		// 100 ms below the tail of the calls into seat (their gap's 99th
		// percentile is about 230 ms, its median 2-3 ms): only the shift
		// test on call gaps sees it.
		{"ts-seat-service", time.Date(2023, 1, 29, 10, 45, 20, 0, time.UTC), 100 * time.Millisecond, 2 * time.Minute},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.service, tc.delay), func(t *testing.T) {
			f := DelayFault{Service: tc.service, At: tc.at, For: 150 * time.Second, Delay: tc.delay}
			rep, err := Run(context.Background(), dir, Options{Delay: &f})
			require.NoError(t, err)
			assert.Positive(t, rep.Delayed)
			require.Len(t, rep.Faults, 29)
			for _, r := range rep.Incidents.Faults {
				if !strings.HasSuffix(r.Fault.Type, "(synthetic)") {
					continue
				}
				assert.True(t, r.Detected, "the delay into %s opened no incident naming it", tc.service)
				assert.Equal(t, 1, r.Rank, "rank of %s", tc.service)
				assert.Less(t, r.Delay, tc.within)
				return
			}
			t.Fatal("the synthetic fault is not in the fault list")
		})
	}
}
