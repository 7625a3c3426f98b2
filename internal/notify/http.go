package notify

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

const userAgent = "driftlock-notify/1"

// deliveryError is a failed attempt: Permanent ones (the receiver refused
// the request itself, a 4xx other than 408, 425 and 429) are not retried;
// RetryAfter is the receiver's own hint, when it gave one.
type deliveryError struct {
	err        error
	Permanent  bool
	RetryAfter time.Duration
}

func (e *deliveryError) Error() string { return e.err.Error() }
func (e *deliveryError) Unwrap() error { return e.err }

func permanent(err error) error { return &deliveryError{err: err, Permanent: true} }

// IsPermanent reports whether retrying err cannot succeed.
func IsPermanent(err error) bool {
	var d *deliveryError
	return errors.As(err, &d) && d.Permanent
}

func retryAfter(err error) time.Duration {
	var d *deliveryError
	if errors.As(err, &d) {
		return d.RetryAfter
	}
	return 0
}

// do sends req and classifies the outcome. Errors name the host and the
// status, never the URL's credentials, headers or the request body.
func do(client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST to %s: %v", req.URL.Host, redactURLError(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &deliveryError{err: fmt.Errorf("POST to %s: HTTP %d: %s", req.URL.Host, resp.StatusCode, printable(snippet, 200))}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode == http.StatusTooEarly, resp.StatusCode >= 500:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
	default:
		e.Permanent = true
	}
	return e
}

// redactURLError keeps the failure (refused, timeout, TLS) and drops the
// URL, which may hold credentials.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// printable trims a response snippet to one readable line.
func printable(b []byte, limit int) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(b))
	s = strings.TrimSpace(s)
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
