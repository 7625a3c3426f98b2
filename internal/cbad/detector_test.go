package cbad

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/testutil"
)

// syntheticStream is a log stream of a few templates with varying values,
// with an optional novel template injected at position inject.
func syntheticStream(n, inject int) [][]byte {
	templates := []string{
		"INFO http request method=GET path=/api/orders/%d status=200 duration_ms=%d",
		"INFO cache hit key=user:%d ttl=%d",
		"INFO worker %d finished job in %d ms",
		"DEBUG pool stats idle=%d busy=%d",
	}
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		if i == inject {
			out = append(out, []byte("ERROR payment gateway refused connection: TLS handshake timeout after 30s"))
			continue
		}
		t := templates[(i*7+i/3)%len(templates)]
		out = append(out, []byte(fmt.Sprintf(t, (i*31)%97, (i*17)%13)))
	}
	return out
}

func scoreAll(t *testing.T, cfg Config, lines [][]byte, opts ...Option) []Result {
	t.Helper()
	d, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Result, len(lines))
	for i, l := range lines {
		out[i] = d.Score("s", Record{Data: l})
	}
	return out
}

func TestNovelTemplateFlaggedAndCleanStreamNot(t *testing.T) {
	with := scoreAll(t, DefaultConfig(), syntheticStream(1500, 900))
	if !with[900].Anomaly {
		t.Fatalf("injected novel template not flagged: %+v", with[900])
	}
	if with[900].Explanation == "" || with[900].PValue >= 0.01 {
		t.Fatalf("anomaly lacks explanation or small p-value: %+v", with[900])
	}
	clean := scoreAll(t, DefaultConfig(), syntheticStream(1500, -1))
	for i, r := range clean {
		if r.Anomaly {
			t.Fatalf("clean stream flagged record %d: %s", i, r.Explanation)
		}
	}
	// Nothing is flagged while the baseline warms up.
	for i, r := range with[:DefaultConfig().Warmup] {
		if r.Anomaly || !r.Calibrating {
			t.Fatalf("record %d during warm-up: anomaly=%v calibrating=%v", i, r.Anomaly, r.Calibrating)
		}
	}
}

func TestDeterministic(t *testing.T) {
	lines := syntheticStream(2000, 1200)
	a := scoreAll(t, DefaultConfig(), lines)
	b := scoreAll(t, DefaultConfig(), lines)
	for i := range a {
		wa, wb := a[i].Window, b[i].Window
		ra, rb := a[i], b[i]
		ra.Window, rb.Window = nil, nil
		if ra != rb || (wa == nil) != (wb == nil) || (wa != nil && *wa != *wb) {
			t.Fatalf("record %d differs between runs:\n%+v\n%+v", i, a[i], b[i])
		}
	}
}

func TestWindowFiguresEveryHop(t *testing.T) {
	cfg := DefaultConfig()
	res := scoreAll(t, cfg, syntheticStream(4*cfg.Hop, -1))
	for i, r := range res {
		want := (i+1)%cfg.Hop == 0
		if (r.Window != nil) != want {
			t.Fatalf("record %d: window=%v, want %v", i, r.Window != nil, want)
		}
		if r.Window != nil && i >= 2*cfg.Hop {
			w := r.Window
			if w.NCD <= 0 || w.NCD > 1.2 || w.CompressionRatio <= 0 || w.CompressionRatio >= 1 || w.Entropy <= 0 || w.Entropy > 8 {
				t.Fatalf("implausible window figures at %d: %+v", i, *w)
			}
		}
	}
}

