package main

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/proctest"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// syncBuffer is safe for one writer goroutine and a reader.
type syncBuffer = proctest.SyncBuffer

// TestServeEndToEnd runs the real command: flags, store, migrations, key
// created by the keys command, HTTP on a free port, and a graceful stop on
// SIGINT.
func TestServeEndToEnd(t *testing.T) {
	dsn := storetest.NewDatabase(t)
	var keyOut, errOut bytes.Buffer
	if code := run([]string{"keys", "create", "--dsn", dsn, "--name", "e2e", "--role", "viewer"}, &keyOut, &errOut); code != 0 {
		t.Fatalf("keys create: %s", errOut.String())
	}
	key := strings.TrimSpace(keyOut.String())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"serve", "--dsn", dsn, "--addr", "127.0.0.1:0", "--search-index=false"}, stdout, stderr)
	}()
	re := regexp.MustCompile(`listening on (http://[0-9.:]+)/`)
	var base string
	for range 400 {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		case <-time.After(25 * time.Millisecond):
		}
	}
	if base == "" {
		t.Fatalf("serve never listened; stderr: %s", stderr.String())
	}
	get := func(path, key string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := get("/readyz", ""); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	if code, _ := get("/v1/anomalies", ""); code != 401 {
		t.Fatalf("no key: %d", code)
	}
	if code, body := get("/v1/anomalies", key); code != 200 || !strings.Contains(body, `"items":[]`) {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body := get("/", ""); code != 200 || !strings.Contains(body, "<title>Driftlock") {
		t.Fatalf("web page: %d", code)
	}
	// Logs are JSON lines naming the key.
	if !strings.Contains(stderr.String(), `"key":"e2e"`) || !strings.Contains(stderr.String(), `"msg":"request"`) {
		t.Fatalf("access log:\n%s", stderr.String())
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exit %d after SIGINT: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
}
