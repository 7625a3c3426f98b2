package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/driftlock/driftlock/internal/correlator"
	"github.com/driftlock/driftlock/internal/notify"
	"github.com/driftlock/driftlock/internal/store"
)

func init() {
	register(command{name: "incidents", summary: "recompute the incidents from the stored anomalies (rebuild --since T)", run: runIncidents})
}

// runIncidents: driftlock incidents rebuild --since T [--dsn DSN]
// [--incidents-config FILE] [--timeout D].
//
// The rebuild is a request to the correlator: when a `driftlock serve`
// replica is the active correlator, it serves the request (this command
// waits for it); otherwise this command takes the correlator's lock and
// rebuilds itself. Either way exactly one process recomputes.
func runIncidents(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("incidents", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: driftlock incidents rebuild --since T [--dsn DSN] [--incidents-config FILE] [--timeout 10m]")
		fmt.Fprintln(stderr, "  rebuild  recompute the incidents from the anomalies observed since T")
		fmt.Fprintln(stderr, "           (RFC 3339 time, a duration ago such as 24h, or \"all\")")
		fs.PrintDefaults()
	}
	dsn := fs.String("dsn", "", "PostgreSQL connection string (default: $DRIFTLOCK_DSN)")
	since := fs.String("since", "", "observed time to recompute from: RFC 3339, a duration ago (24h), or all (required)")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	incidents := addIncidentFlags(fs, false)
	action, err := parseAction(fs, args, "rebuild")
	if err != nil {
		return err
	}
	if action != "rebuild" {
		return fmt.Errorf("%w: unknown action %q (want rebuild)", errUsage, action)
	}
	from, err := parseSince(*since, time.Now())
	if err != nil {
		return fmt.Errorf("%w: --since: %v", errUsage, err)
	}
	if *dsn == "" {
		*dsn = os.Getenv("DRIFTLOCK_DSN")
	}
	if *dsn == "" {
		return fmt.Errorf("%w: %v", errUsage, store.ErrNoDSN)
	}
	ccfg, ncfg, err := incidents.load()
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var notifier *notify.Notifier
	if ncfg.Enabled() {
		// Notifications are queued for the receivers; serve delivers them.
		if notifier, err = notify.NewNotifier(ncfg, st, log, nil); err != nil {
			return err
		}
	}
	run, err := correlator.New(st, ccfg, notifier, log, nil)
	if err != nil {
		return err
	}
	began := time.Now()
	if err := st.RequestRebuild(ctx, ccfg.Name, from); err != nil {
		return err
	}
	switch err := run.CatchUp(ctx); {
	case errors.Is(err, correlator.ErrBusy):
		fmt.Fprintln(stdout, "driftlock incidents: a running `driftlock serve` is the active correlator; waiting for it to rebuild")
		if err := waitRebuilt(ctx, st, ccfg.Name); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	list, err := st.IncidentsActiveSince(ctx, from)
	if err != nil {
		return err
	}
	open := 0
	for _, in := range list {
		if in.State == store.IncidentOpen {
			open++
		}
	}
	what := "since " + from.UTC().Format(time.RFC3339)
	if from.IsZero() {
		what = "in all"
	}
	fmt.Fprintf(stdout, "driftlock incidents: rebuilt in %s: %d incidents active %s, %d open\n",
		time.Since(began).Round(time.Millisecond), len(list), what, open)
	return nil
}

// waitRebuilt waits until the active correlator cleared the request.
func waitRebuilt(ctx context.Context, st *store.Store, name string) error {
	for {
		pos, err := st.CorrelatorPosition(ctx, name)
		if err != nil {
			return err
		}
		if pos.RebuildFrom.IsZero() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the active correlator did not finish the rebuild in time (it stays requested): %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// parseSince reads --since: "all" (zero time), an RFC 3339 time, or a
// duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	switch s = strings.TrimSpace(s); {
	case s == "":
		return time.Time{}, errors.New("required (an RFC 3339 time, a duration ago such as 24h, or all)")
	case s == "all":
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-29T08:00:00Z), a positive duration (24h) nor all", s)
}
