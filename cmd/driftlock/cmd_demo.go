package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/driftlock/driftlock/internal/replay"
)

func init() {
	register(command{name: "demo", summary: "helpers for `make demo` (summary: the anomaly summary table; faults: describe a fault list)", run: runDemo})
}

const demoUsage = `usage: driftlock demo summary [--dsn DSN] [--settle 3s] [--top 5] [--faults FILE]
       driftlock demo faults FILE`

func runDemo(args []string, stdout, stderr io.Writer) error {
	if len(args) == 2 && args[0] == "faults" {
		return describeFaults(stdout, args[1])
	}
	if len(args) == 0 || args[0] != "summary" {
		fmt.Fprintln(stderr, demoUsage)
		return fmt.Errorf("%w: want the subcommand summary or faults", errUsage)
	}
	fs := flag.NewFlagSet("demo summary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", os.Getenv("DRIFTLOCK_DSN"), "PostgreSQL DSN (default $DRIFTLOCK_DSN)")
	settle := fs.Duration("settle", 3*time.Second, "first wait until the anomaly count has not changed for this long (0: no wait)")
	maxWait := fs.Duration("max-wait", 2*time.Minute, "give up waiting for the count to settle after this long")
	top := fs.Int("top", 5, "how many of the highest-scoring anomalies to list")
	faults := fs.String("faults", "", "injected faults to check: `driftlock replay --faults-out` JSON or Nezha's fault_list.json")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *dsn == "" {
		return fmt.Errorf("%w: no --dsn and DRIFTLOCK_DSN is not set", errUsage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *maxWait+time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())

	if *settle > 0 {
		if err := waitSettled(ctx, conn, *settle, *maxWait); err != nil {
			return err
		}
	}
	return printSummary(ctx, conn, stdout, *top, *faults)
}

func anomalyCount(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var n int64
	err := conn.QueryRow(ctx, `SELECT count(*) FROM anomalies`).Scan(&n)
	return n, err
}

// waitSettled returns once the anomaly count has stayed the same for
// settle: the collector's export queue has drained.
func waitSettled(ctx context.Context, conn *pgx.Conn, settle, maxWait time.Duration) error {
	deadline := time.Now().Add(maxWait)
	last, err := anomalyCount(ctx, conn)
	if err != nil {
		return err
	}
	since := time.Now()
	for time.Since(since) < settle {
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
		n, err := anomalyCount(ctx, conn)
		if err != nil {
			return err
		}
		if n != last {
			last, since = n, time.Now()
		}
	}
	return nil
}

func printSummary(ctx context.Context, conn *pgx.Conn, w io.Writer, top int, faultsFile string) error {
	rows, err := conn.Query(ctx, `
		SELECT service,
		       count(*) FILTER (WHERE signal = 'logs'),
		       count(*) FILTER (WHERE signal = 'traces'),
		       count(*) FILTER (WHERE signal = 'metrics'),
		       count(*)
		FROM anomalies GROUP BY service ORDER BY count(*) DESC, service`)
	if err != nil {
		return err
	}
	type line struct {
		service               string
		logs, traces, mets, n int64
	}
	lines, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (line, error) {
		var l line
		return l, r.Scan(&l.service, &l.logs, &l.traces, &l.mets, &l.n)
	})
	if err != nil {
		return err
	}
	var tot line
	fmt.Fprintln(w, "\nAnomalies per service and signal")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "service\tlogs\ttraces\tmetrics\ttotal\t")
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", orDash(l.service), l.logs, l.traces, l.mets, l.n)
		tot.logs, tot.traces, tot.mets, tot.n = tot.logs+l.logs, tot.traces+l.traces, tot.mets+l.mets, tot.n+l.n
	}
	fmt.Fprintf(tw, "all services\t%d\t%d\t%d\t%d\t\n", tot.logs, tot.traces, tot.mets, tot.n)
	tw.Flush()

	rows, err = conn.Query(ctx, `
		SELECT score, signal, stream, observed_at, explanation, summary FROM (
			SELECT DISTINCT ON (stream) score, signal, stream, observed_at, explanation, left(summary, 1000) AS summary, id
			FROM anomalies ORDER BY stream, score DESC, id) best
		ORDER BY score DESC, id LIMIT $1`, top) // one per stream: the top N are N different problems
	if err != nil {
		return err
	}
	type topRow struct {
		score                         float64
		signal, stream, expl, summary string
		observed                      time.Time
	}
	tops, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (topRow, error) {
		var t topRow
		return t, r.Scan(&t.score, &t.signal, &t.stream, &t.observed, &t.expl, &t.summary)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nTop %d anomalies by score (the highest of each stream)\n", top)
	for i, t := range tops {
		fmt.Fprintf(w, "%d. score %.2f  %s  %s  %s\n", i+1, t.score, t.signal, t.stream, t.observed.UTC().Format(time.RFC3339))
		if t.summary != "" {
			fmt.Fprintf(w, "   record: %s\n", oneLine(t.summary, 160))
		}
		if t.expl != "" {
			fmt.Fprintf(w, "   why:    %s\n", oneLine(t.expl, 400))
		}
	}
	if faultsFile != "" {
		return printFaults(ctx, conn, w, faultsFile)
	}
	return nil
}

