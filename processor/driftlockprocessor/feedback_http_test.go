package driftlockprocessor

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/driftlock/driftlock/internal/api"
	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// apiServer is a real `driftlock serve` (internal/api) in process over the
// test's store; it counts the answers it gives by status.
type apiServer struct {
	URL    string
	ts     *httptest.Server
	status sync429

	mu    sync.Mutex
	lists []url.Values // the query of each list request, in order
}

func (a *apiServer) listQueries() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.lists)
}

// sync429 counts requests and 429 answers.
type sync429 struct{ requests, tooMany atomic.Int64 }

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code; w.ResponseWriter.WriteHeader(code) }

func startAPI(t testing.TB, st *store.Store, tlsOn bool, mutate func(*api.Config)) *apiServer {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.RateLimit, cfg.RateBurst = 1000, 1000
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := api.New(st, cfg, nil)
	require.NoError(t, err)
	srv.Start()
	a := &apiServer{}
	h := srv.Handler()
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.status.requests.Add(1)
		if r.URL.Path == "/v1/anomalies" {
			a.mu.Lock()
			a.lists = append(a.lists, r.URL.Query())
			a.mu.Unlock()
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		if sw.code == http.StatusTooManyRequests {
			a.status.tooMany.Add(1)
		}
	})
	a.ts = httptest.NewUnstartedServer(counted)
	// The TLS test's refused handshake is expected; keep it out of the output.
	a.ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsOn {
		a.ts.StartTLS()
	} else {
		a.ts.Start()
	}
	a.URL = a.ts.URL
	t.Cleanup(func() {
		srv.Close()
		a.ts.CloseClientConnections()
		a.ts.Close()
	})
	return a
}

func createKey(t testing.TB, st *store.Store, name, role string) string {
	t.Helper()
	k, _, err := st.CreateKey(context.Background(), name, role)
	require.NoError(t, err)
	return k
}

func endpointCfg(url, key string) func(*Config) {
	return func(c *Config) {
		c.Feedback.Endpoint = url
		c.Feedback.APIKey = configopaque.String(key)
	}
}

// apiDo sends one request with a Bearer key and returns the status, the
// ETag and the decoded JSON body.
func apiDo(t *testing.T, method, u, key, ifMatch string, body any, out any) (int, string) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, u, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return resp.StatusCode, resp.Header.Get("ETag")
}

// TestFeedbackEndpointLearnsFalsePositives is the triage loop through a
// real `driftlock serve`: the processor flags a record, the exporter stores
// it, an analyst marks it false_positive with PATCH (If-Match from GET),
// the processor's next pull (feedback.endpoint, a viewer key) learns it;
// then the same kind of record is no longer flagged while a new kind is.
func TestFeedbackEndpointLearnsFalsePositives(t *testing.T) {
	st, dsn := storetest.Open(t)
	srv := startAPI(t, st, false, nil)
	viewer := createKey(t, st, "collector-fb", store.RoleViewer)
	analyst := createKey(t, st, "ann-analyst", store.RoleAnalyst)
	h := newFBHarness(t, st, dsn, testSettings(), endpointCfg(srv.URL, viewer))
	h.flagKindA()

	var list struct {
		Items []struct {
			ID int64 `json:"id"`
		} `json:"items"`
	}
	code, _ := apiDo(t, http.MethodGet, srv.URL+"/v1/anomalies?signal=logs&q="+url.QueryEscape(kindASummary), analyst, "", nil, &list)
	require.Equal(t, http.StatusOK, code)
	require.Len(t, list.Items, 2, "both flagged records reached the store")
	for _, it := range list.Items {
		u := srv.URL + "/v1/anomalies/" + strconv.FormatInt(it.ID, 10)
		code, etag := apiDo(t, http.MethodGet, u, analyst, "", nil, nil)
		require.Equal(t, http.StatusOK, code)
		require.NotEmpty(t, etag)
		code, _ = apiDo(t, http.MethodPatch, u, analyst, etag, map[string]string{"status": "false_positive", "note": "expected retries"}, nil)
		require.Equal(t, http.StatusOK, code, "PATCH with If-Match")
	}

	h.checkLearned(context.Background(), 2)
}

// TestFeedbackEndpointListsOnlyChanges: the first pull lists every false
// positive; the next ones ask only for those triaged since the newest
// updated_at already listed (less the overlap for late commits).
func TestFeedbackEndpointListsOnlyChanges(t *testing.T) {
	st, dsn := storetest.Open(t)
	srv := startAPI(t, st, false, nil)
	viewer := createKey(t, st, "collector-fb", store.RoleViewer)
	h := newFBHarness(t, st, dsn, testSettings(), endpointCfg(srv.URL, viewer))
	h.flagKindA()
	require.Equal(t, 2, h.markKindAInStore())
	ctx := context.Background()

	learned, err := h.e.fb.pull(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, learned)
	lists := srv.listQueries()
	require.Len(t, lists, 1)
	assert.Empty(t, lists[0].Get("updated_since"), "the first pull lists everything")

	var newest time.Time
	require.NoError(t, storetest.Pool(st).QueryRow(ctx, "SELECT max(updated_at) FROM anomalies WHERE status = 'false_positive'").Scan(&newest))
	again, err := h.e.fb.pull(ctx)
	require.NoError(t, err)
	assert.Zero(t, again)
	lists = srv.listQueries()
	require.Len(t, lists, 2)
	since, err := time.Parse(time.RFC3339Nano, lists[1].Get("updated_since"))
	require.NoError(t, err, "the second pull asks for changes only")
	assert.WithinDuration(t, newest.Add(-feedbackOverlap), since, time.Millisecond)
}

