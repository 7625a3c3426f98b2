package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/driftlock/driftlock/internal/store"
)

func init() {
	register(command{name: "migrate", summary: "apply, roll back or list the anomaly store's schema migrations (up|down|status)", run: runMigrate})
}

// runMigrate: driftlock migrate up|down|status [--dsn DSN] [--timeout D].
// Migrations run under a PostgreSQL advisory lock, so this is safe while
// collectors migrate on start.
func runMigrate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: driftlock migrate up|down|status [--dsn DSN] [--timeout 1m]")
		fmt.Fprintln(stderr, "  up      apply every pending migration")
		fmt.Fprintln(stderr, "  down    roll back the most recent migration")
		fmt.Fprintln(stderr, "  status  list the migrations and whether each is applied")
		fs.PrintDefaults()
	}
	dsn := fs.String("dsn", "", "PostgreSQL connection string (default: $DRIFTLOCK_DSN)")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	action, err := parseAction(fs, args, "up, down or status")
	if err != nil {
		return err
	}
	switch action {
	case "up", "down", "status":
	default:
		return fmt.Errorf("%w: unknown action %q (want up, down or status)", errUsage, action)
	}
	if *dsn == "" {
		*dsn = os.Getenv("DRIFTLOCK_DSN")
	}
	if *dsn == "" {
		return fmt.Errorf("%w: %v", errUsage, store.ErrNoDSN)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	switch action {
	case "up":
		if err := st.Migrate(ctx); err != nil {
			return err
		}
	case "down":
		if err := st.MigrateDown(ctx); err != nil {
			return err
		}
	}
	statuses, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	if len(statuses) == 0 {
		return errors.New("no migrations embedded in this binary")
	}
	fmt.Fprintf(stdout, "%-8s %-8s %-25s %s\n", "VERSION", "STATE", "APPLIED AT", "MIGRATION")
	for _, s := range statuses {
		applied := "-"
		if !s.AppliedAt.IsZero() {
			applied = s.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(stdout, "%-8d %-8s %-25s %s\n", s.Source.Version, s.State, applied, s.Source.Path)
	}
	return nil
}
