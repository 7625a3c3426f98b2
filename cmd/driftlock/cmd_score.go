package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

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
	dc := detectorFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: driftlock score [--format lines|csv] [--config FILE] [flags] [FILE|-]")
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
	w := bufio.NewWriterSize(stdout, 64<<10)
	defer w.Flush()
	enc := json.NewEncoder(w)
	switch *format {
	case "lines":
		return scoreLines(d, *stream, name, in, enc)
	case "csv":
		return scoreCSV(d, *stream, name, in, enc)
	default:
		return fmt.Errorf("%w: --format must be lines or csv, got %q", errUsage, *format)
	}
}

func emit(enc *json.Encoder, o scoreOut, r cbad.Result) error {
	o.Score, o.PValue, o.Anomaly, o.Calibrating, o.Explanation = round(r.Score), r.PValue, r.Anomaly, r.Calibrating, r.Explanation
	if r.Window != nil && r.Window.Drift {
		v := round(r.Window.NCD)
		o.NCD, o.Drift, o.Rebased = &v, true, r.Window.Rebased
	}
	return enc.Encode(o)
}

// round keeps outputs short and byte-stable across platforms.
func round(x float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'f', 6, 64), 64)
	return v
}

func scoreLines(d *cbad.Detector, stream, name string, in io.Reader, enc *json.Encoder) error {
	br := bufio.NewReaderSize(in, 64<<10)
	for i := 0; ; i++ {
		line, err := readLine(br)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		r := d.Score(stream, cbad.Record{Data: line})
		if err := emit(enc, scoreOut{Index: i}, r); err != nil {
			return err
		}
	}
}

// readLine returns the next line without its newline (and \r), or an error
// for lines over maxLineBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLineBytes {
			return nil, fmt.Errorf("line longer than %d bytes", maxLineBytes)
		}
		if err == bufio.ErrBufferFull {
			continue
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
	b = []byte(strings.TrimSuffix(string(b), "\n"))
	return []byte(strings.TrimSuffix(string(b), "\r"))
}

func scoreCSV(d *cbad.Detector, stream, name string, in io.Reader, enc *json.Encoder) error {
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	idx := 0
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			if line == 1 {
				return fmt.Errorf("%s: empty input, want a header timestamp,value", name)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if line == 1 {
			if len(rec) < 2 || strings.TrimSpace(rec[0]) != "timestamp" || strings.TrimSpace(rec[1]) != "value" {
				return fmt.Errorf("%s:1: want header timestamp,value, got %q", name, strings.Join(rec, ","))
			}
			continue
		}
		if len(rec) != 2 {
			return fmt.Errorf("%s:%d: want 2 fields (timestamp,value), got %d", name, line, len(rec))
		}
		ts, err := parseTime(rec[0])
		if err != nil {
			return fmt.Errorf("%s:%d: bad timestamp %q", name, line, rec[0])
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[1]), 64)
		if err != nil {
			return fmt.Errorf("%s:%d: bad value %q", name, line, rec[1])
		}
		r := d.ScoreValue(stream, ts, v)
		val := v
		if err := emit(enc, scoreOut{Index: idx, Timestamp: rec[0], Value: &val}, r); err != nil {
			return err
		}
		idx++
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
