package driftlockprocessor

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoDatabaseDriver: a collector that only wants the processor
// links no PostgreSQL driver, no migration tool and not the store; the
// feedback that reads PostgreSQL comes through an extension
// (feedback.source).
func TestLinksNoDatabaseDriver(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot list the package's dependencies")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), deps)
	}
	// database/sql itself (not its driver interfaces, which uuid
	// packages import) would mean some SQL client came along.
	banned := []string{"github.com/jackc/pgx", "github.com/pressly/goose", "github.com/driftlock/driftlock/internal/store"}
	for _, dep := range deps {
		if dep == "database/sql" {
			t.Errorf("the processor links %s", dep)
		}
		for _, b := range banned {
			if dep == b || strings.HasPrefix(dep, b+"/") {
				t.Errorf("the processor links %s", dep)
			}
		}
	}
}
