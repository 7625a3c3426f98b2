// Package amtest runs a real Prometheus Alertmanager for tests: Debian's
// prometheus-alertmanager (scripts/deps installs it) or an upstream
// alertmanager binary, on a free loopback port with a temporary
// configuration and storage. Tests skip with a message when neither is
// installed, and fail instead when DRIFTLOCK_REQUIRE_ALERTMANAGER=1 (CI).
package amtest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// FreePort returns a loopback port nothing listens on (yet).
func FreePort(t testing.TB) int { return freePort(t) }

// Binary finds Debian's prometheus-alertmanager (or an
// upstream alertmanager) on PATH.
func Binary(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("DRIFTLOCK_REQUIRE_ALERTMANAGER") == "1" {
		t.Fatal("DRIFTLOCK_REQUIRE_ALERTMANAGER=1 but no Alertmanager binary on PATH (scripts/deps installs prometheus-alertmanager)")
	}
	t.Skip("no Alertmanager binary (prometheus-alertmanager or alertmanager) on PATH: " +
		"install Debian's prometheus-alertmanager (scripts/deps does) to run this test")
	return ""
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs a real Alertmanager on a free loopback port with a
// temporary configuration and storage, routing every alert to webhookURL
// (resolved ones too; "" for nowhere), and returns its base URL. It is stopped at cleanup.
func Start(t testing.TB, webhookURL string) string {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	receiver := ""
	if webhookURL != "" {
		receiver = fmt.Sprintf(`
    webhook_configs:
      - url: %q
        send_resolved: true`, webhookURL)
	}
	cfg := fmt.Sprintf(`route:
  receiver: test
  group_by: [incident, service]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: test%s
`, receiver)
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	logFile, err := os.Create(filepath.Join(dir, "alertmanager.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("alertmanager log:\n%s", b)
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager on %s not ready after 20s (last error %v)", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
