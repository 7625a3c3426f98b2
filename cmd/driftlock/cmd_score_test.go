package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	old := os.Stdin
	if stdin != "" {
		f := filepath.Join(t.TempDir(), "stdin")
		if err := os.WriteFile(f, []byte(stdin), 0o600); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		os.Stdin = in
		defer func() { os.Stdin = old }()
	}
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func logInput(n, inject int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i == inject {
			b.WriteString("ERROR payment gateway refused connection: TLS handshake timeout after 30s\n")
			continue
		}
		fmt.Fprintf(&b, "INFO request path=/api/items/%d status=200 took=%dms\n", i%40, i%9)
	}
	return b.String()
}

func TestScoreLinesJSONL(t *testing.T) {
	in := writeTemp(t, "app.log", logInput(600, 400))
	out, errs, code := runCLI(t, "", "score", in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	i := 0
	for sc.Scan() {
		var o map[string]any
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("line %d not JSON: %v", i, err)
		}
		if int(o["index"].(float64)) != i {
			t.Fatalf("line %d has index %v (out of order)", i, o["index"])
		}
		for _, k := range []string{"score", "p_value", "anomaly"} {
			if _, ok := o[k]; !ok {
				t.Fatalf("line %d lacks %q: %s", i, k, sc.Text())
			}
		}
		if i == 400 && (o["anomaly"] != true || o["explanation"] == nil) {
			t.Fatalf("injected line not flagged with an explanation: %s", sc.Text())
		}
		i++
	}
	if i != 600 {
		t.Fatalf("%d output lines for 600 input lines", i)
	}
	// Same input, same output: byte for byte, also from stdin.
	again, _, _ := runCLI(t, logInput(600, 400), "score", "-")
	if again != out {
		t.Fatal("stdin run differs from file run")
	}
}

func TestScoreCSV(t *testing.T) {
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	for i := 0; i < 3000; i++ {
		v := 10 + i%7
		if i == 2500 {
			v = 900
		}
		fmt.Fprintf(&b, "2020-01-01 %02d:%02d:00,%d\n", (i/60)%24, i%60, v)
	}
	out, errs, code := runCLI(t, "", "score", "--format", "csv", writeTemp(t, "s.csv", b.String()))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3000 {
		t.Fatalf("%d output lines, want 3000", len(lines))
	}
	var o map[string]any
	_ = json.Unmarshal([]byte(lines[2500]), &o)
	if o["anomaly"] != true || o["timestamp"] != "2020-01-01 17:40:00" {
		t.Fatalf("spike not flagged or timestamp missing: %s", lines[2500])
	}
}

func TestScoreErrors(t *testing.T) {
	cases := []struct {
		name, input string
		args        []string
		code        int
		want        string
	}{
		{"missing file", "", []string{"score", "/no/such/file.log"}, 1, "no such file"},
		{"bad flag", "", []string{"score", "--p-value", "2", "x"}, 2, "p_value"},
		{"bad format", "", []string{"score", "--format", "xml"}, 2, "--format"},
		{"csv header", "a,b\n1,2\n", []string{"score", "--format", "csv"}, 1, ":1: want header"},
		{"csv value", "timestamp,value\n2020-01-01 00:00:00,1\n2020-01-01 00:01:00,abc\n", []string{"score", "--format", "csv", "--strict"}, 1, ":3: bad value"},
		{"csv time", "timestamp,value\nyesterday,1\n", []string{"score", "--format", "csv", "--strict"}, 1, ":2: bad timestamp"},
		{"csv fields", "timestamp,value\n2020-01-01 00:00:00,1,3\n", []string{"score", "--format", "csv", "--strict"}, 1, ":2: want 2 fields"},
		{"csv NaN", "timestamp,value\n2020-01-01 00:00:00,NaN\n", []string{"score", "--format", "csv", "--strict"}, 1, ":2: bad value \"NaN\""},
		{"bad config", "", []string{"score", "--config", "/no/such.yaml"}, 2, "--config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs, code := runCLI(t, c.input, c.args...)
			if code != c.code || !strings.Contains(errs, c.want) {
				t.Fatalf("exit %d stderr %q; want exit %d mentioning %q", code, errs, c.code, c.want)
			}
		})
	}
}

