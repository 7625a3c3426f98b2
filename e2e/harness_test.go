// Package e2e runs the built otelcol-driftlock distribution as real
// processes on loopback ports, against a real PostgreSQL (the one `make
// test` starts, DRIFTLOCK_TEST_DSN), and checks what came out of it.
// Skipped under -short: it compiles the distro (about 2.5 min cold).
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/proctest"
	"github.com/driftlock/driftlock/internal/store/storetest"
	"github.com/driftlock/driftlock/internal/testutil"
)

// distro is cmd/otelcol-driftlock, built once per test binary run.
// OTELCOL_DRIFTLOCK_BIN reuses a binary already built (make build).
var distro = testutil.Binary{Pkg: "./cmd/otelcol-driftlock", Env: "OTELCOL_DRIFTLOCK_BIN"}

func TestMain(m *testing.M) {
	storetest.Announce()
	code := m.Run()
	distro.Remove()
	os.Exit(code)
}

// repoRoot is the folder holding go.mod.
func repoRoot(t testing.TB) string { return testutil.RepoRoot(t) }

// requireE2E skips under -short and without PostgreSQL, then builds the
// distro.
func requireE2E(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped under -short (builds and runs the collector distribution)")
	}
	storetest.AdminDSN(t)
	collectorBinary(t)
}

// collectorBinary is the distro's path (skipped under -short).
func collectorBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped under -short (builds and runs the collector distribution)")
	}
	return distro.Path(t)
}

// freePorts reserves n distinct loopback ports.
func freePorts(t testing.TB, n int) []int { return testutil.FreePorts(t, n) }

// collector is one otelcol-driftlock process.
type collector struct {
	name       string
	proc       *proctest.Process
	out        *proctest.SyncBuffer
	grpc, http int
	metrics    int
	health     int
	outDir     string
}

// startCollector runs the distro with config (a path under testdata) and
// env, on fresh ports, and waits until its health check answers.
func startCollector(t *testing.T, name, config string, env map[string]string) *collector {
	t.Helper()
	bin := collectorBinary(t)
	p := freePorts(t, 4)
	c := &collector{name: name, out: &proctest.SyncBuffer{},
		grpc: p[0], http: p[1], metrics: p[2], health: p[3], outDir: t.TempDir()}
	cmd := exec.Command(bin, "--config", filepath.Join(repoRoot(t), "e2e", "testdata", config))
	cmd.Env = append(os.Environ(),
		"E2E_GRPC_PORT="+strconv.Itoa(c.grpc),
		"E2E_HTTP_PORT="+strconv.Itoa(c.http),
		"E2E_METRICS_PORT="+strconv.Itoa(c.metrics),
		"E2E_HEALTH_PORT="+strconv.Itoa(c.health),
		"E2E_OUT="+c.outDir,
	)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	proc, err := proctest.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	c.proc = proc
	t.Cleanup(func() {
		proc.Kill()
		if t.Failed() {
			t.Logf("--- %s output (last 4 KiB) ---\n%s", name, tail(c.out.String(), 4096))
		}
	})
	if err := proc.WaitHealthy(context.Background(), c.health, 60*time.Second); err != nil {
		t.Fatalf("%s %v\n%s", name, err, tail(c.out.String(), 4096))
	}
	return c
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// stop sends SIGTERM and requires a clean exit (status 0, "Shutdown
// complete." logged) within 30 s.
func (c *collector) stop(t *testing.T) {
	t.Helper()
	if err := c.proc.Stop(syscall.SIGTERM, 30*time.Second); errors.Is(err, proctest.ErrKilled) {
		t.Fatalf("%s %v", c.name, err)
	} else if err != nil {
		t.Fatalf("%s exited uncleanly: %v\n%s", c.name, err, tail(c.out.String(), 4096))
	}
	if !strings.Contains(c.out.String(), "Shutdown complete") {
		t.Fatalf("%s: no \"Shutdown complete\" in its log", c.name)
	}
}

// promSum scrapes the collector's own Prometheus endpoint and sums every
// sample of the metric families whose name starts with prefix.
func (c *collector) promSum(t *testing.T, prefix string) (float64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", c.metrics), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: scrape: %v", c.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	found := false
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		name := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
		}
		// Counters only: skip histogram series of the same prefix.
		if strings.HasSuffix(name, "_bucket") || strings.HasSuffix(name, "_sum") || strings.HasSuffix(name, "_count") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// eventually polls cond every 200 ms until it returns true or timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
