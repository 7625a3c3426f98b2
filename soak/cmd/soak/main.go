// Command soak drives the built otelcol-driftlock collector at a steady rate
// for a fixed number of log records while PostgreSQL is stopped and restarted
// twice and the collector is SIGKILLed and restarted once (persistent
// sending queue in file_storage), then checks that every flagged record the
// collector emitted is in the anomalies table exactly once. It prints records
// sent, flagged, stored, lost, duplicated, the collector's peak RSS and the
// p99 per-record scoring latency, and exits 1 when anything was lost or
// duplicated. Everything runs on loopback and is stopped before it exits.
//
//	soak -bin bin/otelcol-driftlock [-duration 5m] [-rate 500]
//
// SOAK_DURATION and SOAK_RATE override the defaults of -duration and -rate.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/driftlock/driftlock/internal/proctest"
	"github.com/driftlock/driftlock/soak"
)

func main() {
	os.Exit(run())
}

type options struct {
	bin, pgScript, dir string
	duration, pgDown   time.Duration
	rate, services     int
	keep               bool
	memoryQueue        bool
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			fmt.Fprintf(os.Stderr, "soak: %s=%q is not a positive duration; using %v\n", name, v, def)
			return def
		}
		return d
	}
	return def
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "soak: %s=%q is not a positive integer; using %d\n", name, v, def)
			return def
		}
		return n
	}
	return def
}

func run() int {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/otelcol-driftlock", "collector binary (make build)")
	flag.StringVar(&o.pgScript, "pg", "scripts/pg", "the scripts/pg helper that starts and stops PostgreSQL")
	flag.StringVar(&o.dir, "dir", "", "work folder (default: a new temporary folder, deleted on success)")
	flag.DurationVar(&o.duration, "duration", envDuration("SOAK_DURATION", 5*time.Minute), "sending time at -rate; the record count is rate x duration (env SOAK_DURATION)")
	flag.IntVar(&o.rate, "rate", envInt("SOAK_RATE", 500), "records per second (env SOAK_RATE)")
	flag.IntVar(&o.services, "services", 8, "services (one detector stream each)")
	flag.DurationVar(&o.pgDown, "pg-down", 0, "how long PostgreSQL stays down each time (default: duration/30, 3s..10s)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work folder")
	flag.BoolVar(&o.memoryQueue, "unsafe-memory-queue", false, "negative control: an in-memory sending queue, which the SIGKILL empties (the run must then report lost records)")
	flag.Parse()
	if o.pgDown == 0 {
		o.pgDown = min(max(o.duration/30, 3*time.Second), 10*time.Second)
	}
	if o.rate < 10 {
		fmt.Fprintln(os.Stderr, "soak: -rate must be >= 10")
		return 2
	}
	for _, p := range []*string{&o.bin, &o.pgScript} {
		abs, err := filepath.Abs(*p)
		if err == nil {
			*p = abs
		}
		if _, err := os.Stat(*p); err != nil {
			fmt.Fprintf(os.Stderr, "soak: %v (run from the repository root after make build)\n", err)
			return 2
		}
	}
	if o.dir == "" {
		d, err := os.MkdirTemp("", "driftlock-soak-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			return 2
		}
		o.dir = d
	}
	s := &soakRun{o: o, log: newLogger()}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The whole run is bounded: sending, faults and draining may take at
	// most the planned time plus a margin.
	ctx, cancel := context.WithTimeout(ctx, o.duration*2+5*time.Minute)
	defer cancel()
	code := s.run(ctx)
	s.cleanup()
	if code == 0 && !o.keep {
		os.RemoveAll(o.dir)
	} else {
		s.log.printf("work folder kept: %s", o.dir)
	}
	return code
}

type logger struct{ start time.Time }

func newLogger() *logger { return &logger{start: time.Now()} }

func (l *logger) printf(format string, args ...any) {
	fmt.Printf("[soak %6.1fs] %s\n", time.Since(l.start).Seconds(), fmt.Sprintf(format, args...))
}

// soakRun holds what the run started, so cleanup can stop all of it.
type soakRun struct {
	o   options
	log *logger

	pgDir, dsn string
	pgPort     string
	pgUp       bool

	mu        sync.Mutex
	coll      *proctest.Process
	collLives int
	ports     struct{ grpc, metrics, health int }

	peakRSS     uint64
	queueAtKill float64
	latency     soak.Histogram
}

