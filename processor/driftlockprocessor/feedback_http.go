package driftlockprocessor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/driftlock/driftlock/internal/triage"
)

// feedback.endpoint: false positives read through the anomaly API of
// `driftlock serve` (docs/api.md), for collectors that hold an API key but
// no database credentials.
//
// Each pull lists the signal's false positives changed since the previous
// pull (updated_since: the newest updated_at the previous pull saw, less
// feedbackOverlap, on the API's own clock) and detected within
// feedback.lookback (all of them when 0), skips the ids already learned and
// the streams this collector does not hold without fetching them, and
// fetches the full stored record (GET /v1/anomalies/{id}) of the rest. The
// first pull after start lists them all.

const (
	// feedbackRequestTimeout bounds one HTTP request (the pull as a whole is
	// bounded by the interval).
	feedbackRequestTimeout = 30 * time.Second
	// feedbackRetries is how many times one request is retried after a 429
	// whose Retry-After fits in the pull's time.
	feedbackRetries = 3
	// Response size limits: a full page of summaries, and one stored
	// record with its attributes, resource and audit history.
	maxListBody   = 64 << 20
	maxRecordBody = 16 << 20
	maxErrorBody  = 4 << 10
)

var (
	errFeedbackUnauthorized = errors.New("the API refused feedback.api_key")
	errFeedbackRateLimited  = errors.New("rate limited by the API")
	errFeedbackNotFound     = errors.New("not found")
)

type httpFeedback struct {
	cfg      FeedbackConfig
	base     *url.URL
	client   *http.Client
	pageSize int
	cursor   time.Time // newest updated_at listed by the last complete pull
}

func newHTTPFeedback(cfg FeedbackConfig) *httpFeedback {
	return &httpFeedback{cfg: cfg, pageSize: cfg.MaxRecords}
}

