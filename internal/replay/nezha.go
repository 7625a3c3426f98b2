package replay

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"container/heap"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// NezhaSource replays one day of the Nezha dataset (IntelligentDDS/Nezha,
// TrainTicket): log.tgz, trace.tgz and metric.tgz from DIR, converted to
// records keyed by service and pod, merged into one time-ordered stream
// with the original timestamps.
//
// The archives are extracted to a temporary folder first (their members
// are not stored in time order and gzip cannot seek); Close removes it.
type NezhaSource struct {
	tmp string
	h   srcHeap
	bad badRows
}

// NezhaSignals selects which archives to read.
type NezhaSignals struct{ Logs, Traces, Metrics bool }

// AllSignals reads logs, traces and metrics.
var AllSignals = NezhaSignals{true, true, true}

// OpenNezha extracts the selected archives of dir and returns the merged
// source. Missing archives are an error naming the file.
func OpenNezha(dir string, sig NezhaSignals, warn io.Writer) (*NezhaSource, error) {
	tmp, err := os.MkdirTemp("", "driftlock-nezha-")
	if err != nil {
		return nil, err
	}
	n := &NezhaSource{tmp: tmp, bad: badRows{warn: warn}}
	type part struct {
		on      bool
		archive string
		sub     string
		open    func([]string) (Source, error)
	}
	parts := []part{
		{sig.Logs, "log.tgz", "log", func(f []string) (Source, error) { return &fileSeq{files: f, read: readNezhaLogs, bad: &n.bad}, nil }},
		{sig.Traces, "trace.tgz", "trace", func(f []string) (Source, error) { return &fileSeq{files: f, read: readNezhaTraces, bad: &n.bad}, nil }},
		{sig.Metrics, "metric.tgz", "metric", func(f []string) (Source, error) { return readNezhaMetrics(f, &n.bad) }},
	}
	for _, p := range parts {
		if !p.on {
			continue
		}
		if err := untar(filepath.Join(dir, p.archive), tmp); err != nil {
			n.Close()
			return nil, err
		}
		files, _ := filepath.Glob(filepath.Join(tmp, p.sub, "*.csv"))
		if len(files) == 0 {
			n.Close()
			return nil, fmt.Errorf("%s: no CSV files under %s/", filepath.Join(dir, p.archive), p.sub)
		}
		// HH_MM_*.csv names sort in time order; the minute buckets are only
		// approximate, so each file is also sorted by the records' own time.
		sort.Strings(files)
		src, err := p.open(files)
		if err != nil {
			n.Close()
			return nil, err
		}
		if err := n.h.push(src); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// Next returns the earliest pending record across the signals.
func (n *NezhaSource) Next() (Record, error) {
	if n.h.Len() == 0 {
		return Record{}, io.EOF
	}
	top := n.h[0]
	r := top.cur
	next, err := top.src.Next()
	switch {
	case errors.Is(err, io.EOF):
		heap.Pop(&n.h)
	case err != nil:
		return Record{}, err
	default:
		top.cur = next
		heap.Fix(&n.h, 0)
	}
	return r, nil
}

// Skipped is the number of input rows skipped as unparseable so far.
func (n *NezhaSource) Skipped() int { return n.bad.n }

// Close removes the extracted files.
func (n *NezhaSource) Close() error { return os.RemoveAll(n.tmp) }

type peeked struct {
	src Source
	cur Record
}

type srcHeap []*peeked

func (h srcHeap) Len() int           { return len(h) }
func (h srcHeap) Less(i, j int) bool { return h[i].cur.Time.Before(h[j].cur.Time) }
func (h srcHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *srcHeap) Push(x any)        { *h = append(*h, x.(*peeked)) }
func (h *srcHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h *srcHeap) push(s Source) error {
	r, err := s.Next()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return err
	}
	heap.Push(h, &peeked{src: s, cur: r})
	return nil
}

// untar extracts the regular .csv members of a .tgz into dst.
func untar(path, dst string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		name := filepath.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || !strings.HasSuffix(name, ".csv") || strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			continue
		}
		out := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		w, err := os.Create(out)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, tr)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, h.Name, err)
		}
	}
}

// fileSeq reads files one after another; each file's records are sorted by time.
type fileSeq struct {
	files []string
	read  func(path string, bad *badRows) ([]Record, error)
	bad   *badRows
	buf   []Record
}

func (s *fileSeq) Next() (Record, error) {
	for len(s.buf) == 0 {
		if len(s.files) == 0 {
			return Record{}, io.EOF
		}
		recs, err := s.read(s.files[0], s.bad)
		if err != nil {
			return Record{}, err
		}
		s.files = s.files[1:]
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
		s.buf = recs
	}
	r := s.buf[0]
	s.buf = s.buf[1:]
	return r, nil
}

// badRows collects rows that could not be parsed. The real dataset has a
// few corrupt lines (two log lines spliced together); one of them must not
// abort a day-long replay, so such rows are skipped, counted and reported
// by file and line instead.
type badRows struct {
	n    int
	warn io.Writer
}

