package api_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// newHostileEnv is newEnv on the http.Server the API really runs with
// (Server.HTTPServer: read-header/read/write timeouts, header size cap),
// with short timeouts so that slow clients are cut off quickly.
func newHostileEnv(t *testing.T, mutate ...func(*api.Config)) *env {
	t.Helper()
	st, _ := storetest.Open(t)
	cfg := testConfig()
	cfg.ReadHeaderTimeout = 300 * time.Millisecond
	cfg.ReadTimeout = time.Second
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := api.New(st, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = srv.HTTPServer()
	ts.Start()
	t.Cleanup(func() {
		srv.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	e := &env{t: t, st: st, srv: srv, ts: ts}
	mk := func(name, role string) string {
		k, _, err := st.CreateKey(context.Background(), name, role)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	e.viewer = mk("vic-viewer", store.RoleViewer)
	e.analyst = mk("ann-analyst", store.RoleAnalyst)
	e.admin = mk("ada-admin", store.RoleAdmin)
	return e
}

// Bodies over max_body_bytes are refused with 413 and a problem document,
// whether announced by Content-Length or streamed chunked, and never reach
// the database.
func TestHostileOversizedRequests(t *testing.T) {
	e := newHostileEnv(t)
	id := e.insert(row{})[0]
	patch := fmt.Sprintf("/v1/anomalies/%d", id)
	huge := `{"note":"` + strings.Repeat("A", 1<<20) + `"}`
	etag := e.get(patch, e.viewer).header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on GET")
	}

	for _, c := range []struct{ method, path, key string }{
		{http.MethodPatch, patch, e.analyst},
		{http.MethodPost, "/v1/keys", e.admin},
		{http.MethodPost, "/v1/anomalies", e.analyst},
		{http.MethodPost, "/v1/session", ""},
	} {
		r := e.do(c.method, c.path, c.key, huge, "If-Match", etag)
		wantCode(t, r, http.StatusRequestEntityTooLarge)
		if p := r.problem(t); p["type"] != "urn:driftlock:problem:body-too-large" {
			t.Fatalf("%s %s: problem %v", c.method, c.path, p)
		}
	}

	// Chunked (no Content-Length): cut off at the limit while reading.
	req, _ := http.NewRequest(http.MethodPatch, e.ts.URL+patch, io.MultiReader(
		strings.NewReader(`{"note":"`), strings.NewReader(strings.Repeat("B", 8<<20)), strings.NewReader(`"}`)))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+e.analyst)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", etag)
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked 8 MiB body: status %d", res.StatusCode)
	}

	// JSON nested deeper than any decoder should follow, within the size
	// limit: a 400, not a crash or a 500.
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	r := e.do(http.MethodPatch, patch, e.analyst, deep, "If-Match", etag)
	if r.code != http.StatusBadRequest {
		t.Fatalf("deeply nested JSON: status %d %s", r.code, r.body)
	}

	// Headers over the server's 32 KiB cap, and a 100 KB query string
	// (the request line counts as header): 431, before any handler runs.
	r = e.do(http.MethodGet, "/v1/anomalies", e.viewer, "", "X-Junk", strings.Repeat("j", 64<<10))
	wantCode(t, r, http.StatusRequestHeaderFieldsTooLarge)
	r = e.get("/v1/anomalies?q="+strings.Repeat("q", 100<<10), e.viewer)
	wantCode(t, r, http.StatusRequestHeaderFieldsTooLarge)

	var note string
	if err := storetest.Pool(e.st).QueryRow(context.Background(), "SELECT note FROM anomalies WHERE id=$1", id).Scan(&note); err != nil || note != "" {
		t.Fatalf("note after refused patches: %q (%v)", note, err)
	}
	var keys int
	if err := storetest.Pool(e.st).QueryRow(context.Background(), "SELECT count(*) FROM api_keys").Scan(&keys); err != nil || keys != 3 {
		t.Fatalf("api keys after refused creates: %d (%v)", keys, err)
	}
}

// waitClosed reports whether the server closes c (read returns an error or
// EOF) within limit; whatever the server wrote first is returned.
func waitClosed(c net.Conn, limit time.Duration) (bool, string) {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(c)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return false, string(b)
	}
	return true, string(b)
}