// TestFeedbackEndpointRevokedKey: a revoked key gets 401; the failure is
// logged (without the key) and counted, and the pipeline goes on scoring.
func TestFeedbackEndpointRevokedKey(t *testing.T) {
	st, dsn := storetest.Open(t)
	srv := startAPI(t, st, false, nil)
	key := createKey(t, st, "collector-fb", store.RoleViewer)
	_, err := st.RevokeKey(context.Background(), "collector-fb", "test")
	require.NoError(t, err)

	core, logs := observer.New(zapcore.DebugLevel)
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := testSettings()
	set.TelemetrySettings = tel.NewTelemetrySettings()
	set.Logger = zap.New(core)
	h := newFBHarness(t, st, dsn, set, endpointCfg(srv.URL, key))
	h.flagKindA()
	require.Equal(t, 2, h.markKindAInStore())

	_, err = h.e.fb.pull(context.Background())
	require.ErrorIs(t, err, errFeedbackUnauthorized)
	assert.Contains(t, err.Error(), "401")
	h.e.fb.tick(context.Background(), time.Minute) // the loop's step: logs and counts

	warn := logs.FilterMessage("driftlock feedback pull failed").All()
	require.Len(t, warn, 1)
	assert.Contains(t, warn[0].ContextMap()["error"], "401")
	for _, l := range logs.All() {
		b, _ := json.Marshal(l.ContextMap())
		assert.NotContains(t, l.Message+string(b), key, "the key is never logged")
	}
	m, err := tel.GetMetric("otelcol_processor_driftlock_feedback_errors")
	require.NoError(t, err)
	assert.Equal(t, int64(2), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value, "both failed pulls counted")

	got := h.send(50, h.kindA(), h.kindB)
	assert.Equal(t, []bool{true, true}, got, "the pipeline goes on; nothing was learned")
}

// TestFeedbackEndpointRateLimited: with the server's per-key bucket at one
// request per second, a pull meets 429s, waits the Retry-After and still
// learns every false positive.
func TestFeedbackEndpointRateLimited(t *testing.T) {
	st, dsn := storetest.Open(t)
	srv := startAPI(t, st, false, func(c *api.Config) { c.RateLimit, c.RateBurst = 1, 1 })
	key := createKey(t, st, "collector-fb", store.RoleViewer)
	h := newFBHarness(t, st, dsn, testSettings(), endpointCfg(srv.URL, key))
	h.flagKindA()
	require.Equal(t, 2, h.markKindAInStore())

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	learned, err := h.e.fb.pull(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, learned)
	assert.Positive(t, srv.status.tooMany.Load(), "the server answered 429 at least once")
	got := h.send(50, h.kindA(), h.kindB)
	assert.Equal(t, []bool{false, true}, got)
}

// TestFeedbackEndpointRetryAfterDefers: a Retry-After longer than the pull
// may take ends the pull with an error and defers the next pulls until
// then, without a request.
func TestFeedbackEndpointRetryAfterDefers(t *testing.T) {
	st, dsn := storetest.Open(t)
	// One token per 100 s: the first list takes it, the next gets 429
	// with a Retry-After of about 100 s.
	srv := startAPI(t, st, false, func(c *api.Config) { c.RateLimit, c.RateBurst = 0.01, 1 })
	key := createKey(t, st, "collector-fb", store.RoleViewer)
	h := newFBHarness(t, st, dsn, testSettings(), endpointCfg(srv.URL, key))
	h.send(600)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := h.e.fb.pull(ctx)
	require.NoError(t, err, "first pull has a token")
	_, err = h.e.fb.pull(ctx)
	require.ErrorIs(t, err, errFeedbackRateLimited)
	assert.Equal(t, int64(1), srv.status.tooMany.Load())
	before := srv.status.requests.Load()
	h.e.fb.tick(context.Background(), 10*time.Second)
	assert.Equal(t, before, srv.status.requests.Load(), "deferred: no request before Retry-After")
	assert.Equal(t, []bool{true}, h.send(50, h.kindB), "the pipeline goes on")
}