func TestSustainedDriftRebasesOnce(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AdmitAfter = 0 // anomalies never admitted: only the drift rule can rebase
	d, _ := New(cfg)
	for _, l := range syntheticStream(1000, -1) {
		d.Score("s", Record{Data: l})
	}
	rebases, drifts := 0, 0
	for i := 0; i < 20*cfg.Hop; i++ {
		r := d.Score("s", Record{Data: []byte(fmt.Sprintf("kernel: EXT4-fs error (device sda%d): htree_dirblock_to_tree: bad entry in directory #%d: rec_len is smaller than minimal", i%3, i%11))})
		if r.Window != nil && r.Window.Drift {
			drifts++
		}
		if r.Window != nil && r.Window.Rebased {
			rebases++
		}
	}
	if drifts < cfg.DriftWindows || rebases != 1 {
		t.Fatalf("new regime: %d drifting windows, %d rebases; want >= %d and exactly 1", drifts, rebases, cfg.DriftWindows)
	}
	if got := d.Stats().DriftEvents; got != 1 {
		t.Fatalf("drift events = %d, want 1", got)
	}
}

func TestSeverityIsEvidenceNotVerdict(t *testing.T) {
	// A FATAL line that the stream has seen many times is not flagged:
	// severity alone never decides.
	var lines [][]byte
	for i := 0; i < 1200; i++ {
		if i%10 == 0 {
			lines = append(lines, []byte("RAS KERNEL FATAL machine check interrupt"))
		} else {
			lines = append(lines, []byte(fmt.Sprintf("RAS KERNEL INFO generating core.%d", i%50)))
		}
	}
	for i, r := range scoreAll(t, DefaultConfig(), lines) {
		if r.Anomaly {
			t.Fatalf("record %d (%s) flagged although common: %s", i, lines[i], r.Explanation)
		}
	}
}

func TestRecurringKindAdmitted(t *testing.T) {
	lines := syntheticStream(1200, -1)
	novel := []byte("INFO new feature flag evaluated name=checkout-v2 result=on")
	for i := 0; i < 20; i++ {
		lines = append(lines, novel)
	}
	res := scoreAll(t, DefaultConfig(), lines)
	flagged := 0
	for _, r := range res[1200:] {
		if r.Anomaly {
			flagged++
		}
	}
	if flagged == 0 || flagged > 3 {
		t.Fatalf("a new info-level kind repeated 20 times was flagged %d times; want 1..3", flagged)
	}
}

func TestSnapshotRestoreResumes(t *testing.T) {
	lines := syntheticStream(3000, 2500)
	d1, _ := New(DefaultConfig())
	for _, l := range lines[:2000] {
		d1.Score("s", Record{Data: l})
	}
	for i := 0; i < 3000; i++ {
		d1.ScoreValue("m", time.Time{}, float64(i%100))
	}
	var buf bytes.Buffer
	if err := d1.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	d2, _ := New(DefaultConfig())
	if err := d2.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	for i, l := range lines[2000:] {
		a := d1.Score("s", Record{Data: l})
		b := d2.Score("s", Record{Data: l})
		if a.Anomaly != b.Anomaly || a.Calibrating || b.Calibrating || math.Abs(a.Score-b.Score) > 1e-9 || a.PValue != b.PValue {
			t.Fatalf("record %d after restore: original %+v, restored %+v", 2000+i, a, b)
		}
	}
	a := d1.ScoreValue("m", time.Time{}, 5000)
	b := d2.ScoreValue("m", time.Time{}, 5000)
	if !a.Anomaly || !b.Anomaly || a.Score != b.Score {
		t.Fatalf("numeric after restore: original %+v, restored %+v", a, b)
	}
	// A snapshot from other settings is refused, not misread.
	cfg := DefaultConfig()
	cfg.Hop = 32
	d3, _ := New(cfg)
	if err := d3.Restore(bytes.NewReader(buf.Bytes())); err == nil {
		t.Fatal("restore with a different hop succeeded")
	}
	if err := d3.Restore(bytes.NewReader([]byte("garbage"))); err == nil {
		t.Fatal("restore of garbage succeeded")
	}
}

