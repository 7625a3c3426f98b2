package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/driftlock/driftlock/internal/testutil/otlpsink"
)

func TestReplaySynthetic(t *testing.T) {
	addr, c := otlpsink.StartGRPC(t)
	faults := filepath.Join(t.TempDir(), "faults.json")
	var out, errOut bytes.Buffer
	code := run([]string{"replay", "--synthetic", "--steps", "150", "--endpoint", addr, "--faults-out", faults}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if logs, spans, points := c.Counts(); logs != 600 || spans != 600 || points != 1200 {
		t.Fatalf("received logs %d spans %d points %d, want 600/600/1200", logs, spans, points)
	}
	if !strings.Contains(errOut.String(), "1800 records sent") || !strings.Contains(errOut.String(), "records/s") {
		t.Fatalf("progress on stderr: %q", errOut.String())
	}
	b, err := os.ReadFile(faults)
	if err != nil || !strings.Contains(string(b), `"service": "checkout"`) || !strings.Contains(string(b), `"signal": "logs"`) {
		t.Fatalf("faults file: %v %s", err, b)
	}
}

func TestReplayLinesOverHTTP(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := plogotlp.NewExportRequest()
		if r.URL.Path != "/v1/logs" || req.UnmarshalProto(body) != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		rl := req.Logs().ResourceLogs().At(0)
		if v, _ := rl.Resource().Attributes().Get("service.name"); v.Str() != "web" {
			http.Error(w, "wrong service", http.StatusBadRequest)
			return
		}
		got.Add(int64(req.Logs().LogRecordCount()))
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "app.log")
	os.WriteFile(file, []byte("INFO one\nERROR two\n\nWARN three\n"), 0o644)
	var out, errOut bytes.Buffer
	// Flags after the file work too.
	code := run([]string{"replay", "--format", "lines", file, "--service", "web", "--protocol", "http", "--endpoint", srv.URL}, &out, &errOut)
	if code != 0 || got.Load() != 3 {
		t.Fatalf("exit %d, received %d records (want 3): %s", code, got.Load(), errOut.String())
	}
}

func TestReplayUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"replay"}, 2, "--synthetic"},
		{[]string{"replay", "--format", "lines", "x.log"}, 2, "--service"},
		{[]string{"replay", "--format", "csv", "x"}, 2, `unknown --format "csv"`},
		{[]string{"replay", "--format", "nezha"}, 2, "exactly one DIR"},
		{[]string{"replay", "--synthetic", "extra"}, 2, "no --format and no input"},
		{[]string{"replay", "--synthetic", "--speed", "-1"}, 2, "--speed"},
		{[]string{"replay", "--synthetic", "--protocol", "udp"}, 2, "protocol"},
		{[]string{"replay", "--format", "nezha", "--signals", "logs,bogus", "/nonexistent"}, 2, `unknown signal "bogus"`},
		{[]string{"replay", "--format", "lines", "--service", "x", "/nonexistent/app.log"}, 1, "no such file"},
		{[]string{"replay", "--format", "nezha", t.TempDir()}, 1, "log.tgz"},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errOut.String(), tc.code, tc.msg)
		}
	}
}
