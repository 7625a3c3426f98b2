package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/notify"
	"github.com/driftlock/driftlock/internal/store"
)

// saveIncident upserts in and queues its notification of event for the
// receivers, as the correlator does, in one transaction.
func saveIncident(t *testing.T, st *store.Store, in *store.Incident, event, change string, prev *notify.Identity, receivers []string) notify.Notification {
	t.Helper()
	ctx := context.Background()
	cs, err := st.TryLockCorrelator(ctx, "test")
	if err != nil || cs == nil {
		t.Fatalf("correlator lock: %v", err)
	}
	defer cs.Release()
	var n notify.Notification
	err = cs.Save(ctx, func(tx *store.IncidentTx) error {
		if err := tx.Upsert(ctx, in); err != nil {
			return err
		}
		n = notify.New(in, event, change, prev, "http://driftlock.test")
		items, err := notify.OutboxItems(n, receivers)
		if err != nil {
			return err
		}
		return tx.Enqueue(ctx, items)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sampleIncident(key string, opened time.Time) *store.Incident {
	return &store.Incident{Key: key, State: store.IncidentOpen, Title: "ts-basic-service: new ERROR template, 41 records",
		Leader: "ts-basic-service", Severity: "warning", Signals: []string{"logs", "traces"}, Size: 41,
		Services: json.RawMessage(`[{"service":"ts-basic-service","why":["first to show trouble"]},{"service":"ts-travel-service","why":["caller"]}]`),
		OpenedAt: opened, LastEvidenceAt: opened.Add(time.Minute), Revision: 1}
}

// alertmanagerBinary finds Debian's prometheus-alertmanager (or an
// upstream alertmanager) on PATH.
func alertmanagerBinary(t *testing.T) string {
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startAlertmanager runs a real Alertmanager on a free loopback port with a
// temporary configuration and storage, routing every alert to webhookURL
// (resolved ones too), and returns its base URL. It is stopped at cleanup.
func startAlertmanager(t *testing.T, webhookURL string) string {
	t.Helper()
	bin := alertmanagerBinary(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`route:
  receiver: test
  group_by: [incident, service]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %q
        send_resolved: true
`, webhookURL)
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