// TestFeedbackEndpointDown: with the API unreachable (refused) or hanging,
// the running loop's pulls fail and are counted, records keep flowing, and
// shutdown ends an in-flight pull.
func TestFeedbackEndpointDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	var entered atomic.Int64
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); hanging.Close() })

	for name, endpoint := range map[string]string{"refused": refused, "hanging": hanging.URL} {
		t.Run(name, func(t *testing.T) {
			st, dsn := storetest.Open(t)
			tel := componenttest.NewTelemetry()
			t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
			set := testSettings()
			set.TelemetrySettings = tel.NewTelemetrySettings()
			h := newFBHarness(t, st, dsn, set, func(c *Config) {
				endpointCfg(endpoint, "dlk_test")(c)
				c.Feedback.Interval = time.Second
			})
			h.send(600)
			if name == "refused" {
				require.Eventually(t, func() bool {
					m, err := tel.GetMetric("otelcol_processor_driftlock_feedback_errors")
					return err == nil && m.Data.(metricdata.Sum[int64]).DataPoints[0].Value >= 1
				}, time.Minute, 20*time.Millisecond, "a failed pull is counted")
			} else {
				require.Eventually(t, func() bool { return entered.Load() >= 1 }, time.Minute, 20*time.Millisecond,
					"a pull is in flight")
			}
			assert.Equal(t, []bool{true}, h.send(50, h.kindB), "records flow while feedback fails")
			// Cleanup shuts the processor down; with a pull hanging, shutdown
			// cancels it (a test timeout would show a hang).
		})
	}
}

// TestFeedbackEndpointTLS: an https endpoint verified with tls.ca_file;
// without the CA the pull fails on the certificate.
func TestFeedbackEndpointTLS(t *testing.T) {
	st, dsn := storetest.Open(t)
	srv := startAPI(t, st, true, nil)
	key := createKey(t, st, "collector-fb", store.RoleViewer)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.ts.Certificate().Raw}), 0o600))

	h := newFBHarness(t, st, dsn, testSettings(), func(c *Config) {
		endpointCfg(srv.URL, key)(c)
		c.Feedback.TLS.CAFile = ca
	})
	h.flagKindA()
	require.Equal(t, 2, h.markKindAInStore())
	h.checkLearned(context.Background(), 2)

	plain := newFBHarness(t, st, dsn, testSettings(), endpointCfg(srv.URL, key))
	_, err := plain.e.fb.pull(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", time.Second, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-3", time.Second, false},
		{"soon", time.Second, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, c := range cases {
		got, ok := retryAfter(c.in, now)
		assert.Equal(t, c.want, got, c.in)
		assert.Equal(t, c.ok, ok, c.in)
	}
}

func TestFeedbackEndpointValidation(t *testing.T) {
	cases := []struct {
		mutate func(*FeedbackConfig)
		want   error
		text   []string
	}{
		{func(f *FeedbackConfig) { f.Source = &feedbackID; f.Endpoint = "http://h:8080"; f.APIKey = "k" }, ErrFeedbackSource, []string{"feedback.source", "feedback.endpoint"}},
		{func(f *FeedbackConfig) { f.Endpoint = "http://h:8080" }, ErrFeedback, []string{"feedback.api_key", "required"}},
		{func(f *FeedbackConfig) { f.Endpoint = "ftp://h"; f.APIKey = "k" }, ErrFeedback, []string{"feedback.endpoint", "http or https"}},
		{func(f *FeedbackConfig) { f.Endpoint = "https://"; f.APIKey = "k" }, ErrFeedback, []string{"feedback.endpoint", "no host"}},
		{func(f *FeedbackConfig) { f.Endpoint = "https://u:secret@h"; f.APIKey = "k" }, ErrFeedback, []string{"credentials"}},
		{func(f *FeedbackConfig) { f.Endpoint = "https://h/?x=1"; f.APIKey = "k" }, ErrFeedback, []string{"query"}},
		{func(f *FeedbackConfig) { f.Endpoint = "https://h"; f.APIKey = "k"; f.MaxRecords = 5000 }, ErrFeedback, []string{"feedback.max_records", "1..1000"}},
		{func(f *FeedbackConfig) { f.Endpoint = "https://h"; f.APIKey = "k"; f.Lookback = -time.Hour }, ErrFeedback, []string{"feedback.lookback"}},
		{func(f *FeedbackConfig) { f.Endpoint = "https://h"; f.APIKey = "k"; f.TLS.MinVersion = "0.9" }, ErrFeedback, []string{"feedback.tls"}},
		{func(f *FeedbackConfig) { f.Source = &feedbackID; f.APIKey = "k" }, ErrFeedback, []string{"feedback.api_key", "feedback.endpoint only"}},
	}
	for i, c := range cases {
		cfg := testConfig()
		c.mutate(&cfg.Feedback)
		err := cfg.Validate()
		require.ErrorIs(t, err, c.want, "case %d", i)
		for _, s := range c.text {
			assert.Contains(t, err.Error(), s, "case %d", i)
		}
		assert.NotContains(t, err.Error(), "secret", "case %d: credentials are not echoed", i)
	}
	cfg := testConfig()
	endpointCfg("https://anomalies.internal:8080/", "dlk_x")(cfg)
	require.NoError(t, cfg.Validate())
}