func (s *soakRun) run(ctx context.Context) int {
	o := s.o
	total := int(o.duration.Seconds() * float64(o.rate))
	s.log.printf("plan: %d records at %d/s (%v), %d services; PostgreSQL down twice for %v, collector SIGKILLed once; work folder %s",
		total, o.rate, o.duration, o.services, o.pgDown, o.dir)

	if err := s.startPostgres(ctx); err != nil {
		s.log.printf("FAIL: PostgreSQL: %v", err)
		return 1
	}
	for _, sub := range []string{"queue", "state"} {
		if err := os.MkdirAll(filepath.Join(o.dir, sub), 0o700); err != nil {
			s.log.printf("FAIL: %v", err)
			return 1
		}
	}
	ports, err := proctest.FreePorts(3)
	if err != nil {
		s.log.printf("FAIL: %v", err)
		return 1
	}
	s.ports.grpc, s.ports.metrics, s.ports.health = ports[0], ports[1], ports[2]
	cfgPath := filepath.Join(o.dir, "collector.yaml")
	conf := collectorConfig
	if o.memoryQueue {
		conf = strings.Replace(conf, "      storage: file_storage/queue\n", "", 1)
		s.log.printf("negative control: the sending queue is in memory; expect lost records")
	}
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		s.log.printf("FAIL: %v", err)
		return 1
	}
	s.latency = soak.Histogram{}
	if err := s.startCollector(ctx); err != nil {
		s.log.printf("FAIL: collector: %v", err)
		return 1
	}

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", s.ports.grpc), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.log.printf("FAIL: %v", err)
		return 1
	}
	defer conn.Close()
	client := plogotlp.NewGRPCClient(conn)

	// Faults fire at fixed fractions of the records sent, so a run is the
	// same whatever the machine's speed.
	var sent atomic.Int64
	faultErr := make(chan error, 1)
	go func() { faultErr <- s.faults(ctx, &sent, int64(total)) }()
	go s.sampleRSS(ctx)

	gen := soak.NewGenerator(o.services, min(total/10, 5000), max(total/200, 50))
	injected, retries := 0, 0
	tick := 100 * time.Millisecond
	perTick := max(o.rate/10, 1)
	next := time.Now()
	lastReport := time.Now()
	for int(sent.Load()) < total {
		if err := ctx.Err(); err != nil {
			s.log.printf("FAIL: stopped while sending: %v", err)
			return 1
		}
		n := min(perTick, total-int(sent.Load()))
		ld, inj := gen.Next(n, time.Now())
		req := plogotlp.NewExportRequestFromLogs(ld)
		// Retry until the collector accepts the request: it may be down
		// (SIGKILL) or push back; the records must arrive at least once.
		for {
			cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := client.Export(cctx, req, grpc.WaitForReady(true))
			ccancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				s.log.printf("FAIL: stopped while sending: %v", ctx.Err())
				return 1
			}
			retries++
			time.Sleep(200 * time.Millisecond)
		}
		injected += inj
		sent.Add(int64(n))
		if time.Since(lastReport) >= 15*time.Second {
			lastReport = time.Now()
			s.log.printf("sent %d/%d records (%d retried requests)", sent.Load(), total, retries)
		}
		next = next.Add(tick)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else if d < -10*time.Second {
			next = time.Now() // far behind after an outage: do not burst forever
		}
	}
	s.log.printf("sent all %d records (%d injected anomalies, %d retried requests)", total, injected, retries)
	if err := <-faultErr; err != nil {
		s.log.printf("FAIL: fault injection: %v", err)
		return 1
	}

	if err := s.drain(ctx); err != nil {
		s.log.printf("FAIL: %v", err)
		return 1
	}
	s.scrapeLatency()
	s.readRSS()
	if err := s.stopCollector(syscall.SIGTERM); err != nil {
		s.log.printf("FAIL: collector shutdown: %v", err)
		return 1
	}

	flagged := map[int64]soak.Flagged{}
	emitted := 0
	for life := 1; life <= s.collLives; life++ {
		path := filepath.Join(o.dir, fmt.Sprintf("out-%d.jsonl", life))
		n, err := soak.ReadFlagged(path, flagged, true)
		if err != nil {
			s.log.printf("FAIL: %v", err)
			return 1
		}
		emitted += n
	}
	rows, err := storedRows(ctx, s.dsn)
	if err != nil {
		s.log.printf("FAIL: reading the store: %v", err)
		return 1
	}
	res := soak.Compare(flagged, rows, injected)
	fps := map[string]bool{}
	for _, r := range rows {
		fps[r.Fingerprint] = true
	}

	fmt.Println()
	fmt.Println("soak result")
	fmt.Printf("  records sent                 %d (%d emitted by the collector, re-sent ones included)\n", total, emitted)
	fmt.Printf("  flagged (distinct)           %d (injected anomalies flagged: %d of %d)\n", res.Flagged, res.InjectedHit, res.Injected)
	fmt.Printf("  stored (anomalies rows)      %d (%d distinct fingerprints)\n", res.Stored, len(fps))
	fmt.Printf("  lost                         %d\n", res.Lost)
	fmt.Printf("  duplicated                   %d\n", res.Duplicated)
	fmt.Printf("  stored, not in file output   %d (file exporter buffer lost at SIGKILL; not an error)\n", res.Extra)
	kind := "persistent"
	if o.memoryQueue {
		kind = "in memory"
	}
	fmt.Printf("  queue at SIGKILL             %.0f requests (%s queue, PostgreSQL down)\n", s.queueAtKill, kind)
	fmt.Printf("  peak RSS (VmHWM)             %.1f MiB\n", float64(s.peakRSS)/(1<<20))
	if s.latency.Count() > 0 {
		fmt.Printf("  p99 scoring latency          %.1f µs per record (p50 %.1f µs; %d batches)\n",
			s.latency.Quantile(0.99)*1e6, s.latency.Quantile(0.5)*1e6, int(s.latency.Count()))
	} else {
		fmt.Printf("  p99 scoring latency          n/a (no histogram scraped)\n")
	}
	if res.Lost > 0 || res.Duplicated > 0 {
		fmt.Printf("FAIL: lost=%d duplicated=%d (first lost seqs: %v)\n", res.Lost, res.Duplicated, res.LostSeqs)
		return 1
	}
	if res.Flagged == 0 {
		fmt.Println("FAIL: nothing was flagged, so nothing was checked")
		return 1
	}
	fmt.Println("PASS: every flagged record is stored exactly once")
	return 0
}

