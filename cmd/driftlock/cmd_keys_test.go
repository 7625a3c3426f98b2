package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

func TestKeysCreateListRevoke(t *testing.T) {
	dsn := storetest.NewDatabase(t)
	var out, errOut bytes.Buffer
	if code := run([]string{"keys", "create", "--dsn", dsn, "--name", "oncall", "--role", "analyst"}, &out, &errOut); code != 0 {
		t.Fatalf("create exit %d: %s", code, errOut.String())
	}
	key := strings.TrimSpace(out.String())
	if !strings.HasPrefix(key, "dlk_") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("create printed %q; want only the key on stdout", out.String())
	}
	if !strings.Contains(errOut.String(), "shown only now") {
		t.Fatalf("create did not warn that the key is shown once: %s", errOut.String())
	}
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k, err := st.LookupKey(context.Background(), key)
	if err != nil || k.Role != "analyst" || k.Name != "oncall" {
		t.Fatalf("stored key %+v, %v", k, err)
	}
	out.Reset()
	if code := run([]string{"keys", "list", "--dsn", dsn}, &out, &errOut); code != 0 {
		t.Fatalf("list exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "oncall") || strings.Contains(out.String(), key) || strings.Contains(out.String(), store.HashKey(key)) {
		t.Fatalf("list output:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"keys", "revoke", "--dsn", dsn, "--name", "oncall"}, &out, &errOut); code != 0 {
		t.Fatalf("revoke exit %d: %s", code, errOut.String())
	}
	if _, err := st.LookupKey(context.Background(), key); err != store.ErrKeyRevoked {
		t.Fatalf("after revoke: %v", err)
	}
	// Duplicate names and unknown keys are errors (exit 1), not crashes.
	if code := run([]string{"keys", "create", "--dsn", dsn, "--name", "oncall", "--role", "viewer"}, &out, &errOut); code != 1 {
		t.Fatalf("duplicate create exit %d", code)
	}
	if code := run([]string{"keys", "revoke", "--dsn", dsn, "--name", "ghost"}, &out, &errOut); code != 1 {
		t.Fatalf("revoke unknown exit %d", code)
	}
}

func TestKeysAndServeUsageErrors(t *testing.T) {
	t.Setenv("DRIFTLOCK_DSN", "")
	for _, args := range [][]string{
		{"keys"},
		{"keys", "rotate"},
		{"keys", "create", "--name", "x"},
		{"keys", "create", "--name", "x", "--role", "root", "--dsn", "postgres://x"},
		{"keys", "revoke"},
		{"keys", "list", "extra"},
		{"serve", "--rate-limit", "0"},
		{"serve", "--session-secret", "zz"},
		{"serve", "--cors-origins", "not a url"},
		{"serve", "extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"keys", "list"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "DSN") {
		t.Errorf("keys list without DSN: exit %d: %s", code, errOut.String())
	}
}
