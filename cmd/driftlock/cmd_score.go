package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/driftlock/driftlock/internal/cbad"
)

func init() {
	register(command{name: "score", summary: "run the detector over a file (one stream, in order); JSON Lines out", run: runScore})
}

// maxLineBytes bounds one input line; longer lines are an error naming the line.
const maxLineBytes = 16 << 20

// scoreOut is one output line of `driftlock score`.
type scoreOut struct {
	Index       int      `json:"index"`
	Timestamp   string   `json:"timestamp,omitempty"`
	Value       *float64 `json:"value,omitempty"`
	Score       float64  `json:"score"`
	PValue      float64  `json:"p_value"`
	Anomaly     bool     `json:"anomaly"`
	Calibrating bool     `json:"calibrating,omitempty"`
	Explanation string   `json:"explanation,omitempty"`
	NCD         *float64 `json:"ncd,omitempty"`
	Drift       bool     `json:"drift,omitempty"`
	Rebased     bool     `json:"rebased,omitempty"`
}

func runScore(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "lines", "input format: lines (one record per line) or csv (timestamp,value)")
	stream := fs.String("stream", "score", "stream key (all input is one stream)")
	strict := fs.Bool("strict", false, "stop at the first row that cannot be scored (default: report it on stderr with file:line and skip it)")
	dc := detectorFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: driftlock score [--format lines|csv] [--strict] [--config FILE] [flags] [FILE|-]")
		fs.PrintDefaults()
	}
	if err := dc.parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: one input file at most, got %d", errUsage, fs.NArg())
	}
	if *format != "lines" && *format != "csv" {
		return fmt.Errorf("%w: --format must be lines or csv, got %q", errUsage, *format)
	}
	cfg, err := dc.config()
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var in io.Reader = os.Stdin
	name := "-"
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		name = fs.Arg(0)
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	d, err := cbad.New(cfg)
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(in, 64<<10)
	if reason := notText(br); reason != "" {
		fmt.Fprintf(stderr, "driftlock score: warning: %s does not look like text (%s); scoring it anyway\n", name, reason)
	}
	w := bufio.NewWriterSize(stdout, 64<<10)
	defer w.Flush()
	run := &scoreRun{d: d, stream: *stream, name: name, enc: json.NewEncoder(w), stderr: stderr, strict: *strict}
	if *format == "csv" {
		err = run.csv(br)
	} else {
		err = run.lines(br)
	}
	if err == nil && run.skipped > 0 {
		w.Flush()
		fmt.Fprintf(stderr, "driftlock score: %s: %d row(s) skipped (listed above; --strict stops at the first)\n", name, run.skipped)
	}
	return err
}

// sniffBytes is how much of the input notText looks at.
const sniffBytes = 8 << 10

// notText says why the start of the input looks binary (a NUL byte, or
// bytes that are not UTF-8), or "" when it looks like text. It only peeks.
func notText(br *bufio.Reader) string {
	head, _ := br.Peek(sniffBytes)
	if i := bytes.IndexByte(head, 0); i >= 0 {
		return fmt.Sprintf("NUL byte at offset %d", i)
	}
	for i := 0; i < len(head); {
		r, n := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && n == 1 && len(head)-i >= utf8.UTFMax {
			return fmt.Sprintf("invalid UTF-8 at offset %d", i)
		}
		i += n
	}
	return ""
}

// scoreRun scores one input as one stream. A row that cannot be scored (a
// bad value, a non-finite number, a line over maxLineBytes, a malformed
// CSV row) is a rowError: with --strict it ends the run, otherwise it is
// reported on stderr with file:line and skipped.
type scoreRun struct {
	d       *cbad.Detector
	stream  string
	name    string
	enc     *json.Encoder
	stderr  io.Writer
	strict  bool
	skipped int
}

// rowError is a row that cannot be scored.
type rowError struct {
	name string
	line int
	msg  string
}

func (e *rowError) Error() string { return fmt.Sprintf("%s:%d: %s", e.name, e.line, e.msg) }

// bad handles a row that cannot be scored: the run's error with --strict,
// else a line on stderr and nil.
func (s *scoreRun) bad(line int, format string, args ...any) error {
	err := &rowError{name: s.name, line: line, msg: fmt.Sprintf(format, args...)}
	if s.strict {
		return err
	}
	s.skipped++
	fmt.Fprintf(s.stderr, "driftlock score: %v (skipped)\n", err)
	return nil
}