func TestEvictionBounds(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxStreams = 100
	cfg.IdleTimeout = time.Minute
	d, _ := New(cfg)
	t0 := time.Unix(1700000000, 0)
	for i := 0; i < 1000; i++ {
		d.Score(fmt.Sprintf("svc-%d", i), Record{Data: []byte("hello"), Time: t0})
	}
	st := d.Stats()
	if st.ActiveStreams != 100 || st.EvictedStreams != 900 {
		t.Fatalf("LRU: active %d evicted %d, want 100 / 900", st.ActiveStreams, st.EvictedStreams)
	}
	// The most recently used streams survive.
	if d.StreamBytes("svc-999") == 0 || d.StreamBytes("svc-0") != 0 {
		t.Fatal("LRU evicted the wrong streams")
	}
	// Idle streams go once time moves past the timeout.
	d.Score("fresh", Record{Data: []byte("x"), Time: t0.Add(2 * time.Minute)})
	if st := d.Stats(); st.ActiveStreams != 1 {
		t.Fatalf("idle eviction left %d streams, want 1", st.ActiveStreams)
	}
}

func TestMemoryPerStreamBounded(t *testing.T) {
	d, _ := New(DefaultConfig())
	// Worst case: long, all-distinct records (every n-gram new).
	for i := 0; i < 5000; i++ {
		var b bytes.Buffer
		for k := 0; k < 80; k++ {
			fmt.Fprintf(&b, "w%dx%d ", i, k)
		}
		d.Score("wide", Record{Data: b.Bytes()})
	}
	if n := d.StreamBytes("wide"); n > 1<<20 {
		t.Fatalf("worst-case stream uses %d bytes, bound is 1 MiB", n)
	} else {
		t.Logf("worst-case text stream: %d KiB", n>>10)
	}
	for _, l := range syntheticStream(5000, -1) {
		d.Score("typical", Record{Data: l})
	}
	t.Logf("typical text stream: %d KiB", d.StreamBytes("typical")>>10)
	for i := 0; i < 5000; i++ {
		d.ScoreValue("series", time.Time{}, float64(i))
	}
	if n := d.StreamBytes("series"); n > 1<<20 {
		t.Fatalf("numeric stream uses %d bytes", n)
	} else {
		t.Logf("numeric stream: %d KiB", n>>10)
	}
}

func TestNumericPath(t *testing.T) {
	d, _ := New(DefaultConfig())
	t0 := time.Unix(0, 0)
	flagged := 0
	for i := 0; i < 3000; i++ {
		v := 50 + 10*math.Sin(float64(i)/20) + float64((i*7)%5)
		if d.ScoreValue("cpu", t0, v).Anomaly {
			flagged++
		}
	}
	if flagged > 10 {
		t.Fatalf("a regular series flagged %d of 3000 points", flagged)
	}
	if r := d.ScoreValue("cpu", t0, 500); !r.Anomaly || r.Explanation == "" {
		t.Fatalf("a spike far outside the range was not flagged: %+v", r)
	}
	if r := d.ScoreValue("cpu2", t0, math.NaN()); r.Anomaly {
		t.Fatalf("NaN flagged on a calibrating stream: %+v", r)
	}
	if r := d.ScoreValue("cpu", t0, math.Inf(1)); !r.Anomaly {
		t.Fatalf("+Inf not flagged on a ready stream: %+v", r)
	}
}

func TestConcurrentStreams(t *testing.T) {
	d, _ := New(DefaultConfig())
	lines := syntheticStream(600, 500)
	var wg sync.WaitGroup
	results := make([][]Result, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			key := fmt.Sprintf("s%d", g)
			for _, l := range lines {
				results[g] = append(results[g], d.Score(key, Record{Data: l}))
			}
		}(g)
	}
	wg.Wait()
	// Streams are independent: every goroutine saw the same verdicts.
	for g := 1; g < 8; g++ {
		for i := range lines {
			if results[g][i].Anomaly != results[0][i].Anomaly || results[g][i].Score != results[0][i].Score {
				t.Fatalf("stream s%d record %d differs from s0", g, i)
			}
		}
	}
	if got := d.Stats().Records; got != 8*600 {
		t.Fatalf("records = %d, want %d", got, 8*600)
	}
}