// faults stops and restarts PostgreSQL at 20% of the records, and at 55%
// stops it again and SIGKILLs the collector while PostgreSQL is down, so the
// kill hits a persistent queue holding requests the store has not taken.
func (s *soakRun) faults(ctx context.Context, sent *atomic.Int64, total int64) error {
	steps := []struct {
		at   float64
		name string
		fn   func(context.Context) error
	}{
		{0.20, "PostgreSQL restart 1", s.bouncePostgres},
		{0.55, "PostgreSQL restart 2 with a collector SIGKILL while it is down", s.bounceWithKill},
	}
	for _, st := range steps {
		for float64(sent.Load()) < st.at*float64(total) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		s.log.printf("fault: %s at %d records", st.name, sent.Load())
		if err := st.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (s *soakRun) bounceWithKill(ctx context.Context) error {
	if err := s.stopPostgres(); err != nil {
		return err
	}
	s.log.printf("PostgreSQL stopped; down for %v", s.o.pgDown)
	if err := sleepCtx(ctx, s.o.pgDown/2); err != nil {
		return err
	}
	if q, err := s.queueSize(); err == nil {
		s.queueAtKill = q
		s.log.printf("driftlock exporter queue holds %.0f requests", q)
	}
	if err := s.killCollector(ctx); err != nil {
		return err
	}
	if err := sleepCtx(ctx, s.o.pgDown/2); err != nil {
		return err
	}
	if err := s.startPostgres(ctx); err != nil {
		return err
	}
	s.log.printf("PostgreSQL back on port %s", s.pgPort)
	return nil
}

func (s *soakRun) pg(ctx context.Context, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.o.pgScript, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", s.o.pgScript, strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

func (s *soakRun) startPostgres(ctx context.Context) error {
	s.pgDir = filepath.Join(s.o.dir, "pg")
	// As root, scripts/pg runs the server as the postgres user, which must
	// be able to reach its data folder inside the work folder.
	if err := os.Chmod(s.o.dir, 0o755); err != nil {
		return err
	}
	var env []string
	if s.pgPort != "" {
		env = append(env, "PG_PORT="+s.pgPort) // same port: the collector's DSN stays valid
	}
	out, err := s.pg(ctx, env, "start", s.pgDir)
	if err != nil {
		return err
	}
	s.pgUp = true
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "export DRIFTLOCK_TEST_DSN="); ok {
			s.dsn = v
		}
		if v, ok := strings.CutPrefix(line, "export PGPORT="); ok {
			s.pgPort = v
		}
	}
	if s.dsn == "" || s.pgPort == "" {
		return fmt.Errorf("scripts/pg printed no DSN: %q", out)
	}
	return nil
}

func (s *soakRun) stopPostgres() error {
	if !s.pgUp {
		return nil
	}
	_, err := s.pg(context.Background(), nil, "stop", s.pgDir)
	s.pgUp = false
	return err
}

func (s *soakRun) bouncePostgres(ctx context.Context) error {
	if err := s.stopPostgres(); err != nil {
		return err
	}
	s.log.printf("PostgreSQL stopped; down for %v", s.o.pgDown)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.o.pgDown):
	}
	if err := s.startPostgres(ctx); err != nil {
		return err
	}
	s.log.printf("PostgreSQL back on port %s", s.pgPort)
	return nil
}

