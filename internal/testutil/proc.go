package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/driftlock/driftlock/internal/proctest"
)

// FreePorts reserves n distinct loopback ports, failing the test when it
// cannot.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := proctest.FreePorts(n)
	if err != nil {
		t.Fatalf("free ports: %v", err)
	}
	return ports
}

// FreePort reserves one loopback port.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// Binary is a main package built at most once per test binary run (into a
// temporary folder that Remove deletes, from the package's TestMain), or
// taken from the environment variable Env when that is set, e.g.
// OTELCOL_DRIFTLOCK_BIN=bin/otelcol-driftlock after make build.
type Binary struct {
	Pkg string // e.g. "./cmd/otelcol-driftlock", relative to the repository root
	Env string

	once sync.Once
	dir  string
	path string
	err  error
}

// Path returns the binary, building it on first use; a failed build fails
// the test (and every later one asking).
func (b *Binary) Path(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(b.Env); b.Env != "" && p != "" {
		return p
	}
	root := RepoRoot(t)
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "driftlock-bin-")
		if b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, filepath.Base(b.Pkg))
		cmd := exec.Command("go", "build", "-o", b.path, b.Pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", b.Pkg, err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Remove deletes what Path built.
func (b *Binary) Remove() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}