func (b *badRows) add(path string, line int, err error) {
	b.n++
	if b.warn != nil {
		fmt.Fprintf(b.warn, "replay: skipped %s line %d: %v\n", filepath.Base(path), line, err)
	}
}

// readCSV reads a CSV file whose records are one physical line each and
// maps each row with fn. A missing header column is an error; a row that
// does not parse is skipped and reported through bad.
func readCSV(path string, want []string, bad *badRows, fn func(row []string, col map[string]int) (Record, error)) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 256<<10), 16<<20)
	if !sc.Scan() {
		return nil, fmt.Errorf("%w: %s: empty file (no header)", ErrBadRecord, path)
	}
	header, err := csv.NewReader(strings.NewReader(sc.Text())).Read()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: header: %v", ErrBadRecord, path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimPrefix(h, "\ufeff")] = i
	}
	for _, w := range want {
		if _, ok := col[w]; !ok {
			return nil, fmt.Errorf("%w: %s: missing column %q", ErrBadRecord, path, w)
		}
	}
	var out []Record
	for line := 2; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		row, err := csv.NewReader(strings.NewReader(sc.Text())).Read()
		if err == nil && len(row) != len(header) {
			err = fmt.Errorf("%d fields, header has %d", len(row), len(header))
		}
		if err != nil {
			bad.add(path, line, err)
			continue
		}
		r, err := fn(row, col)
		if err != nil {
			bad.add(path, line, err)
			continue
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadRecord, path, err)
	}
	return out, nil
}

func unixNano(s string) (time.Time, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad unix-nano time %q", s)
	}
	return time.Unix(0, n).UTC(), nil
}