// parseFeedbackEndpoint checks a base URL: http or https, a host, and no
// credentials, query or fragment (the key goes in feedback.api_key so it
// is never logged as part of a URL).
func parseFeedbackEndpoint(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme must be http or https, got %q", u.Scheme)
	case u.Host == "":
		return nil, errors.New("no host")
	case u.User != nil:
		return nil, errors.New("credentials in the URL: put the key in feedback.api_key")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("a base URL takes no query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

// start builds the client; no request is made, so the pipeline starts
// while the API is down.
func (h *httpFeedback) start(ctx context.Context, _ component.Host) error {
	u, err := parseFeedbackEndpoint(h.cfg.Endpoint)
	if err != nil {
		return fmt.Errorf("driftlock: feedback.endpoint: %w", err)
	}
	h.base = u
	tlsCfg, err := h.cfg.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return fmt.Errorf("driftlock: feedback.tls: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	tr.MaxIdleConnsPerHost = 2
	h.client = &http.Client{
		Transport: tr,
		Timeout:   min(feedbackRequestTimeout, h.cfg.Interval),
		// A redirect is a misconfigured endpoint; never follow it with the key.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return nil
}

func (h *httpFeedback) close() {
	if h.client != nil {
		h.client.CloseIdleConnections()
	}
}

// apiAnomaly is the part of an API anomaly the feedback uses; list items
// carry no record or attributes.
type apiAnomaly struct {
	ID         int64           `json:"id"`
	Stream     string          `json:"stream"`
	Status     string          `json:"status"`
	Record     json.RawMessage `json:"record"`
	Attributes json.RawMessage `json:"attributes"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

type apiPage struct {
	Items      []apiAnomaly `json:"items"`
	NextCursor *string      `json:"next_cursor"`
}

func (h *httpFeedback) pull(ctx context.Context, f *feedback) (int, error) {
	q := url.Values{}
	q.Set("status", triage.StatusFalsePositive)
	q.Set("signal", f.e.signal)
	q.Set("limit", strconv.Itoa(h.pageSize))
	if h.cfg.Lookback > 0 {
		// Fixed for the whole pull: a cursor is only valid with the same filters.
		q.Set("since", time.Now().Add(-h.cfg.Lookback).UTC().Format(time.RFC3339))
	}
	if !h.cursor.IsZero() {
		q.Set("updated_since", h.cursor.Add(-feedbackOverlap).UTC().Format(time.RFC3339Nano))
	}
	newest := h.cursor
	s := getScratch()
	defer putScratch(s)
	learned := 0
	for {
		var page apiPage
		if err := h.getJSON(ctx, f, "/v1/anomalies?"+q.Encode(), maxListBody, &page); err != nil {
			return learned, fmt.Errorf("list false positives: %w", err)
		}
		for _, it := range page.Items {
			if it.UpdatedAt.After(newest) {
				newest = it.UpdatedAt
			}
			if it.Status != triage.StatusFalsePositive || !f.wanted(it.ID, it.Stream) {
				continue
			}
			var full apiAnomaly
			err := h.getJSON(ctx, f, "/v1/anomalies/"+strconv.FormatInt(it.ID, 10), maxRecordBody, &full)
			if errors.Is(err, errFeedbackNotFound) {
				f.remember(it.ID) // deleted (retention) since the list
				continue
			}
			if err != nil {
				return learned, fmt.Errorf("get false positive %d: %w", it.ID, err)
			}
			if full.Status != triage.StatusFalsePositive {
				continue // reopened since the list; may be marked again later
			}
			if f.learn(s, it.ID, it.Stream, full.Record, full.Attributes) {
				learned++
			}
		}
		if page.NextCursor == nil || *page.NextCursor == "" {
			// Only a complete pull moves the cursor: after an error the
			// next pull lists the same changes again.
			h.cursor = newest
			return learned, nil
		}
		q.Set("cursor", *page.NextCursor)
	}
}

// getJSON GETs base+path and decodes a 200 answer into out. A 429 is
// retried after its Retry-After when that fits in ctx's deadline;
// otherwise the wait is recorded with f.deferUntil so the next pulls are
// skipped until then.
func (h *httpFeedback) getJSON(ctx context.Context, f *feedback, path string, limit int64, out any) error {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base.String()+path, http.NoBody)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+string(h.cfg.APIKey))
		req.Header.Set("Accept", "application/json")
		resp, err := h.client.Do(req)
		if err != nil {
			// *url.Error names the URL, which holds no credentials.
			return err
		}
		if resp.StatusCode == http.StatusOK {
			err := decodeLimited(resp.Body, limit, out)
			resp.Body.Close()
			return err
		}
		detail := problemDetail(resp.Body)
		resp.Body.Close()
		wait, hasWait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		switch resp.StatusCode {
		case http.StatusNotFound:
			return errFeedbackNotFound
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %s%s", errFeedbackUnauthorized, resp.Status, detail)
		case http.StatusTooManyRequests:
			if attempt < feedbackRetries && fits(ctx, wait) {
				if err := sleepCtx(ctx, wait); err != nil {
					return err
				}
				continue
			}
			f.deferUntil(time.Now().Add(wait))
			return fmt.Errorf("%w: %s, Retry-After %v", errFeedbackRateLimited, resp.Status, wait)
		}
		if hasWait {
			f.deferUntil(time.Now().Add(wait)) // 503 with Retry-After
		}
		return fmt.Errorf("unexpected answer %s%s", resp.Status, detail)
	}
}

func decodeLimited(r io.Reader, limit int64, out any) error {
	lr := &io.LimitedReader{R: r, N: limit + 1}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		if lr.N <= 0 {
			return fmt.Errorf("answer larger than %d bytes", limit)
		}
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}

// problemDetail returns ": <detail>" from an RFC 9457 problem body, or "".
func problemDetail(r io.Reader) string {
	var p struct {
		Detail string `json:"detail"`
	}
	b, _ := io.ReadAll(io.LimitReader(r, maxErrorBody))
	if json.Unmarshal(b, &p) != nil || p.Detail == "" {
		return ""
	}
	return ": " + p.Detail
}

// retryAfter parses Retry-After (delay seconds or an HTTP date); without
// a usable value it returns one second and false.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return time.Second, false
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return time.Second, false
}

// fits reports whether waiting d still leaves time before ctx's deadline.
func fits(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d+time.Second
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
