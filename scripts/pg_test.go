// Package scripts_test checks the shell helpers under scripts/ as a user
// runs them.
package scripts_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func havePostgres() bool {
	if _, err := exec.LookPath("initdb"); err == nil {
		return true
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	return len(m) > 0
}

// scripts/pg start with a relative folder: the server resolves its socket
// and data paths from its own working directory, so the script must pass
// absolute ones.
func TestPGStartRelativeDir(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a PostgreSQL server (make test runs it)")
	}
	if !havePostgres() {
		t.Skip("initdb not found: install PostgreSQL (apt-get install -y postgresql) to test scripts/pg")
	}
	script, err := filepath.Abs("pg")
	if err != nil {
		t.Fatal(err)
	}
	// Under /tmp (not t.TempDir, whose parents are private): as root the
	// server runs as the postgres user, which must reach the folder.
	work, err := os.MkdirTemp("", "driftlock-pg-rel-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	pg := func(args ...string) (string, error) {
		c := exec.Command(script, args...)
		c.Dir = work
		out, err := c.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		_, _ = pg("clean", "rel/pg")
		os.RemoveAll(work)
	})
	if err := os.Mkdir(filepath.Join(work, "rel"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := pg("start", "rel/pg")
	if err != nil {
		t.Fatalf("scripts/pg start rel/pg: %v\n%s", err, out)
	}
	dsn := exported(out, "DRIFTLOCK_TEST_DSN")
	if dsn == "" {
		t.Fatalf("no DSN printed: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to the started server: %v", err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query: %d %v", one, err)
	}
	conn.Close(ctx)
	// env and a second start find the same running server by the same
	// relative name.
	if out, err := pg("env", "rel/pg"); err != nil || exported(out, "DRIFTLOCK_TEST_DSN") != dsn {
		t.Fatalf("scripts/pg env rel/pg: %v %s", err, out)
	}
	if out, err := pg("start", "rel/pg"); err != nil || exported(out, "DRIFTLOCK_TEST_DSN") != dsn {
		t.Fatalf("second start: %v %s", err, out)
	}
	if out, err := pg("clean", "rel/pg"); err != nil {
		t.Fatalf("scripts/pg clean rel/pg: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(work, "rel", "pg")); !os.IsNotExist(err) {
		t.Fatalf("clean left the folder: %v", err)
	}
}

func exported(out, name string) string {
	sc := bufio.NewScanner(bytes.NewReader([]byte(out)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "export "+name+"="); ok {
			return v
		}
	}
	return ""
}