// A row that cannot be scored is reported with file:line and skipped, the
// rest is scored; --strict stops at the first, after the rows before it.
// Never a JSON encoding error.
func TestScoreCSVBadRows(t *testing.T) {
	in := writeTemp(t, "s.csv", "timestamp,value\n"+
		"2020-01-01 00:00:00,1\n"+ // line 2
		"2020-01-01 00:01:00,NaN\n"+ // 3
		"2020-01-01 00:02:00,+Inf\n"+ // 4
		"2020-01-01 00:03:00,-inf\n"+ // 5
		"2020-01-01 00:04:00,abc\n"+ // 6
		"yesterday,2\n"+ // 7
		"2020-01-01 00:06:00,1,9\n"+ // 8
		"2020-01-01 00:07:00,\"3\"x\n"+ // 9: bare quote
		"2020-01-01 00:08:00,1e308\n"+ // 10
		"2020-01-01 00:09:00,4\n") // 11
	out, errs, code := runCLI(t, "", "score", "--format", "csv", in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{":3: bad value \"NaN\"", ":4: bad value \"+Inf\"", ":5: bad value \"-inf\"", ":6: bad value \"abc\"",
		":7: bad timestamp", ":8: want 2 fields", ":9: ", "7 row(s) skipped"} {
		if !strings.Contains(errs, in+want) && !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "json") || strings.Count(errs, "(skipped)") != 7 {
		t.Errorf("want 7 file:line reports and no JSON error:\n%s", errs)
	}
	var idx []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var o struct {
			Index int     `json:"index"`
			Value float64 `json:"value"`
		}
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Fatalf("output %q: %v", l, err)
		}
		idx = append(idx, fmt.Sprintf("%d:%g", o.Index, o.Value))
	}
	// index is the data row (skipped rows count), so output maps to input.
	if strings.Join(idx, " ") != "0:1 8:1e+308 9:4" {
		t.Fatalf("scored rows %v", idx)
	}

	out, errs, code = runCLI(t, "", "score", "--format", "csv", "--strict", in)
	if code != 1 || !strings.Contains(errs, in+":3: bad value \"NaN\"") || strings.Count(out, "\n") != 1 {
		t.Fatalf("--strict: exit %d, stderr %q, stdout %q", code, errs, out)
	}
}

// Binary input is scored (it may be what the user wants) but never
// silently: stderr says why it does not look like text.
func TestScoreWarnsOnBinaryInput(t *testing.T) {
	for _, c := range []struct {
		name, content, warn string
	}{
		{"text", logInput(50, -1), ""},
		{"utf-8 text", "café naïve 日本語\nok\n", ""},
		{"NUL bytes", "\x7fELF\x02\x01\x01\x00\x00\x00\nrest\n", "NUL byte at offset 7"},
		{"gzip", "\x1f\x8b\x08\x00\x00\x00\x00\x00", "NUL byte at offset 3"},
		{"latin-1", "caf\xe9 cr\xe8me\n", "invalid UTF-8 at offset 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := writeTemp(t, "in", c.content)
			out, errs, code := runCLI(t, "", "score", in)
			if code != 0 || out == "" {
				t.Fatalf("exit %d, %d bytes out: %s", code, len(out), errs)
			}
			if c.warn == "" && errs != "" {
				t.Fatalf("warning on text input: %s", errs)
			}
			if c.warn != "" && !strings.Contains(errs, "does not look like text ("+c.warn+")") {
				t.Fatalf("stderr %q, want a warning with %q", errs, c.warn)
			}
		})
	}
}

func TestScoreConfigFile(t *testing.T) {
	cfg := writeTemp(t, "d.yaml", "detector:\n  p_value: 0.05\n  hop: 32\n")
	in := writeTemp(t, "app.log", logInput(300, -1))
	if _, errs, code := runCLI(t, "", "score", "--config", cfg, in); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	bad := writeTemp(t, "bad.yaml", "detector:\n  hop: 1\n")
	if _, errs, code := runCLI(t, "", "score", "--config", bad, in); code != 2 || !strings.Contains(errs, "hop") {
		t.Fatalf("invalid hop accepted: exit %d %s", code, errs)
	}
}

func FuzzScoreInput(f *testing.F) {
	f.Add([]byte("a\nb\n"), false)
	f.Add([]byte("timestamp,value\n2020-01-01 00:00:00,1\n"), true)
	f.Add([]byte("\xff\x00\r\n\n\n"), false)
	f.Fuzz(func(t *testing.T, in []byte, csv bool) {
		args := []string{"score", writeTemp(t, "in", string(in))}
		if csv {
			args = append([]string{"score", "--format", "csv"}, args[1:]...)
		}
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		if code != 0 && errb.Len() == 0 {
			t.Fatalf("exit %d without an error message", code)
		}
		if code == 0 && !csv {
			// One output line per input line.
			want := bytes.Count(in, []byte("\n"))
			if len(in) > 0 && in[len(in)-1] != '\n' {
				want++
			}
			if got := bytes.Count(out.Bytes(), []byte("\n")); got != want {
				t.Fatalf("%d output lines for %d input lines", got, want)
			}
		}
	})
}
