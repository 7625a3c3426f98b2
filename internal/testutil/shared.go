// Package testutil locates the shared datasets beside the repository for
// tests and benchmarks, and skips with a clear message when they are absent.
package testutil

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// RepoRoot returns the folder holding go.mod, walking up from the working
// directory (a test's working directory is its package folder).
func RepoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}

// SharedData returns ../shared/data beside the repository, or skips the
// test naming what is missing.
func SharedData(t testing.TB, parts ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{filepath.Dir(RepoRoot(t)), "shared", "data"}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared data %s is absent (%v): this test needs the datasets beside the repository", p, err)
	}
	return p
}

// LogLines reads a loghub sample's lines (skipping the test when absent).
func LogLines(t testing.TB, name string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(SharedData(t, "loghub", name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
}
