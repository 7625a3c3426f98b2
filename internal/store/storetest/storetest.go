// Package storetest gives integration tests a fresh, migrated database on
// the real PostgreSQL that `make test` starts (scripts/pg). No mocks.
package storetest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/internal/poolaccess"
)

// EnvDSN names the variable holding the server's admin DSN.
const EnvDSN = "DRIFTLOCK_TEST_DSN"

var seq atomic.Int64

// AdminDSN returns the server DSN, skipping the test with a message when
// it is not set (run `make test`, or `eval "$(scripts/pg start)"` first).
func AdminDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		t.Skipf("%s is not set: this test needs PostgreSQL; run `make test` or `eval \"$(scripts/pg start)\"`", EnvDSN)
	}
	return dsn
}

// NewDatabase creates an empty database for this test, drops it at cleanup,
// and returns its DSN.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("storetest: connect %s: %v", EnvDSN, err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("t_%d_%d_%s", os.Getpid(), seq.Add(1), sanitize(t.Name()))
	if len(name) > 60 {
		name = name[:60]
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("storetest: parse %s: %v", EnvDSN, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Open returns a migrated Store on a fresh database, closed at cleanup.
func Open(t testing.TB) (*store.Store, string) {
	t.Helper()
	dsn := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("storetest: open: %v", err)
	}
	t.Cleanup(s.Close)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("storetest: migrate: %v", err)
	}
	return s, dsn
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Pool returns st's connection pool, for tests that check rows with raw
// SQL or break the connection on purpose. Production code reaches the
// database only through the Store's methods.
func Pool(st *store.Store) *pgxpool.Pool { return poolaccess.Of(st) }

// Main is TestMain for a package whose tests need PostgreSQL: it runs the
// tests after Announce.
func Main(m *testing.M) {
	Announce()
	os.Exit(m.Run())
}

// Announce says once per package, on stdout, that the tests needing
// PostgreSQL will skip because DRIFTLOCK_TEST_DSN is not set, and what runs
// them instead. Call it from TestMain (Main does).
func Announce() {
	if line := notice(os.Getenv(EnvDSN), packageDir()); line != "" {
		fmt.Println(line)
	}
}

// notice is Announce's line for a package directory, or "" when dsn is set.
func notice(dsn, pkg string) string {
	if dsn != "" {
		return ""
	}
	return fmt.Sprintf("%s: %s is not set, so this package's tests that need PostgreSQL skip; "+
		"`make test` starts a throwaway PostgreSQL (scripts/pg) and runs them all, "+
		"or run `eval \"$(scripts/pg start)\"` first", pkg, EnvDSN)
}

// packageDir is the test's directory relative to the module root
// (go test runs a package's tests in its directory).
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "this package"
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil {
				return "./" + filepath.ToSlash(rel)
			}
			return wd
		}
		if filepath.Dir(dir) == dir {
			return wd
		}
	}
}
