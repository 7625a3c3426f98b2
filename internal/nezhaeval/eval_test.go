package nezhaeval

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/testutil"
)

var (
	signalLine     = regexp.MustCompile(`^nezha signal=(logs|traces|metrics) faults=(\d+)/(\d+) chance=(\d+\.\d) false_flags_per_hour=(\d+)$`)
	incidentLineRE = regexp.MustCompile(`^nezha faults=(\d+)/(\d+) median_delay_s=(\d+) incidents=(\d+) false_incidents_per_hour=(\d+\.\d\d) rca_top1=(\d+)/(\d+) rca_top3=(\d+)/(\d+)$`)
)

// The shared Nezha day end to end: the processor at its defaults, the
// correlator, the scoring and the output lines other tools parse.
func TestNezhaDay(t *testing.T) {
	dir := wholeDay(t)
	rep, err := Run(context.Background(), dir, Options{})
	require.NoError(t, err)
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())

	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	require.GreaterOrEqual(t, len(lines), 4)
	last := lines[len(lines)-4:]
	for i, sig := range []string{"logs", "traces", "metrics"} {
		m := signalLine.FindStringSubmatch(last[i])
		require.NotNil(t, m, "line %q", last[i])
		assert.Equal(t, sig, m[1])
		assert.Equal(t, "28", m[3])
		d, _ := strconv.Atoi(m[2])
		chance, _ := strconv.ParseFloat(m[4], 64)
		assert.LessOrEqual(t, d, 28)
		assert.GreaterOrEqual(t, chance, 0.0)
		assert.LessOrEqual(t, chance, 28.0)
	}
	m := incidentLineRE.FindStringSubmatch(last[3])
	require.NotNil(t, m, "line %q", last[3])
	det, _ := strconv.Atoi(m[1])
	incidents, _ := strconv.Atoi(m[4])
	top1, _ := strconv.Atoi(m[6])
	top3, _ := strconv.Atoi(m[8])
	assert.Equal(t, "28", m[2])
	assert.LessOrEqual(t, top1, top3)
	assert.LessOrEqual(t, top3, det)
	assert.LessOrEqual(t, det, 28)
	assert.Positive(t, incidents, "the day must yield incidents")

	// Sanity of what was replayed: every signal, the whole day, the call graph.
	assert.Len(t, rep.Faults, 28)
	assert.Greater(t, rep.Records.Logs, 100000)
	assert.Greater(t, rep.Records.Traces, 100000)
	assert.Greater(t, rep.Records.Metrics, 10000)
	assert.InDelta(t, 15.3, rep.Hours(), 0.2)
	assert.NotEmpty(t, rep.Anomalies)
	assert.Greater(t, len(rep.Edges), 10, "edges learned from parent and child spans")
	for i := 1; i < len(rep.Anomalies); i++ {
		require.False(t, rep.Anomalies[i].ObservedAt.Before(rep.Anomalies[i-1].ObservedAt), "anomalies in observed order")
	}
	// The correlator is deterministic on real data too.
	again, err := Correlate(incident.DefaultConfig(), rep.Anomalies, rep.Edges)
	require.NoError(t, err)
	require.Equal(t, len(rep.Events), len(again))
	for i := range again {
		assert.Equal(t, rep.Events[i].Incident.ID, again[i].Incident.ID)
		assert.Equal(t, rep.Events[i].Incident.Title, again[i].Incident.Title)
	}
}

func TestReadFaults(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "fault_list.json"), []byte(s), 0o644))
	}
	write(`{"10": [{"inject_time": "2023-01-30 10:05:00", "inject_pod": "ts-a-service-5b67c48447-mv5hb", "inject_type": "network_delay"}],
	        "09": [{"inject_time": "2023-01-30 09:00:01", "inject_pod": "ts-b-service-866bd68c97-xcqfx", "inject_type": "cpu_contention"}]}`)
	fs, err := ReadFaults(dir)
	require.NoError(t, err)
	require.Len(t, fs, 2)
	assert.Equal(t, "ts-b-service", fs[0].Service)
	assert.Equal(t, "network_delay", fs[1].Type)
	assert.Equal(t, time.Date(2023, 1, 30, 10, 5, 0, 0, time.UTC), fs[1].At)

	write(`{"10": [{"inject_time": "yesterday", "inject_pod": "x"}]}`)
	_, err = ReadFaults(dir)
	assert.ErrorContains(t, err, `inject_time "yesterday"`)
	write(`{}`)
	_, err = ReadFaults(dir)
	assert.ErrorContains(t, err, "no faults")
	write(`[`)
	_, err = ReadFaults(dir)
	assert.ErrorContains(t, err, "fault_list.json")
	assert.ErrorContains(t, CheckDir(t.TempDir()), "not a Nezha day folder")
}

var day = time.Date(2023, 1, 30, 9, 0, 0, 0, time.UTC)

