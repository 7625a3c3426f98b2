package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/driftlock/driftlock/internal/store"
	"github.com/driftlock/driftlock/internal/store/storetest"
)

// TestSecretsNeverReachStorage: secrets in bodies, attribute values and
// secret-named fields are redacted before the row is written, wherever they
// sit in the record.
func TestSecretsNeverReachStorage(t *testing.T) {
	s, _ := storetest.Open(t)
	ctx := context.Background()
	body := "login failed for bob password=hunter2 Authorization: Bearer eyJtoken.abc card 4111 1111 1111 1111"
	obs := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	row := store.Anomaly{
		Fingerprint: store.Fingerprint(store.SignalLogs, "logs/auth", obs, "", "", []byte(body)),
		Signal:      store.SignalLogs,
		Stream:      "logs/auth",
		Service:     "auth",
		ObservedAt:  obs,
		Score:       9,
		PValue:      0.001,
		Summary:     body,
		Explanation: "record costs 9 bits/token",
		Attributes: map[string]any{
			"http.request.header.authorization": "Basic dXNlcjpwYXNz",
			"db.password":                       "s3cr3t-pw",
			"nested":                            map[string]any{"api_key": "AKIAXXXXXXXX", "note": "token=abc123"},
			"user":                              "bob",
		},
		Resource: map[string]any{"service.name": "auth"},
		Record:   map[string]any{"body": body},
	}
	if _, err := s.InsertAnomalies(ctx, []store.Anomaly{row}); err != nil {
		t.Fatal(err)
	}
	var summary, attrs, record string
	if err := storetest.Pool(s).QueryRow(ctx, "SELECT summary, attributes::text, record::text FROM anomalies").Scan(&summary, &attrs, &record); err != nil {
		t.Fatal(err)
	}
	stored := summary + attrs + record
	for _, secret := range []string{"hunter2", "eyJtoken", "4111 1111", "dXNlcjpwYXNz", "s3cr3t-pw", "AKIAXXXXXXXX", "abc123"} {
		if strings.Contains(stored, secret) {
			t.Errorf("secret %q reached storage: %s", secret, stored)
		}
	}
	// What is not secret is kept as it was.
	for _, kept := range []string{"login failed for bob", `"user": "bob"`, "<redacted>"} {
		if !strings.Contains(stored, kept) {
			t.Errorf("stored row lacks %q: %s", kept, stored)
		}
	}
}