// describeFaults prints one line for the demo's banner: how many injected
// faults the list holds, by kind, counted from the file itself.
func describeFaults(w io.Writer, path string) error {
	faults, err := loadFaults(path)
	if err != nil {
		return err
	}
	kinds := map[string]int{}
	for _, f := range faults {
		kinds[f.kind]++
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %d", orDash(k), kinds[k])
	}
	noun := "faults"
	if len(faults) == 1 {
		noun = "fault"
	}
	if len(parts) == 0 {
		_, err = fmt.Fprintf(w, "0 injected faults\n")
		return err
	}
	_, err = fmt.Fprintf(w, "%d injected %s: %s\n", len(faults), noun, strings.Join(parts, ", "))
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine folds s onto one line and shortens it to at most max bytes at a
// word boundary (a word longer than max is cut at a rune boundary), marking
// the cut with "…".
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if sp := strings.LastIndexByte(s[:cut+1], ' '); sp > 0 {
		cut = sp
	}
	return strings.TrimRight(s[:cut], " ") + "…"
}

// demoFault is one injected fault to look for: anomalies of service (any
// signal unless set) between start and end.
type demoFault struct {
	service, signal, kind string
	start, end            time.Time
}

// loadFaults reads our --faults-out JSON (a list) or Nezha's fault_list.json
// (an object of hour -> list, inject_time on the data's UTC clock, a
// 5-minute window after each injection).
func loadFaults(path string) ([]demoFault, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ours []faultJSON
	if err := json.Unmarshal(b, &ours); err == nil {
		out := make([]demoFault, 0, len(ours))
		for _, f := range ours {
			out = append(out, demoFault{f.Service, f.Signal, f.Kind, f.Start, f.End})
		}
		return out, nil
	}
	var nezha map[string][]struct {
		InjectTime string `json:"inject_time"`
		InjectPod  string `json:"inject_pod"`
		InjectType string `json:"inject_type"`
	}
	if err := json.Unmarshal(b, &nezha); err != nil {
		return nil, fmt.Errorf("%s: neither a --faults-out list nor a Nezha fault_list.json: %w", path, err)
	}
	var out []demoFault
	for _, hour := range nezha {
		for _, f := range hour {
			t, err := time.Parse("2006-01-02 15:04:05", f.InjectTime)
			if err != nil {
				return nil, fmt.Errorf("%s: inject_time %q: %w", path, f.InjectTime, err)
			}
			out = append(out, demoFault{replay.ServiceOfPod(f.InjectPod), "", f.InjectType, t, t.Add(5 * time.Minute)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out, nil
}

func printFaults(ctx context.Context, conn *pgx.Conn, w io.Writer, path string) error {
	faults, err := loadFaults(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nInjected faults (%s)\n", path)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "injected at (UTC)\tservice\tkind\tlogs\ttraces\tmetrics\tfirst after")
	hit := 0
	var windows time.Duration
	for _, f := range faults {
		var nl, nt, nm int64
		var first *time.Time
		err := conn.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE signal = 'logs'), count(*) FILTER (WHERE signal = 'traces'),
			       count(*) FILTER (WHERE signal = 'metrics'), min(observed_at)
			FROM anomalies
			WHERE service = $1 AND ($2 = '' OR signal = $2) AND observed_at >= $3 AND observed_at < $4`,
			f.service, f.signal, f.start, f.end).Scan(&nl, &nt, &nm, &first)
		if err != nil {
			return err
		}
		windows += f.end.Sub(f.start)
		after := "-"
		if first != nil {
			after = first.Sub(f.start).Round(time.Second).String()
			hit++
		}
		kind := f.kind
		if f.signal != "" {
			kind += " (" + f.signal + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", f.start.UTC().Format("2006-01-02 15:04:05"), f.service, kind, nl, nt, nm, after)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d injected faults have at least one anomaly in their window\n", hit, len(faults))
	return printBackground(ctx, conn, w, faults)
}

// printBackground puts the fault hits in context: the same services'
// anomaly rate outside every fault window, per signal, over the data's
// time span. A hit means little if the service flags as often anyway.
func printBackground(ctx context.Context, conn *pgx.Conn, w io.Writer, faults []demoFault) error {
	if len(faults) == 0 {
		return nil
	}
	services := map[string]bool{}
	var svc []string
	var starts, ends []time.Time
	for _, f := range faults {
		if !services[f.service] {
			services[f.service] = true
			svc = append(svc, f.service)
		}
		starts = append(starts, f.start)
		ends = append(ends, f.end)
	}
	// The data's time span: all anomalies, first to last.
	var lo, hi *time.Time
	if err := conn.QueryRow(ctx, `SELECT min(observed_at), max(observed_at) FROM anomalies`).Scan(&lo, &hi); err != nil || lo == nil {
		return err
	}
	var nl, nt, nm int64
	err := conn.QueryRow(ctx, `
		WITH w AS (SELECT unnest($2::timestamptz[]) AS s, unnest($3::timestamptz[]) AS e)
		SELECT count(*) FILTER (WHERE signal = 'logs'), count(*) FILTER (WHERE signal = 'traces'),
		       count(*) FILTER (WHERE signal = 'metrics')
		FROM anomalies a
		WHERE a.service = ANY($1)
		  AND NOT EXISTS (SELECT 1 FROM w WHERE a.observed_at >= w.s AND a.observed_at < w.e)`,
		svc, starts, ends).Scan(&nl, &nt, &nm)
	if err != nil {
		return err
	}
	var inWin time.Duration
	for _, f := range faults {
		inWin += f.end.Sub(f.start)
	}
	outside := hi.Sub(*lo) - inWin
	if outside <= 0 {
		return nil
	}
	// Per service and 5 minutes: comparable to one fault's window.
	per := func(n int64) float64 { return float64(n) / outside.Minutes() * 5 / float64(len(svc)) }
	fmt.Fprintf(w, "outside the windows, each of these %d services flags per 5 minutes on average: logs %.2f, traces %.2f, metrics %.2f\n", len(svc), per(nl), per(nt), per(nm))
	return nil
}