func TestScoreFlags(t *testing.T) {
	faults := []Fault{{At: day, Service: "a"}, {At: day.Add(time.Hour), Service: "b"}}
	act := newActivity()
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		act.see(sigLogs, s, day)
	}
	for m := range 120 {
		act.see(sigLogs, "a", day.Add(time.Duration(m)*time.Minute))
	}
	flags := []incident.Anomaly{
		{Service: "a", ObservedAt: day.Add(30 * time.Second)}, // detects fault 0
		{Service: "c", ObservedAt: day.Add(time.Minute)},      // chance for fault 0, false
		{Service: "a", ObservedAt: day.Add(10 * time.Minute)}, // false (after the window)
		{Service: "b", ObservedAt: day.Add(-time.Second)},     // false (before)
		{Service: "d", ObservedAt: day.Add(61 * time.Minute)}, // chance for fault 1, false
		{Service: "e", ObservedAt: day.Add(62 * time.Minute)}, // chance for fault 1, false
		{Service: "b", ObservedAt: day.Add(65 * time.Minute)}, // outside fault 1's window (5 min)
	}
	s := scoreFlags(sigLogs, flags, faults, &act, Window)
	assert.Equal(t, 1, s.Detected)
	assert.Equal(t, 6, s.FalseFlags)
	assert.InDelta(t, 1.0/4+2.0/4, s.Chance, 1e-9)
	assert.InDelta(t, 2.0, s.Hours, 0.02)
	assert.InDelta(t, 3.0, s.FalsePerHour(), 0.05)
	assert.Equal(t, day.Add(30*time.Second), s.FirstFlag[0])
	assert.True(t, s.FirstFlag[1].IsZero())
}

func TestScoreIncidents(t *testing.T) {
	faults := []Fault{{At: day, Service: "a"}, {At: day.Add(time.Hour), Service: "b"}, {At: day.Add(2 * time.Hour), Service: "c"}}
	inc := func(id string, opened time.Time, services ...string) incident.Incident {
		i := incident.Incident{ID: id, Opened: opened}
		for _, s := range services {
			i.Services = append(i.Services, incident.RankedService{Service: s})
		}
		return i
	}
	events := []incident.Event{
		{Type: incident.Opened, Incident: inc("1", day.Add(40*time.Second), "x", "a")},                                                    // fault 0, rank 2
		{Type: incident.Opened, Incident: inc("2", day.Add(30*time.Minute), "q")},                                                         // false
		{Type: incident.Opened, Incident: inc("3", day.Add(time.Hour-time.Minute), "b")},                                                  // before fault 1: false
		{Type: incident.Updated, At: day.Add(time.Hour + 20*time.Second), Incident: inc("3", day.Add(time.Hour-time.Minute), "b")},        // b not new: no
		{Type: incident.Updated, At: day.Add(2*time.Hour + 90*time.Second), Incident: inc("3", day.Add(time.Hour-time.Minute), "c", "b")}, // c joins: fault 2, rank 1
	}
	s := scoreIncidents(events, faults, 10, Window)
	assert.Equal(t, 3, s.Incidents)
	assert.Equal(t, 2, s.FalseIncidents)
	assert.Equal(t, 2, s.Detected)
	assert.Equal(t, 1, s.Top1)
	assert.Equal(t, 2, s.Top3)
	assert.Equal(t, 2, s.Faults[0].Rank)
	assert.False(t, s.Faults[1].Detected)
	assert.Equal(t, time.Minute, s.Faults[1].Early, "opened with b a minute before b's fault")
	assert.Zero(t, s.Faults[0].Early)
	assert.Equal(t, 90*time.Second, s.Faults[2].Delay)
	assert.Equal(t, (40*time.Second+90*time.Second)/2, s.MedianDelay)
	assert.InDelta(t, 0.2, s.FalsePerHour(), 1e-9)
}

func TestRules(t *testing.T) {
	r := newRules()
	// error_count: a quiet service (0-1 warnings a minute) then a burst.
	for m := range 30 {
		at := day.Add(time.Duration(m) * time.Minute)
		r.log("a", at, m%3 == 0, "WARN slow")
		r.log("a", at.Add(time.Second), false, "INFO ok")
	}
	burst := day.Add(30 * time.Minute)
	for i := range 12 {
		r.log("a", burst.Add(time.Duration(i)*time.Second), true, "ERROR boom")
	}
	r.log("a", burst.Add(time.Minute), false, "INFO ok")
	r.finish()
	require.Len(t, r.flags[sigLogs], 12)
	assert.Equal(t, "ERROR boom", r.flags[sigLogs][0].Summary)

	// span_2x_p99: steady 10 ms, then 50 ms.
	for i := range 100 {
		r.span("b", "GET /x", day.Add(time.Duration(i)*time.Second), 10*time.Millisecond+time.Duration(i%5)*time.Millisecond)
	}
	r.span("b", "GET /x", day.Add(200*time.Second), 50*time.Millisecond)
	require.Len(t, r.flags[sigTraces], 1)

	// metric_3sigma: noise around 100, then 200.
	for i := range 30 {
		r.metric("c", "cpu", day.Add(time.Duration(i)*time.Minute), 100+float64(i%3))
	}
	r.metric("c", "cpu", day.Add(31*time.Minute), 200)
	require.Len(t, r.flags[sigMetrics], 1)
}

// wholeDay skips a test that replays the whole shared Nezha day under
// -short or -race (minutes there), or without the data, and returns the
// day's folder.
func wholeDay(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("replays a whole Nezha day (about 550,000 records): skipped with -short")
	}
	if raceEnabled {
		t.Skip("replays a whole Nezha day: minutes under -race; run `go test ./internal/nezhaeval/` without -race")
	}
	return testutil.SharedData(t, "nezha", "2023-01-29")
}
