package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/driftlock/driftlock/internal/store/storetest"
)

func TestMigrateUpStatusDown(t *testing.T) {
	dsn := storetest.NewDatabase(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"migrate", "status", "--dsn", dsn}, &out, &errOut); code != 0 {
		t.Fatalf("status exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "pending") || strings.Contains(out.String(), "applied ") {
		t.Fatalf("fresh database status:\n%s", out.String())
	}
	out.Reset()
	t.Setenv("DRIFTLOCK_DSN", dsn) // the default DSN
	if code := run([]string{"migrate", "up"}, &out, &errOut); code != 0 {
		t.Fatalf("up exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "00001_init.sql") || strings.Contains(out.String(), "pending") {
		t.Fatalf("after up:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"migrate", "--dsn", dsn, "down"}, &out, &errOut); code != 0 {
		t.Fatalf("down exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "pending") {
		t.Fatalf("after down:\n%s", out.String())
	}
}

func TestMigrateUsageErrors(t *testing.T) {
	t.Setenv("DRIFTLOCK_DSN", "")
	for _, args := range [][]string{{"migrate"}, {"migrate", "sideways", "--dsn", "postgres://x"}, {"migrate", "up"}, {"migrate", "up", "extra", "--dsn", "x"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Fatalf("%v: exit %d, want 2 (usage); stderr %s", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"migrate", "up", "--dsn", "postgres://postgres@127.0.0.1:1/x?connect_timeout=2"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "127.0.0.1") {
		t.Fatalf("unreachable server: exit %d, stderr %s", code, errOut.String())
	}
}
