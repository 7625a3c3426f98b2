package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

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
	fs.StringVar(&cfg.TraceURL, "trace-url", "", "link template of trace ids on the page, {trace_id} replaced (e.g. http://jaeger:16686/trace/{trace_id})")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	tlsCert := fs.String("tls-cert", os.Getenv("DRIFTLOCK_TLS_CERT"), "serve HTTPS with this PEM certificate (chain) file (default $DRIFTLOCK_TLS_CERT)")
	tlsKey := fs.String("tls-key", os.Getenv("DRIFTLOCK_TLS_KEY"), "the certificate's PEM private key file (default $DRIFTLOCK_TLS_KEY)")
	incidents := addIncidentFlags(fs, true)
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
	correlatorCfg, notifyCfg, err := incidents.load()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tlsCfg, tlsErr := serveTLS(*tlsCert, *tlsKey)
	if tlsErr != nil {
		return fmt.Errorf("%w: %v", errUsage, tlsErr)
	}
	if tlsCfg != nil {
		cfg.SecureCookies = true // cookies only ever travel over HTTPS then
	}
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
	stopIncidents, err := startIncidents(ctx, st, incidents.enabled, correlatorCfg, notifyCfg, log, srv.MetricsRegisterer())
	if err != nil {
		return err
	}
	defer stopIncidents()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	log.Info("serving", "addr", ln.Addr().String(), "web", scheme+"://"+ln.Addr().String()+"/")
	fmt.Fprintf(stdout, "driftlock serve: listening on %s://%s/\n", scheme, ln.Addr())
	return srv.Serve(ctx, ln)
}

// serveTLS loads the server certificate when both files are given. The key
// pair is re-read when either file changes (checked at most once a minute),
// so a renewed certificate is picked up without a restart.
func serveTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	r := &certReloader{cert: certFile, key: keyFile}
	if err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}, nil
}

type certReloader struct {
	cert, key string
	mu        sync.Mutex
	current   *tls.Certificate
	modCert   time.Time
	modKey    time.Time
	checked   time.Time
}

func (r *certReloader) load() error {
	c, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		return fmt.Errorf("TLS key pair (%s, %s): %w", r.cert, r.key, err)
	}
	r.current = &c
	r.modCert, r.modKey = modTime(r.cert), modTime(r.key)
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) > time.Minute {
		r.checked = now
		if !modTime(r.cert).Equal(r.modCert) || !modTime(r.key).Equal(r.modKey) {
			_ = r.load() // on a half-written renewal keep serving the old pair
		}
	}
	return r.current, nil
}

func modTime(p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