// Slowloris: clients that send their headers a byte at a time are cut off
// by the read-header timeout (300 ms here), and clients that trickle a body
// by the read timeout, while ordinary requests are still served. The limit
// waited for is a generous safety net, not a timing assertion.
func TestHostileSlowClients(t *testing.T) {
	e := newHostileEnv(t)
	id := e.insert(row{})[0]
	addr := strings.TrimPrefix(e.ts.URL, "http://")

	const clients = 30
	conns := make([]net.Conn, clients)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET /v1/anomalies HTTP/1.1\r\nHost: x\r\n")); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	// Keep trickling header bytes; the server must close anyway.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.Write([]byte("X")); err != nil {
					return
				}
			}
		}()
	}
	// Meanwhile the server answers others.
	wantCode(t, e.get("/healthz", ""), http.StatusOK)
	wantCode(t, e.get("/v1/anomalies", e.viewer), http.StatusOK)
	for i, c := range conns {
		if closed, _ := waitClosed(c, 15*time.Second); !closed {
			t.Fatalf("slow-header client %d still open after 15 s (read_header_timeout 300 ms)", i)
		}
	}
	close(stop)
	wg.Wait()

	// Slow body: headers complete, body trickled past the read timeout.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PATCH /v1/anomalies/%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", id, e.analyst)
	go func() {
		for range 200 {
			time.Sleep(50 * time.Millisecond)
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	closed, got := waitClosed(c, 15*time.Second)
	if !closed {
		t.Fatal("slow-body client still open after 15 s (read_timeout 1 s)")
	}
	if strings.Contains(got, " 200 ") || strings.Contains(got, " 500 ") {
		t.Fatalf("slow-body client got %q", firstLine(got))
	}
	wantCode(t, e.get("/healthz", ""), http.StatusOK)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// Cursors are opaque tokens: tampered, truncated, oversized or forged ones
// are a 400 naming `cursor`, never a 500 or someone else's page.
func TestHostileCursors(t *testing.T) {
	e := newHostileEnv(t)
	for range 5 {
		e.insert(row{})
	}
	r := e.get("/v1/anomalies?limit=2", e.viewer)
	wantCode(t, r, http.StatusOK)
	var lb listBody
	r.json(t, &lb)
	if lb.NextCursor == nil {
		t.Fatal("no cursor on a 2-row page of 5")
	}
	real := *lb.NextCursor
	flip := []byte(real)
	flip[len(flip)/2] ^= 0x01
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	bad := []string{
		string(flip),
		real[:len(real)/2],
		real + "A",
		real + "==",
		b64(`{"t":1,"i":1,"h":"` + strings.Repeat("h", 10000) + `"}`),
		b64(`{"t":-9223372036854775808,"i":-1,"h":""}`),
		b64(`{"t":1e400,"i":1}`),
		b64(`[1,2,3]`),
		b64(`null`),
		b64(strings.Repeat("[", 5000)),
		"\x00",
		"😀😀",
		"../../etc/passwd",
	}
	for _, c := range bad {
		r := e.get("/v1/anomalies?limit=2&cursor="+url.QueryEscape(c), e.viewer)
		if r.code != http.StatusBadRequest {
			t.Fatalf("cursor %q: status %d %s", trunc(c), r.code, r.body)
		}
		p := r.problem(t)
		ip, _ := p["invalid_params"].([]any)
		if len(ip) != 1 || ip[0].(map[string]any)["name"] != "cursor" {
			t.Fatalf("cursor %q: problem %v does not name cursor", trunc(c), p)
		}
	}
	// Filters that are not filters: a thousand unknown parameters, control
	// characters, duplicated keys.
	var q strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&q, "p%d=1&", i)
	}
	wantCode(t, e.get("/v1/anomalies?"+q.String(), e.viewer), http.StatusBadRequest)
	for _, v := range []string{"\x01\x02", "a\r\nX-Injected: 1", strings.Repeat("%", 300)} {
		r := e.get("/v1/anomalies?stream="+url.QueryEscape(v), e.viewer)
		if r.code != http.StatusOK && r.code != http.StatusBadRequest {
			t.Fatalf("stream=%q: status %d", trunc(v), r.code)
		}
		if r.header.Get("X-Injected") != "" {
			t.Fatal("a parameter value became a response header")
		}
	}
	// The real cursor still works.
	wantCode(t, e.get("/v1/anomalies?limit=2&cursor="+url.QueryEscape(real), e.viewer), http.StatusOK)
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// A flood of live-stream clients beyond sse max_clients: exactly the cap is
// served, every other client gets 503 with Retry-After (and is counted),
// and once the flood leaves, new clients are served again.
func TestHostileSSEFlood(t *testing.T) {
	const capacity, flood = 5, 60
	e := newHostileEnv(t, func(c *api.Config) { c.SSEMaxClients = capacity })
	var (
		mu     sync.Mutex
		ok     []*http.Response
		codes  = map[int]int{}
		cancel []context.CancelFunc
		wg     sync.WaitGroup
	)
	for range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cf := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/v1/stream", nil)
			req.Header.Set("Authorization", "Bearer "+e.viewer)
			res, err := e.ts.Client().Do(req)
			mu.Lock()
			defer mu.Unlock()
			cancel = append(cancel, cf)
			if err != nil {
				codes[-1]++
				return
			}
			codes[res.StatusCode]++
			if res.StatusCode == http.StatusOK {
				ok = append(ok, res)
				return
			}
			if res.Header.Get("Retry-After") == "" {
				codes[-2]++ // a refusal without Retry-After
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}()
	}
	wg.Wait()
	if codes[http.StatusOK] != capacity || codes[http.StatusServiceUnavailable] != flood-capacity || len(codes) != 2 {
		t.Fatalf("flood of %d against a cap of %d: statuses %v", flood, capacity, codes)
	}
	metrics := string(e.get("/metrics", e.viewer).body)
	if !strings.Contains(metrics, fmt.Sprintf("driftlock_api_sse_rejected_total %d\n", flood-capacity)) {
		t.Fatalf("rejections not counted:\n%s", grepLines(metrics, "driftlock_api_sse"))
	}
	// The admitted streams are live: each gets the next anomaly.
	id := e.insert(row{})[0]
	for i, res := range ok {
		if !sawEvent(res.Body, id, 20*time.Second) {
			t.Fatalf("admitted stream %d did not get anomaly %d", i, id)
		}
	}
	for _, cf := range cancel {
		cf()
	}
	for _, res := range ok {
		res.Body.Close()
	}
	waitClients(t, e, 0)
	c := e.openStream("", "")
	if c.resp.StatusCode != http.StatusOK {
		t.Fatalf("after the flood: status %d", c.resp.StatusCode)
	}
}

func sawEvent(body io.Reader, id int64, limit time.Duration) bool {
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(body)
		for sc.Scan() {
			if sc.Text() == fmt.Sprintf("id: %d", id) {
				found <- true
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		return ok
	case <-time.After(limit):
		return false
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
