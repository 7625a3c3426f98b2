package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook headers. The body is the Notification as JSON.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of
	// "<t>.<body>" keyed with the shared secret>". Binding the time stops
	// an old delivery from being replayed later; the receiver checks that t
	// is recent (VerifySignature).
	SignatureHeader = "X-Driftlock-Signature"
	// IdempotencyHeader repeats the notification's idempotency key: the
	// same on every attempt, so a receiver drops repeats.
	IdempotencyHeader = "Idempotency-Key"
	// EventHeader is the event (opened, changed, closed).
	EventHeader = "X-Driftlock-Event"
)

// Webhook posts signed JSON documents to a URL.
type Webhook struct {
	name   string
	url    string
	secret []byte
	client *http.Client
}

func newWebhook(c WebhookConfig, client *http.Client) (*Webhook, error) {
	secret, err := c.Secret.Resolve()
	if err != nil {
		return nil, fmt.Errorf("webhook %s: secret: %w", c.Name, err)
	}
	return &Webhook{name: c.Name, url: c.URL, secret: secret, client: client}, nil
}

// Name is the receiver's configured name.
func (w *Webhook) Name() string { return w.name }

// Deliver posts one stored notification body as is.
func (w *Webhook) Deliver(ctx context.Context, key, event string, body []byte, now time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return permanent(fmt.Errorf("build request: %v", redactURLError(err)))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(IdempotencyHeader, key)
	req.Header.Set(EventHeader, event)
	req.Header.Set(SignatureHeader, Sign(w.secret, now, body))
	return do(w.client, req)
}

// Sign returns the SignatureHeader value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Signature verification errors.
var (
	ErrBadSignature   = errors.New("notify: signature does not match")
	ErrStaleSignature = errors.New("notify: signature time is outside the tolerance")
	ErrNoSignature    = errors.New("notify: malformed or missing signature header")
)

// VerifySignature checks a SignatureHeader value against body, as a
// receiver would: the MAC must match (constant-time) and t must be within
// tolerance of now.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStaleSignature
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}
