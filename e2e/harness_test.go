// Package e2e runs the built otelcol-driftlock distribution as real
// processes on loopback ports, against a real PostgreSQL (the one `make
// test` starts, DRIFTLOCK_TEST_DSN), and checks what came out of it.
// Skipped under -short: it compiles the distro (about 2.5 min cold).
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/store/storetest"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// repoRoot walks up from the working directory to the folder holding go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("go.mod not found above " + wd)
		}
	}
}

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

// collectorBinary builds cmd/otelcol-driftlock once per test binary run.
// OTELCOL_DRIFTLOCK_BIN reuses a binary already built (make build).
func collectorBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped under -short (builds and runs the collector distribution)")
	}
	if p := os.Getenv("OTELCOL_DRIFTLOCK_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "driftlock-e2e-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "otelcol-driftlock")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/otelcol-driftlock")
		cmd.Dir = repoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build ./cmd/otelcol-driftlock: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePorts reserves n distinct loopback ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// syncBuffer collects a child's output safely while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// collector is one otelcol-driftlock process.
type collector struct {
	name       string
	cmd        *exec.Cmd
	out        *syncBuffer
	done       chan struct{}
	waitErr    error
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
	c := &collector{name: name, out: &syncBuffer{}, done: make(chan struct{}),
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
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.cmd = cmd
	go func() { c.waitErr = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("--- %s output (last 4 KiB) ---\n%s", name, tail(c.out.String(), 4096))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.done:
			t.Fatalf("%s exited during start: %v\n%s", name, c.waitErr, tail(c.out.String(), 4096))
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", c.health))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy after 60s\n%s", name, tail(c.out.String(), 4096))
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("%s: SIGTERM: %v", c.name, err)
	}
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30s of SIGTERM", c.name)
	}
	if c.waitErr != nil {
		t.Fatalf("%s exited uncleanly: %v\n%s", c.name, c.waitErr, tail(c.out.String(), 4096))
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