// collectorConfig is the soak's collector: OTLP/gRPC in, memory_limiter and
// the driftlock processor (state checkpointed to file_storage), the
// driftlock exporter with a persistent sending queue retrying forever, and
// a file exporter whose output is the reference of what was flagged.
const collectorConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:${env:SOAK_HEALTH_PORT}
  file_storage/queue:
    directory: ${env:SOAK_DIR}/queue
  file_storage/state:
    directory: ${env:SOAK_DIR}/state
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${env:SOAK_GRPC_PORT}
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 1024
    spike_limit_mib: 256
  driftlock:
    stream_by: [service.name]
    annotate: anomalies
    storage: file_storage/state
    checkpoint_interval: 5s
exporters:
  driftlock:
    dsn: ${env:DRIFTLOCK_DSN}
    timeout: 5s
    retry_on_failure:
      enabled: true
      initial_interval: 100ms
      max_interval: 2s
      max_elapsed_time: 0
    sending_queue:
      enabled: true
      storage: file_storage/queue
      queue_size: 100000
      num_consumers: 4
  file:
    path: ${env:SOAK_OUT}
    flush_interval: 100ms
service:
  extensions: [health_check, file_storage/queue, file_storage/state]
  telemetry:
    logs:
      level: warn
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: ${env:SOAK_METRICS_PORT}
  pipelines:
    logs:
      receivers: [otlp]
      processors: [memory_limiter, driftlock]
      exporters: [driftlock, file]
