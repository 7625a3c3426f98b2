package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/driftlock/driftlock/internal/correlator"
	"github.com/driftlock/driftlock/internal/incident"
	"github.com/driftlock/driftlock/internal/nezhaeval"
	"github.com/driftlock/driftlock/internal/store"
)

func init() {
	register(command{name: "demo", summary: "helpers for `make demo` (summary: the incidents and, per injected fault, found or missed; faults: describe a fault list)", run: runDemo})
}

const demoUsage = `usage: driftlock demo summary [--dsn DSN] [--settle 3s] [--max-wait 3m] [--top 5] [--faults FILE] [--correlator NAME]
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
	maxWait := fs.Duration("max-wait", 3*time.Minute, "give up each wait (anomalies settled, correlator caught up) after this long")
	top := fs.Int("top", 5, "how many of the incidents with the most evidence to list")
	faults := fs.String("faults", "", "injected faults to score the incidents against: `driftlock replay --faults-out` JSON or Nezha's fault_list.json")
	name := fs.String("correlator", correlator.DefaultConfig().Name, "the correlator's name in serve's incidents config (its saved position is waited for)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *dsn == "" {
		return fmt.Errorf("%w: no --dsn and DRIFTLOCK_DSN is not set", errUsage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2**maxWait+time.Minute)
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
		note, err := waitCorrelated(ctx, conn, *name, *maxWait)
		if err != nil {
			return err
		}
		if note != "" {
			fmt.Fprintln(stderr, "demo summary: "+note)
		}
	}
	return printSummary(ctx, conn, stdout, demoSummary{top: *top, faults: *faults, bucket: incident.DefaultConfig().Bucket})
}

// waitCorrelated returns once serve's correlator has read every anomaly
// and closed its incidents (on a replayed day its clock follows wall time
// once input stops, which closes them), or after maxWait with a note
// saying how far it got: the summary then shows the incidents as they are.
func waitCorrelated(ctx context.Context, conn *pgx.Conn, name string, maxWait time.Duration) (string, error) {
	deadline := time.Now().Add(maxWait)
	for {
		var maxID, read, open int64
		err := conn.QueryRow(ctx, `SELECT (SELECT coalesce(max(id), 0) FROM anomalies),
			coalesce((SELECT last_id FROM correlator_state WHERE name = $1), 0),
			(SELECT count(*) FROM incidents WHERE state = 'open')`, name).Scan(&maxID, &read, &open)
		if err != nil {
			return "", fmt.Errorf("correlator progress: %w", err)
		}
		if read >= maxID && open == 0 {
			return "", nil
		}
		if time.Now().After(deadline) {
			return fmt.Sprintf("after %s the correlator %q has read up to anomaly %d of %d and %d incidents are open; showing them as they are",
				maxWait, name, read, maxID, open), nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
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

// demoSummary is what `demo summary` prints from.
type demoSummary struct {
	top    int    // incidents to list
	faults string // fault list path ("" for none)
	// bucket is the correlator's bucket: a service whose onset is within
	// one bucket of an incident's opening was ranked when it opened.
	bucket time.Duration
}

// storedIncident is the part of an incidents row the summary needs.
type storedIncident struct {
	key, state, title, leader string
	services                  []store.RankedService
	size                      int
	score                     float64
	opened, lastEvidence      time.Time
}

func loadIncidents(ctx context.Context, conn *pgx.Conn) ([]storedIncident, error) {
	rows, err := conn.Query(ctx, `SELECT key, state, title, leader, services, size, score, opened_at, last_evidence_at
		FROM incidents ORDER BY opened_at, id`)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (storedIncident, error) {
		var in storedIncident
		var services []byte
		if err := r.Scan(&in.key, &in.state, &in.title, &in.leader, &services, &in.size, &in.score, &in.opened, &in.lastEvidence); err != nil {
			return in, err
		}
		if err := json.Unmarshal(services, &in.services); err != nil {
			return in, fmt.Errorf("incident %s: ranked services: %w", in.key, err)
		}
		return in, nil
	})
}

// storedEvents rebuilds, from the incidents as stored (their latest
// ranking, with each service's onset), the events the eval scores: the
// opening (with the services whose onset is within a bucket of it) and
// one update per later onset (the services joining). A service's rank is
// its place in the stored ranking among those known by then, so a rank
// can differ from the one the live event carried, and a joining service
// counts from its onset, up to a bucket before the live update; `driftlock
// eval nezha` scores the live events.
func storedEvents(incs []storedIncident, bucket time.Duration) []incident.Event {
	var events []incident.Event
	for _, in := range incs {
		// The services ranked at the opening: onset within a bucket of it
		// (of the first onset, if none started at the opening itself).
		first := in.opened
		for k, s := range in.services {
			if k == 0 || s.Onset.Before(first) {
				first = s.Onset
			}
		}
		cutoff := in.opened.Add(bucket)
		if !first.Before(cutoff) {
			cutoff = first.Add(bucket)
		}
		known := func(by time.Time) incident.Incident {
			out := incident.Incident{ID: in.key, Opened: in.opened, LastEvidence: in.lastEvidence, Title: in.title}
			for _, s := range in.services {
				if s.Onset.Before(cutoff) || !s.Onset.After(by) {
					out.Services = append(out.Services, incident.RankedService{Service: s.Service, Score: s.Score, Onset: s.Onset})
				}
			}
			return out
		}
		events = append(events, incident.Event{Type: incident.Opened, At: in.opened, Incident: known(in.opened)})
		var later []time.Time
		for _, s := range in.services {
			if !s.Onset.Before(cutoff) {
				later = append(later, s.Onset)
			}
		}
		sort.Slice(later, func(i, j int) bool { return later[i].Before(later[j]) })
		for i, t := range later {
			if i == 0 || !t.Equal(later[i-1]) {
				events = append(events, incident.Event{Type: incident.Updated, At: t, Incident: known(t)})
			}
		}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].At.Before(events[j].At) })
	return events
}

