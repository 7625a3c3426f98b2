package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/driftlock/driftlock/internal/store/storetest"
)

func TestDemoSummary(t *testing.T) {
	_, dsn := storetest.Open(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	rows := []struct {
		signal, stream, service string
		at                      time.Duration
		score                   float64
	}{
		{"logs", "logs/checkout", "checkout", 10 * time.Second, 44},
		{"logs", "logs/checkout", "checkout", 11 * time.Second, 40},
		{"traces", "traces/payment", "payment", 100 * time.Second, 6},
		{"metrics", "metrics/inventory/cpu", "inventory", 200 * time.Second, 11},
		{"metrics", "metrics/inventory/cpu", "inventory", 900 * time.Second, 3},
		{"logs", "logs/checkout", "checkout", 950 * time.Second, 2},
	}
	for i, r := range rows {
		_, err := conn.Exec(ctx, `INSERT INTO anomalies (fingerprint, signal, stream, service, observed_at, score, p_value, explanation, summary)
			VALUES ($1, $2, $3, $4, $5, $6, 0.001, $7, $8)`,
			fmt.Sprint("fp", i), r.signal, r.stream, r.service, t0.Add(r.at), r.score,
			fmt.Sprintf("record costs %.0f bits/token", r.score), "body "+r.stream)
		if err != nil {
			t.Fatal(err)
		}
	}
	faults := filepath.Join(t.TempDir(), "faults.json")
	os.WriteFile(faults, []byte(fmt.Sprintf(`[
 {"service":"checkout","signal":"logs","kind":"exception","start":%q,"end":%q},
 {"service":"payment","signal":"logs","kind":"exception","start":%q,"end":%q}]`,
		t0.Add(9*time.Second).Format(time.RFC3339), t0.Add(20*time.Second).Format(time.RFC3339),
		t0.Add(90*time.Second).Format(time.RFC3339), t0.Add(120*time.Second).Format(time.RFC3339))), 0o644)

	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "summary", "--dsn", dsn, "--settle", "300ms", "--top", "3", "--faults", faults}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	s := out.String()
	for _, re := range []string{
		`checkout\s+3\s+0\s+0\s+3`,
		`inventory\s+0\s+0\s+2\s+2`,
		`payment\s+0\s+1\s+0\s+1`,
		`all services\s+3\s+1\s+2\s+6`,
		// One per stream: checkout's second log (40) gives way to other streams.
		`(?s)1\. score 44\.00\s+logs\s+logs/checkout.*2\. score 11\.00\s+metrics.*3\. score 6\.00\s+traces`,
		`why:\s+record costs 44 bits/token`,
		`checkout\s+exception \(logs\)\s+2\s+0\s+0\s+1s`,
		// The payment fault is on logs: the trace anomaly does not count.
		`payment\s+exception \(logs\)\s+0\s+0\s+0\s+-`,
		// Outside the windows (899 s of 940 s): checkout's one log at 950 s.
		`outside the windows, each of these 2 services flags per 5 minutes on average: logs 0\.17, traces 0\.00, metrics 0\.00`,
		`1 of 2 injected faults have at least one anomaly`,
	} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("summary does not match %q:\n%s", re, s)
		}
	}
	if strings.Contains(s, "4. score") {
		t.Errorf("--top 3 printed a 4th row:\n%s", s)
	}
}

func TestDemoSummaryErrors(t *testing.T) {
	t.Setenv("DRIFTLOCK_DSN", "")
	var out, errOut bytes.Buffer
	if code := run([]string{"demo"}, &out, &errOut); code != 2 {
		t.Fatalf("no subcommand: exit %d", code)
	}
	if code := run([]string{"demo", "summary"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "DRIFTLOCK_DSN") {
		t.Fatalf("no DSN: exit %d %s", code, errOut.String())
	}
}

// The banner's fault count comes from the list itself, whatever the folder.
func TestDemoFaultsCountsTheList(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "fault_list.json")
	if err := os.WriteFile(list, []byte(`{"9":[{"inject_time":"2023-01-29 09:00:00","inject_pod":"ts-order-service-7f9","inject_type":"cpu_contention"}],
 "10":[{"inject_time":"2023-01-29 10:00:00","inject_pod":"ts-auth-service-1","inject_type":"exception"},
       {"inject_time":"2023-01-29 10:30:00","inject_pod":"ts-user-service-2","inject_type":"cpu_contention"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "faults", list}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := out.String(); got != "3 injected faults: cpu_contention 2, exception 1\n" {
		t.Fatalf("got %q", got)
	}
	// The shared Nezha day, when present: the count is the file's, not a constant.
	real := filepath.Join("..", "..", "..", "shared", "data", "nezha", "2023-01-29", "fault_list.json")
	if _, err := os.Stat(real); err != nil {
		t.Logf("skipping the shared Nezha list: %v", err)
		return
	}
	faults, err := loadFaults(real)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"demo", "faults", real}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), fmt.Sprintf("%d injected faults: ", len(faults))) {
		t.Fatalf("exit %d: %q", code, out.String())
	}
	if code := run([]string{"demo", "faults", filepath.Join(dir, "missing.json")}, &out, &errOut); code != 1 {
		t.Fatalf("missing list: exit %d", code)
	}
}

// Long records and explanations are shortened at a word boundary, never
// mid-word or mid-rune.
func TestDemoOneLineCutsAtWords(t *testing.T) {
	expl := "record costs 9.12 bits/token given the baseline; stream median 0.50, 99th pct 11.00; p=0.0003; 31 tokens, most surprising 54.4 bits; a recurring template seen in bursts"
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"short  text\n here", 40, "short text here"},
		{expl, 160, "record costs 9.12 bits/token given the baseline; stream median 0.50, 99th pct 11.00; p=0.0003; 31 tokens, most surprising 54.4 bits; a recurring template…"},
		{expl, 400, expl},
		{strings.Repeat("日本", 20), 20, "日本日本日…"}, // one long word: cut at a rune boundary
	} {
		got := oneLine(c.in, c.max)
		if got != c.want || len(got) > c.max {
			t.Errorf("oneLine(%.30q, %d) = %q (%d bytes), want %q", c.in, c.max, got, len(got), c.want)
		}
	}
}
