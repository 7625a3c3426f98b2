package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateListsEveryMistake: `otelcol-driftlock validate` on a file
// with several mistakes names each of them with its field and range, and
// never echoes a DSN's password.
func TestValidateListsEveryMistake(t *testing.T) {
	bin := requireDistro(t)
	cmd := exec.Command(bin, "validate", "--config", filepath.Join(repoRoot(t), "e2e", "testdata", "many-mistakes.yaml"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted a broken config:\n%s", out)
	}
	for _, want := range []string{
		"detector.p_value out of range: got 1.5",
		"detector.hop out of range: got 1000",
		`annotate must be one of anomalies, all: got "everything"`,
		`stream_by[1] "service.name" is listed twice`,
		"got 2, want 0 < histogram_quantile < 1",
		"feedback.interval got 1ms, want 1s..24h0m0s",
		"batch_size must be between 1 and 100000 (got 0)",
		"invalid port",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	// Each mistake once (the detector block used to be reported by the
	// processor and again by the config walk).
	for _, once := range []string{"p_value out of range", "hop out of range"} {
		if n := strings.Count(string(out), once); n != 1 {
			t.Errorf("validate lists %q %d times, want once:\n%s", once, n, out)
		}
	}
	if strings.Contains(string(out), "s3cret") {
		t.Errorf("validate echoes a password:\n%s", out)
	}
}
