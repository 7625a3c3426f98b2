package cbad

import (
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/driftlock/driftlock/internal/testutil"
)

// benchLines returns real log lines from several loghub samples.
func benchLines(b *testing.B) [][]byte {
	var lines [][]byte
	for _, f := range []string{"HDFS_2k.log", "Apache_2k.log", "OpenSSH_2k.log", "Spark_2k.log"} {
		lines = append(lines, testutil.LogLines(b, f)...)
	}
	return lines
}

// BenchmarkScoreLogLines is the per-record cost of scoring real log lines
// at defaults, window tests included, on one stream per source file.
func BenchmarkScoreLogLines(b *testing.B) {
	lines := benchLines(b)
	d, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	keys := []string{"hdfs", "apache", "openssh", "spark"}
	// Warm every stream so that the steady state is measured.
	for i, l := range lines {
		d.Score(keys[i/2000], Record{Data: l})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(lines)
		d.Score(keys[j/2000], Record{Data: lines[j]})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkS2DictEncode is the baseline of the ratio: a bare s2 encode of
// the same lines with a dictionary of recent lines (what an LZ-based CBAD
// would spend at the least per record).
func BenchmarkS2DictEncode(b *testing.B) {
	lines := benchLines(b)
	var dictText []byte
	for _, l := range lines[:400] {
		dictText = append(append(dictText, l...), '\n')
	}
	dict := s2.MakeDict(dictText, nil)
	dst := make([]byte, s2.MaxEncodedLen(64<<10))
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for i := 0; i < b.N; i++ {
		n += len(dict.Encode(dst, lines[i%len(lines)]))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	_ = n
}

// BenchmarkScoreValue is the per-point cost of the numeric path.
func BenchmarkScoreValue(b *testing.B) {
	d, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Unix(0, 0)
	for i := 0; i < 5000; i++ {
		d.ScoreValue("s", t0, float64(i%288))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.ScoreValue("s", t0, float64(i%288)+float64(i%7))
	}
}

// BenchmarkCompressors compares the three cost models on the same lines.
func BenchmarkCompressors(b *testing.B) {
	lines := benchLines(b)
	for _, c := range []string{CompressorNgram, CompressorS2, CompressorZstd} {
		b.Run(c, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Compressor = c
			d, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			for _, l := range lines[:2000] {
				d.Score("k", Record{Data: l})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d.Score("k", Record{Data: lines[i%2000]})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkScoreVsS2 runs the detector and a bare s2 dictionary encode of
// the same lines in alternating blocks, so that both see the same machine
// load, and reports the cost ratio (target <= 3).
func BenchmarkScoreVsS2(b *testing.B) {
	lines := benchLines(b)
	d, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	keys := []string{"hdfs", "apache", "openssh", "spark"}
	// Records carry times, as in the processor, so the stream-level path
	// (counts per kind and time bucket) is measured too: 100 records/s.
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tick := func() time.Time { clock = clock.Add(10 * time.Millisecond); return clock }
	for i, l := range lines {
		d.Score(keys[i/2000], Record{Data: l, Time: tick()})
	}
	var dictText []byte
	for _, l := range lines[:400] {
		dictText = append(append(dictText, l...), '\n')
	}
	dict := s2.MakeDict(dictText, nil)
	dst := make([]byte, s2.MaxEncodedLen(64<<10))
	const block = 500
	var tScore, tS2 time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	j := 0
	for done := 0; done < b.N; done += block {
		start := j
		t0 := time.Now()
		for k := 0; k < block; k++ {
			jj := (start + k) % len(lines)
			dict.Encode(dst, lines[jj])
		}
		t1 := time.Now()
		for k := 0; k < block; k++ {
			jj := (start + k) % len(lines)
			d.Score(keys[jj/2000], Record{Data: lines[jj], Time: tick()})
		}
		t2 := time.Now()
		tS2 += t1.Sub(t0)
		tScore += t2.Sub(t1)
		j = (start + block) % len(lines)
	}
	b.ReportMetric(float64(tScore)/float64(tS2), "x_s2")
	b.ReportMetric(float64(b.N)/tScore.Seconds(), "records/s")
}