func hexID(dst []byte, s string) error {
	s = strings.TrimSpace(s)
	if s == "" || s == "root" {
		return nil
	}
	if len(s) != 2*len(dst) {
		return fmt.Errorf("id %q: want %d hex digits", s, 2*len(dst))
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// ServiceOfPod derives the Kubernetes workload (service) name from a pod
// name: "ts-order-service-5b67c48447-mv5hb" -> "ts-order-service".
func ServiceOfPod(pod string) string {
	parts := strings.Split(pod, "-")
	isID := func(s string, min, max int) bool {
		if len(s) < min || len(s) > max {
			return false
		}
		for _, r := range s {
			if !unicode.IsDigit(r) && !(r >= 'a' && r <= 'z') {
				return false
			}
		}
		return true
	}
	if n := len(parts); n >= 3 && isID(parts[n-1], 5, 5) && isID(parts[n-2], 6, 10) {
		return strings.Join(parts[:n-2], "-")
	}
	if n := len(parts); n >= 2 && isID(parts[n-1], 5, 5) {
		return strings.Join(parts[:n-1], "-")
	}
	return pod
}

func readNezhaLogs(path string, bad *badRows) ([]Record, error) {
	return readCSV(path, []string{"TimeUnixNano", "PodName", "TraceID", "SpanID", "Log"}, bad, func(row []string, c map[string]int) (Record, error) {
		t, err := logTime(row, c)
		if err != nil {
			return Record{}, err
		}
		pod := row[c["PodName"]]
		r := Record{Signal: Logs, Time: t, Service: ServiceOfPod(pod), Pod: pod}
		// Log is a container-runtime JSON line: {"log": "...", "stream": ...}.
		raw := row[c["Log"]]
		var cl struct {
			Log    string `json:"log"`
			Stream string `json:"stream"`
		}
		if err := json.Unmarshal([]byte(raw), &cl); err == nil && cl.Log != "" {
			r.Body = strings.TrimRight(cl.Log, "\r\n")
			if cl.Stream != "" {
				r.Attrs = map[string]any{"log.iostream": cl.Stream}
			}
		} else {
			r.Body = raw
		}
		if c, ok := c["Container"]; ok && row[c] != "" {
			if r.Attrs == nil {
				r.Attrs = map[string]any{}
			}
			r.Attrs["k8s.container.name"] = row[c]
		}
		r.Severity, r.SeverityText = SeverityOf(r.Body)
		if err := hexID(r.TraceID[:], row[c["TraceID"]]); err != nil {
			return Record{}, err
		}
		if err := hexID(r.SpanID[:], row[c["SpanID"]]); err != nil {
			return Record{}, err
		}
		return r, nil
	})
}

// logTime takes TimeUnixNano, unless it is out of range: about 22,000 rows
// of the 2023-01-29 day (the exception bursts) carry an overflowed negative
// value there, while their Timestamp column ("2023-01-29T09:20:29.295",
// UTC, millisecond precision) is right.
func logTime(row []string, c map[string]int) (time.Time, error) {
	t, err := unixNano(row[c["TimeUnixNano"]])
	if err == nil && t.Year() >= 2000 && t.Year() < 2100 {
		return t, nil
	}
	if i, ok := c["Timestamp"]; ok {
		ts := strings.TrimSuffix(strings.TrimSpace(row[i]), "Z")
		if p, perr := time.Parse("2006-01-02T15:04:05.999999999", ts); perr == nil {
			return p.UTC(), nil
		}
	}
	if err == nil {
		err = fmt.Errorf("TimeUnixNano %s is out of range and Timestamp %q does not parse", row[c["TimeUnixNano"]], row[c["Timestamp"]])
	}
	return time.Time{}, err
}

func readNezhaTraces(path string, bad *badRows) ([]Record, error) {
	return readCSV(path, []string{"TraceID", "SpanID", "ParentID", "PodName", "OperationName", "StartTimeUnixNano", "EndTimeUnixNano"}, bad, func(row []string, c map[string]int) (Record, error) {
		start, err := unixNano(row[c["StartTimeUnixNano"]])
		if err != nil {
			return Record{}, err
		}
		end, err := unixNano(row[c["EndTimeUnixNano"]])
		if err != nil {
			return Record{}, err
		}
		pod := row[c["PodName"]]
		r := Record{Signal: Traces, Time: start, End: end, Service: ServiceOfPod(pod), Pod: pod,
			Name: row[c["OperationName"]], Kind: ptrace.SpanKindUnspecified}
		if err := hexID(r.TraceID[:], row[c["TraceID"]]); err != nil {
			return Record{}, err
		}
		if err := hexID(r.SpanID[:], row[c["SpanID"]]); err != nil {
			return Record{}, err
		}
		if err := hexID(r.ParentID[:], row[c["ParentID"]]); err != nil {
			return Record{}, err
		}
		if r.ParentID == [8]byte{} {
			r.Kind = ptrace.SpanKindServer
		}
		return r, nil
	})
}

// metricName maps a Nezha column such as "CpuUsage(m)" to ("cpu_usage", "m").
func metricName(col string) (string, string) {
	unit := ""
	if i := strings.IndexByte(col, '('); i >= 0 && strings.HasSuffix(col, ")") {
		unit = col[i+1 : len(col)-1]
		col = col[:i]
	}
	var b strings.Builder
	for i, r := range col {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String(), unit
}

// readNezhaMetrics loads every per-pod CSV (they are small) into one
// time-sorted slice: one record per row, one gauge point per numeric column.
func readNezhaMetrics(files []string, bad *badRows) (Source, error) {
	var all []Record
	for _, path := range files {
		recs, err := readCSVMetrics(path, bad)
		if err != nil {
			return nil, err
		}
		all = append(all, recs...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	return &sliceSource{recs: all}, nil
}

func readCSVMetrics(path string, bad *badRows) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	header, err := csv.NewReader(f).Read()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: header: %v", ErrBadRecord, path, err)
	}
	var numeric []int
	for i, h := range header {
		switch h {
		case "Time", "TimeStamp", "PodName", "ServiceName":
		default:
			numeric = append(numeric, i)
		}
	}
	return readCSV(path, []string{"TimeStamp"}, bad, func(row []string, c map[string]int) (Record, error) {
		t, err := metricTime(row, c)
		if err != nil {
			return Record{}, err
		}
		r := Record{Signal: Metrics, Time: t}
		if i, ok := c["PodName"]; ok {
			r.Pod = row[i]
			r.Service = ServiceOfPod(r.Pod)
		} else if i, ok := c["ServiceName"]; ok {
			r.Service = strings.ToLower(row[i])
		}
		for _, i := range numeric {
			v, err := strconv.ParseFloat(strings.TrimSpace(row[i]), 64)
			if err != nil {
				return Record{}, fmt.Errorf("column %s: bad number %q", header[i], row[i])
			}
			name, unit := metricName(header[i])
			r.Points = append(r.Points, Point{Name: "nezha." + name, Unit: unit, Value: v})
		}
		return r, nil
	})
}

// metricTime prefers the nanosecond "Time" column ("2023-01-29 08:41:09.043078357
// +0000 UTC m=+0.119..."), falling back to the whole-second TimeStamp.
func metricTime(row []string, c map[string]int) (time.Time, error) {
	if i, ok := c["Time"]; ok {
		if f := strings.Fields(row[i]); len(f) >= 3 {
			if t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700", f[0]+" "+f[1]+" "+f[2]); err == nil {
				return t.UTC(), nil
			}
		}
	}
	s, err := strconv.ParseInt(strings.TrimSpace(row[c["TimeStamp"]]), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad TimeStamp %q", row[c["TimeStamp"]])
	}
	return time.Unix(s, 0).UTC(), nil
}

type sliceSource struct{ recs []Record }

func (s *sliceSource) Next() (Record, error) {
	if len(s.recs) == 0 {
		return Record{}, io.EOF
	}
	r := s.recs[0]
	s.recs = s.recs[1:]
	return r, nil
}

// SliceSource replays a fixed list of records (tests, the synthetic generator).
func SliceSource(recs []Record) Source { return &sliceSource{recs: recs} }
