package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store"
)

func init() {
	register(command{name: "serve", summary: "serve the anomaly API and web page", run: runServe})
}

func runServe(args []string, stdout, stderr io.Writer) error {
	cfg := api.DefaultConfig()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", os.Getenv("DRIFTLOCK_DSN"), "PostgreSQL DSN (default $DRIFTLOCK_DSN)")
	migrate := fs.Bool("migrate", true, "apply pending store migrations at start")
	searchIndex := fs.Bool("search-index", true, "create the pg_trgm index for q searches in the background if missing (best effort)")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "requests per second per API key (token bucket rate)")
	fs.IntVar(&cfg.RateBurst, "rate-burst", cfg.RateBurst, "token bucket size per API key")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "request body size limit")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "http.Server ReadHeaderTimeout")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "http.Server ReadTimeout")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "http.Server WriteTimeout (streams extend it per write)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "http.Server IdleTimeout")
	fs.DurationVar(&cfg.QueryTimeout, "query-timeout", cfg.QueryTimeout, "per-request database query timeout")
	fs.IntVar(&cfg.SSEMaxClients, "sse-max-clients", cfg.SSEMaxClients, "live-stream client cap (503 beyond)")
	fs.DurationVar(&cfg.SSEHeartbeat, "sse-heartbeat", cfg.SSEHeartbeat, "live-stream heartbeat interval")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", cfg.SessionTTL, "web session lifetime")
	secret := fs.String("session-secret", os.Getenv("DRIFTLOCK_SESSION_SECRET"),
		"hex secret (>= 32 bytes) signing web sessions; share it between servers behind one load balancer (default $DRIFTLOCK_SESSION_SECRET, else random per process)")
	fs.BoolVar(&cfg.SecureCookies, "secure-cookies", false, "mark the session cookie Secure (serve behind TLS)")
	cors := fs.String("cors-origins", "", "comma-separated origins allowed to call the API cross-origin with Bearer keys (default: none)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *secret != "" {
		b, err := hex.DecodeString(*secret)
		if err != nil {
			return fmt.Errorf("%w: -session-secret must be hex: %v", errUsage, err)
		}
		cfg.SessionSecret = b
	}
	if *cors != "" {
		for _, o := range strings.Split(*cors, ",") {
			cfg.CORSOrigins = append(cfg.CORSOrigins, strings.TrimSpace(o))
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("%w: -log-level: %v", errUsage, err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if *migrate {
		if err := st.Migrate(ctx); err != nil {
			return err
		}
	}
	if *searchIndex {
		go func() {
			if ok, err := st.EnsureSearchIndex(ctx); err != nil {
				log.Warn("summary search index", "err", err)
			} else if ok {
				log.Info("summary search index ready")
			}
		}()
	}
	srv, err := api.New(st, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("serving", "addr", ln.Addr().String(), "web", "http://"+ln.Addr().String()+"/")
	fmt.Fprintf(stdout, "driftlock serve: listening on http://%s/\n", ln.Addr())
	return srv.Serve(ctx, ln)
}