func TestHugeBinaryAndEmptyRecords(t *testing.T) {
	d, _ := New(DefaultConfig())
	huge := bytes.Repeat([]byte{0xff, 0x00, 'a', 0xc3}, 4<<20) // 16 MiB, invalid UTF-8
	for i := 0; i < 100; i++ {
		d.Score("x", Record{Data: huge})
		d.Score("x", Record{Data: nil})
	}
	if r := d.Score("x", Record{}); math.IsNaN(r.Score) || math.IsInf(r.Score, 0) {
		t.Fatalf("empty record score %v", r.Score)
	}
}

func TestRealLogsFalsePositiveRate(t *testing.T) {
	lines := testutil.LogLines(t, "OpenSSH_2k.log")
	res := scoreAll(t, DefaultConfig(), lines)
	n := 0
	for _, r := range res {
		if r.Anomaly {
			n++
		}
	}
	if rate := float64(n) / float64(len(res)); rate > 0.03 {
		t.Fatalf("OpenSSH sample: %.2f%% flagged, want <= 3%%", 100*rate)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Check(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := []func(*Config){
		func(c *Config) { c.Compressor = "lzma" },
		func(c *Config) { c.PValue = 0 },
		func(c *Config) { c.PValue = 1 },
		func(c *Config) { c.Hop = 1 },
		func(c *Config) { c.Hop = c.BaselineSize + 1 },
		func(c *Config) { c.MaxStreams = 0 },
		func(c *Config) { c.IdleTimeout = -time.Second },
		func(c *Config) { c.MinEffect = -1 },
		func(c *Config) { c.AdmitAfter = -1 },
		func(c *Config) { c.MaxRecordBytes = 1 },
		func(c *Config) { c.Warmup = c.BaselineSize + 1 }, // would never leave warm-up
		func(c *Config) { c.Permutations = 50 },           // could never show drift
		func(c *Config) { c.FlagBudget = -1 },
		func(c *Config) { c.FlagBudget = math.NaN() },
		func(c *Config) { c.RateBucket = time.Millisecond },
		func(c *Config) { c.RateBucket = 2 * time.Hour },
		func(c *Config) { c.RatePValue = 0 },
	}
	for i, mut := range bad {
		c := DefaultConfig()
		mut(&c)
		if err := c.Check(); err == nil {
			t.Errorf("case %d: invalid config accepted: %+v", i, c)
		}
	}
	off := DefaultConfig()
	off.Permutations = 0 // no drift test at all is a valid choice
	off.RateBucket = 0   // nor is stream-level evidence required
	off.FlagBudget = 0
	if err := off.Check(); err != nil {
		t.Fatalf("permutations, rate_bucket and flag_budget 0 rejected: %v", err)
	}
	bucket := DefaultConfig()
	bucket.RateBucket = time.Millisecond
	if err := bucket.Check(); err == nil || !strings.Contains(err.Error(), "rate_bucket") {
		t.Fatalf("a bad rate_bucket's error does not name it: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New accepted the zero config")
	}
}

func TestScoreAllocatesNothingInSteadyState(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items at random); run without -race, or see BenchmarkScoreVsS2's allocs/op")
	}
	d, _ := New(DefaultConfig())
	lines := syntheticStream(3000, -1)
	// Timed records: the stream-level path (counts per kind and bucket)
	// must not allocate either once the stream is warm.
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, l := range lines[:2000] {
		clock = clock.Add(time.Second)
		d.Score("s", Record{Data: l, Time: clock})
	}
	i := 2000
	allocs := testing.AllocsPerRun(500, func() {
		clock = clock.Add(time.Second)
		d.Score("s", Record{Data: lines[i], Time: clock})
		i++
	})
	if allocs > 0.05 {
		t.Fatalf("%.2f allocations per normal record in steady state, want 0", allocs)
	}
}

