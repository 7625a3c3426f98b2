package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/driftlock/driftlock/internal/store"
)

func init() {
	register(command{name: "keys", summary: "create, list and revoke API keys (create|list|revoke)", run: runKeys})
}

func runKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: driftlock keys create --name NAME --role viewer|analyst|admin\n       driftlock keys list\n       driftlock keys revoke --name NAME\n(all take --dsn, default $DRIFTLOCK_DSN)")
		return fmt.Errorf("%w: missing subcommand", errUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", os.Getenv("DRIFTLOCK_DSN"), "PostgreSQL DSN (default $DRIFTLOCK_DSN)")
	name := fs.String("name", "", "key name (who or what uses it)")
	role := fs.String("role", "", "viewer, analyst or admin")
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	switch sub {
	case "create":
		if *name == "" || *role == "" {
			return fmt.Errorf("%w: keys create needs --name and --role", errUsage)
		}
		if store.RoleRank(*role) == 0 {
			return fmt.Errorf("%w: --role must be viewer, analyst or admin (got %q)", errUsage, *role)
		}
	case "revoke":
		if *name == "" {
			return fmt.Errorf("%w: keys revoke needs --name", errUsage)
		}
	case "list":
	default:
		return fmt.Errorf("%w: unknown keys subcommand %q (create, list, revoke)", errUsage, sub)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return err
	}
	switch sub {
	case "create":
		key, k, err := st.CreateKey(ctx, *name, *role)
		if err != nil {
			return err
		}
		if err := st.AuditKeyCreate(ctx, "cli", k); err != nil {
			return err
		}
		fmt.Fprintln(stdout, key)
		fmt.Fprintf(stderr, "created key %q (role %s, id %d). It is shown only now: store it safely.\n", k.Name, k.Role, k.ID)
	case "list":
		keys, err := st.ListKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tLAST USED\tREVOKED")
		ts := func(t *time.Time) string {
			if t == nil {
				return "-"
			}
			return t.UTC().Format(time.RFC3339)
		}
		for _, k := range keys {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.CreatedAt.UTC().Format(time.RFC3339), ts(k.LastUsed), ts(k.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		k, err := st.RevokeKey(ctx, *name, "cli")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked key %q (revoked at %s)\n", k.Name, k.RevokedAt.UTC().Format(time.RFC3339))
	}
	return nil
}