// emit writes one output line. A result the detector could not express as
// finite numbers is refused (JSON has no NaN or Inf) and nothing is written.
func (s *scoreRun) emit(o scoreOut, r cbad.Result) (ok bool, err error) {
	o.Score, o.PValue, o.Anomaly, o.Calibrating, o.Explanation = round(r.Score), r.PValue, r.Anomaly, r.Calibrating, r.Explanation
	if r.Window != nil && r.Window.Drift {
		v := round(r.Window.NCD)
		o.NCD, o.Drift, o.Rebased = &v, true, r.Window.Rebased
	}
	if !finite(o.Score) || !finite(o.PValue) || (o.NCD != nil && !finite(*o.NCD)) {
		return false, nil
	}
	return true, s.enc.Encode(o)
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// round keeps outputs short and byte-stable across platforms.
func round(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 6, 64), 64)
	return v
}

func (s *scoreRun) lines(br *bufio.Reader) error {
	for i := 0; ; i++ {
		line, err := readLine(br)
		if err == io.EOF {
			return nil
		}
		var long *lineTooLongError
		if errors.As(err, &long) {
			if err := s.bad(i+1, "%v", err); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", s.name, i+1, err)
		}
		ok, err := s.emit(scoreOut{Index: i}, s.d.Score(s.stream, cbad.Record{Data: line}))
		if err != nil {
			return err
		}
		if !ok {
			if err := s.bad(i+1, "the detector produced a non-finite score"); err != nil {
				return err
			}
		}
	}
}

// lineTooLongError is a line over maxLineBytes; readLine has skipped it.
type lineTooLongError struct{}

func (*lineTooLongError) Error() string {
	return fmt.Sprintf("line longer than %d bytes", maxLineBytes)
}

// readLine returns the next line without its newline (and \r). A line over
// maxLineBytes is consumed and reported as a *lineTooLongError.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong {
			buf = append(buf, chunk...)
			if len(buf) > maxLineBytes {
				tooLong, buf = true, nil
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if tooLong && (err == nil || err == io.EOF) {
			return nil, &lineTooLongError{}
		}
		if err == io.EOF {
			if len(buf) == 0 {
				return nil, io.EOF
			}
			return trimEOL(buf), nil
		}
		if err != nil {
			return nil, err
		}
		return trimEOL(buf), nil
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

func (s *scoreRun) csv(in io.Reader) error {
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	// index counts data rows, skipped ones included, so it maps back to
	// the input (data row index+1 is on line index+2 without multi-line
	// quoted fields).
	index := -1
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			if row == 1 {
				return fmt.Errorf("%s: empty input, want a header timestamp,value", s.name)
			}
			return nil
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) && row > 1 {
			index++
			if err := s.bad(perr.StartLine, "%v", perr.Err); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		line, _ := cr.FieldPos(0) // only valid after a successful Read
		if row > 1 {
			index++
		}
		if row == 1 {
			if len(rec) < 2 || strings.TrimSpace(rec[0]) != "timestamp" || strings.TrimSpace(rec[1]) != "value" {
				return fmt.Errorf("%s:%d: want header timestamp,value, got %q", s.name, line, strings.Join(rec, ","))
			}
			continue
		}
		if len(rec) != 2 {
			if err := s.bad(line, "want 2 fields (timestamp,value), got %d", len(rec)); err != nil {
				return err
			}
			continue
		}
		ts, err := parseTime(rec[0])
		if err != nil {
			if err := s.bad(line, "bad timestamp %q", rec[0]); err != nil {
				return err
			}
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil || !finite(v) {
			if err := s.bad(line, "bad value %q: want a finite number", rec[1]); err != nil {
				return err
			}
			continue
		}
		val := v
		ok, err := s.emit(scoreOut{Index: index, Timestamp: rec[0], Value: &val}, s.d.ScoreValue(s.stream, ts, v))
		if err != nil {
			return err
		}
		if !ok {
			if err := s.bad(line, "the detector produced a non-finite score for value %q", rec[1]); err != nil {
				return err
			}
		}
	}
}

func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04:05", time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(n*1e9)).UTC(), nil
	}
	return time.Time{}, errors.New("unrecognised timestamp")
}