// The drift test compares a window with the normal records before it:
// the reference ring must never hold a record of the current window.
func TestReferencePrecedesWindow(t *testing.T) {
	cfg := DefaultConfig()
	d, _ := New(cfg)
	word := func(i int) string { // letters only, so canonicalization keeps it
		b := []byte{}
		for i++; i > 0; i /= 26 {
			b = append(b, byte('a'+i%26))
		}
		return string(b)
	}
	for i := 0; i < 5*cfg.Hop+7; i++ {
		d.Score("s", Record{Data: []byte("GET /items status ok rec " + word(i))})
	}
	st := d.streams["s"]
	inWindow := map[string]bool{}
	for i := 0; i < st.window.n; i++ {
		inWindow[string(st.window.at(i).text)] = true
	}
	if st.ref.n == 0 {
		t.Fatal("reference ring is empty after 5 windows")
	}
	for i := 0; i < st.ref.n; i++ {
		if inWindow[string(st.ref.at(i).text)] {
			t.Fatalf("reference record %q is also in the current window", st.ref.at(i).text)
		}
	}
}

// TestInNanoRangeMatchesCalendar: the fast path of inNanoRange gives the
// calendar's answer (years 1679 to 2261 in the time's own zone) around
// both ends of the range, in zones either side of UTC, and far inside.
func TestInNanoRangeMatchesCalendar(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("east", 14*3600), time.FixedZone("west", -12*3600)}
	for _, loc := range zones {
		for _, y := range []int{1, 1677, 1678, 1679, 1680, 2000, 2026, 2260, 2261, 2262, 2263, 9999} {
			for _, h := range []int{-50, -30, -1, 0, 1, 11, 23, 30, 50} {
				for _, base := range []time.Time{time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(y, 12, 31, 0, 0, 0, 0, time.UTC)} {
					tm := base.Add(time.Duration(h) * time.Hour).In(loc)
					want := tm.Year() > 1678 && tm.Year() < 2262
					if got := inNanoRange(tm); got != want {
						t.Fatalf("inNanoRange(%v) = %v, want %v", tm, got, want)
					}
				}
			}
		}
	}
}

// TestWindowReusesLastWindowSize: when every record of the last window
// moved on to the reference block, the window test takes that window's
// compressed size instead of compressing the block again. The NCD and
// compression ratios it reports must be those computed from scratch, and
// the reuse must actually happen on a stream with few flags.
func TestWindowReusesLastWindowSize(t *testing.T) {
	d, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	lines := syntheticStream(3000, 1500)
	reused := 0
	for _, l := range lines {
		st := d.acquire("s", time.Time{})
		willReuse := st.lastWindowC > 0 && st.movedSinceClose == len(st.window.slots)-1 && !st.window.at(0).flagged
		st.mu.Unlock()
		r := d.Score("s", Record{Data: l})
		if r.Window == nil || r.Window.NCD == 0 {
			continue
		}
		if willReuse {
			reused++
		}
		st = d.acquire("s", time.Time{})
		var x, y []byte
		for i := 0; i < st.ref.n; i++ {
			x = append(x, st.ref.at(i).text...)
		}
		for i := 0; i < st.window.n; i++ {
			y = append(y, st.window.at(i).text...)
		}
		st.mu.Unlock()
		if r.Window.Rebased || r.Window.Drift {
			continue // the rings were not touched, but keep the check simple
		}
		var sc scratch
		v, cx, cy := sc.ncdOf(x, y)
		if v != r.Window.NCD || float64(cx)/float64(len(x)) != r.Window.BaselineCompressionRatio || float64(cy)/float64(len(y)) != r.Window.CompressionRatio {
			t.Fatalf("record %d: window NCD %v ratios %v %v, from scratch %v %v %v",
				r.Index, r.Window.NCD, r.Window.BaselineCompressionRatio, r.Window.CompressionRatio, v, float64(cx)/float64(len(x)), float64(cy)/float64(len(y)))
		}
	}
	if reused == 0 {
		t.Fatal("no window reused the last window's compressed size: the test exercised nothing")
	}
	t.Logf("%d windows reused the last window's size", reused)
}