`

func (s *soakRun) startCollector(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.collLives++
	life := s.collLives
	logf, err := os.Create(filepath.Join(s.o.dir, fmt.Sprintf("collector-%d.log", life)))
	if err != nil {
		return err
	}
	cmd := exec.Command(s.o.bin, "--config", filepath.Join(s.o.dir, "collector.yaml"))
	cmd.Env = append(os.Environ(),
		"SOAK_DIR="+s.o.dir,
		"SOAK_OUT="+filepath.Join(s.o.dir, fmt.Sprintf("out-%d.jsonl", life)),
		"SOAK_GRPC_PORT="+strconv.Itoa(s.ports.grpc),
		"SOAK_METRICS_PORT="+strconv.Itoa(s.ports.metrics),
		"SOAK_HEALTH_PORT="+strconv.Itoa(s.ports.health),
		"DRIFTLOCK_DSN="+s.dsn,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C on the terminal reaches the soak, which
	// stops the collector itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	proc, err := proctest.Start(cmd)
	if err != nil {
		logf.Close()
		return err
	}
	go func() { <-proc.Done(); logf.Close() }()
	s.coll = proc
	if err := proc.WaitHealthy(ctx, s.ports.health, 60*time.Second); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("collector %v; see %s", err, logf.Name())
	}
	s.log.printf("collector life %d up (pid %d)", life, cmd.Process.Pid)
	return nil
}

func (s *soakRun) stopCollector(sig syscall.Signal) error {
	s.mu.Lock()
	proc := s.coll
	s.coll = nil
	s.mu.Unlock()
	if proc == nil {
		return nil
	}
	if err := proc.Stop(sig, 30*time.Second); errors.Is(err, proctest.ErrKilled) {
		return errors.New("collector did not stop within 30s of " + sig.String() + "; killed")
	}
	if ps := proc.Cmd.ProcessState; sig == syscall.SIGTERM && ps != nil && !ps.Success() {
		return fmt.Errorf("collector exited with %v", ps)
	}
	return nil
}

func (s *soakRun) killCollector(ctx context.Context) error {
	s.scrapeLatency() // its counts die with it
	s.readRSS()
	if err := s.stopCollector(syscall.SIGKILL); err != nil {
		return err
	}
	s.log.printf("collector SIGKILLed; restarting in 1s")
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
	}
	return s.startCollector(ctx)
}

// readRSS folds the running collector's VmHWM (its peak resident set) into
// the run's peak.
func (s *soakRun) readRSS() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.coll == nil {
		return
	}
	if v, err := soak.ProcStatusOf(s.coll.Cmd.Process.Pid, "VmHWM"); err == nil && v > s.peakRSS {
		s.peakRSS = v
	}
}

func (s *soakRun) sampleRSS(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
			s.readRSS()
		}
	}
}

func (s *soakRun) scrape() ([]byte, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.ports.metrics))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func (s *soakRun) scrapeLatency() {
	b, err := s.scrape()
	if err != nil {
		s.log.printf("warning: telemetry scrape: %v", err)
		return
	}
	h, err := soak.ParseHistogram(bytes.NewReader(b), "otelcol_processor_driftlock_scoring_duration")
	if err != nil {
		s.log.printf("warning: %v", err)
		return
	}
	s.latency.Add(h)
}

// queueSize reads the driftlock exporter's sending queue size.
func (s *soakRun) queueSize() (float64, error) {
	b, err := s.scrape()
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	found, total := false, 0.0
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "otelcol_exporter_queue_size{") || !strings.Contains(line, `exporter="driftlock"`) {
			continue
		}
		f := strings.Fields(line[strings.LastIndex(line, "}")+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, err
		}
		found, total = true, total+v
	}
	if !found {
		return 0, errors.New("otelcol_exporter_queue_size{exporter=\"driftlock\"} not in telemetry")
	}
	return total, nil
}

// drain waits until the exporter's queue is empty and the row count has not
// moved for 3 s (at most 3 minutes).
func (s *soakRun) drain(ctx context.Context) error {
	deadline := time.Now().Add(3 * time.Minute)
	lastRows, stable := -1, 0
	for time.Now().Before(deadline) {
		q, qerr := s.queueSize()
		rows, err := countRows(ctx, s.dsn)
		if err == nil && qerr == nil && q == 0 && rows == lastRows {
			stable++
			if stable >= 3 {
				s.log.printf("drained: queue empty, %d rows", rows)
				return nil
			}
		} else {
			stable = 0
		}
		lastRows = rows
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return errors.New("the exporter's queue did not drain within 3 minutes")
}

func countRows(ctx context.Context, dsn string) (int, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, "SELECT count(*) FROM anomalies").Scan(&n)
	return n, err
}

func storedRows(ctx context.Context, dsn string) ([]soak.StoredRow, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT fingerprint, COALESCE((attributes->>'soak.seq')::bigint, -1) FROM anomalies")
	if err != nil {
		return nil, err
	}
	var out []soak.StoredRow
	for rows.Next() {
		var r soak.StoredRow
		if err := rows.Scan(&r.Fingerprint, &r.Seq); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, rows.Err()
}

// cleanup stops whatever is still running: the collector, PostgreSQL.
func (s *soakRun) cleanup() {
	if err := s.stopCollector(syscall.SIGTERM); err != nil {
		s.log.printf("cleanup: %v", err)
	}
	if err := s.stopPostgres(); err != nil {
		s.log.printf("cleanup: %v", err)
	}
}
