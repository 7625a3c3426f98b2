package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemoScript runs `scripts/demo` non-interactively (DEMO_EXIT=1) on
// the synthetic stream, as `DEMO_EXIT=1 make demo` would after `make
// build`: PostgreSQL, collector, API, replay, summary; then checks the
// summary and that everything it started is gone.
func TestDemoScript(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: skipped under -short (runs the whole demo)")
	}
	if _, err := exec.LookPath("initdb"); err != nil {
		if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(m) == 0 {
			t.Skip("PostgreSQL server binaries (initdb) not installed; scripts/deps installs them")
		}
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed (scripts/pg and scripts/demo use it to find free ports)")
	}
	collector := requireDistro(t)
	root := repoRoot(t)
	binDir := filepath.Dir(collector)
	cli := filepath.Join(binDir, "driftlock")
	build := exec.Command("go", "build", "-o", cli, "./cmd/driftlock")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/driftlock: %v\n%s", err, out)
	}
	if filepath.Base(collector) != "otelcol-driftlock" {
		t.Skip("OTELCOL_DRIFTLOCK_BIN must be named otelcol-driftlock for the demo script")
	}
	// The demo's PostgreSQL runs as the postgres user when we are root:
	// its folder must be reachable, so not t.TempDir (0700).
	demoDir, err := os.MkdirTemp("", "driftlock-demo-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(demoDir, 0o755)
	t.Cleanup(func() {
		exec.Command(filepath.Join(root, "scripts", "pg"), "clean", filepath.Join(demoDir, "pg")).Run()
		os.RemoveAll(demoDir)
	})
	api := freePorts(t, 1)[0]
	cmd := exec.Command(filepath.Join(root, "scripts", "demo"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "DEMO_EXIT=1", "DEMO_SYNTHETIC=1", "BIN="+binDir, "DEMO_DIR="+demoDir,
		fmt.Sprintf("DEMO_API_ADDR=127.0.0.1:%d", api))
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("demo did not finish within 5 minutes:\n%s", out)
	}
	if err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		"Anomalies (record-level flags): ",
		"Injected faults (",
		"Incidents: ",
		fmt.Sprintf("Web page: http://127.0.0.1:%d/", api),
		"Log in with the admin API key: dlk_",
		"stopped",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// The summary scores the incidents against the injected faults with
	// the eval's line; at least one of the three must be found by an
	// incident naming its service, and each fault has its table row.
	if m := regexp.MustCompile(`faults=(\d+)/3 `).FindStringSubmatch(s); m == nil {
		t.Errorf("demo output lacks the faults=D/3 score line")
	} else if found, _ := strconv.Atoi(m[1]); found < 1 {
		t.Errorf("no injected fault was found by an incident (faults=%s/3)", m[1])
	}
	for _, svc := range []string{"checkout", "payment", "inventory"} {
		if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\S+\s+` + svc + `\s+(found|missed)`).MatchString(s) {
			t.Errorf("the fault table has no row for %s", svc)
		}
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", s)
	}
	// Everything it started is stopped: the API no longer answers.
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", api)); err == nil {
		resp.Body.Close()
		t.Fatalf("the demo's API still answers after exit")
	}
}