// printSummary prints the incidents serve's correlator stored: per
// injected fault found or missed (the criteria of `driftlock eval nezha`,
// internal/nezhaeval), the incident count and false incidents per hour,
// the largest incidents, and the anomalies as one line of context.
func printSummary(ctx context.Context, conn *pgx.Conn, w io.Writer, opt demoSummary) error {
	var n, logs, traces, mets, services int64
	var first, last *time.Time
	err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE signal = 'logs'), count(*) FILTER (WHERE signal = 'traces'),
		count(*) FILTER (WHERE signal = 'metrics'), count(DISTINCT service), min(observed_at), max(observed_at) FROM anomalies`).
		Scan(&n, &logs, &traces, &mets, &services, &first, &last)
	if err != nil {
		return fmt.Errorf("count anomalies: %w", err)
	}
	var hours float64
	span := ""
	if first != nil && last != nil {
		hours = last.Sub(*first).Hours()
		span = fmt.Sprintf(", observed %s .. %s (%.1f h)", first.UTC().Format("2006-01-02 15:04"), last.UTC().Format("2006-01-02 15:04"), hours)
	}
	fmt.Fprintf(w, "\nAnomalies (record-level flags): %d (logs %d, traces %d, metrics %d) in %d services%s; the incidents group them.\n",
		n, logs, traces, mets, services, span)

	incs, err := loadIncidents(ctx, conn)
	if err != nil {
		return err
	}
	if opt.faults != "" {
		faults, err := loadFaults(opt.faults)
		if err != nil {
			return err
		}
		score := nezhaeval.ScoreIncidents(storedEvents(incs, opt.bucket), faults, hours)
		printFaultTable(w, opt.faults, score)
		fmt.Fprintf(w, "%s (false: opened with no fault in the %s before; per hour of the anomalies' span)\n", score.Line(), nezhaeval.Window)
	} else {
		fmt.Fprintf(w, "\nincidents=%d (no fault list to score them against)\n", len(incs))
	}
	return printIncidents(w, incs, opt.top)
}

// printFaultTable prints one line per injected fault: found or missed, the
// delay, the faulted service's rank and the incident's title.
func printFaultTable(w io.Writer, path string, score nezhaeval.IncidentScore) {
	fmt.Fprintf(w, "\nInjected faults (%s): found when an incident opens within %s after inject_time with the faulted service among its ranked services\n", path, nezhaeval.Window)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "injected at (UTC)\ttype\tservice\tfound\tdelay\trank\tincident")
	for _, r := range score.Faults {
		found, delay, rank, title := "missed", "-", "-", ""
		switch {
		case r.Detected:
			found, delay, rank, title = "found", fmt.Sprintf("%.0fs", r.Delay.Seconds()), fmt.Sprint(r.Rank), oneLine(r.Title, 100)
		case r.Early > 0:
			title = fmt.Sprintf("(an incident holding it opened %.0fs before inject_time: not counted)", r.Early.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Fault.At.UTC().Format("2006-01-02 15:04:05"), orDash(r.Fault.Type),
			r.Fault.Service, found, delay, rank, title)
	}
	tw.Flush()
}

// printIncidents lists the top incidents by evidence, in observed time.
func printIncidents(w io.Writer, incs []storedIncident, top int) error {
	open := 0
	for _, in := range incs {
		if in.state == store.IncidentOpen {
			open++
		}
	}
	byScore := slices.Clone(incs)
	sort.SliceStable(byScore, func(i, j int) bool { return byScore[i].score > byScore[j].score })
	if len(byScore) > top {
		byScore = byScore[:top]
	}
	fmt.Fprintf(w, "\nIncidents: %d (%d open); the %d with the most evidence:\n", len(incs), open, len(byScore))
	for i, in := range byScore {
		names := make([]string, 0, 3)
		for k, s := range in.services {
			if k == 3 {
				names = append(names, fmt.Sprintf("+%d", len(in.services)-3))
				break
			}
			names = append(names, s.Service)
		}
		fmt.Fprintf(w, "%d. %s  %s, %d anomalies, %.0f bits  ranked: %s\n   %s\n", i+1, in.opened.UTC().Format("2006-01-02 15:04:05"),
			in.state, in.size, in.score, orDash(strings.Join(names, ", ")), oneLine(in.title, 160))
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
		kinds[f.Type]++
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

// loadFaults reads the injected faults: Nezha's fault_list.json (with
// nezhaeval.ReadFaults, the eval's reader) or our --faults-out JSON list
// (the synthetic replay's). Either way a fault is a service and a time.
func loadFaults(path string) ([]nezhaeval.Fault, error) {
	if filepath.Base(path) == "fault_list.json" {
		return nezhaeval.ReadFaults(filepath.Dir(path))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ours []faultJSON
	if err := json.Unmarshal(b, &ours); err != nil {
		return nil, fmt.Errorf("%s: not a --faults-out list (a Nezha list must be named fault_list.json): %w", path, err)
	}
	out := make([]nezhaeval.Fault, 0, len(ours))
	for i, f := range ours {
		if f.Service == "" || f.Start.IsZero() {
			return nil, fmt.Errorf("%s: fault %d: want a service and a start time", path, i)
		}
		out = append(out, nezhaeval.Fault{At: f.Start.UTC(), Service: f.Service, Type: f.Kind})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}
