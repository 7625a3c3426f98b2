package store

import (
	"strings"
	"testing"
)

// malformedDSNs are connection strings that do not parse, each with the
// password "s3cret" somewhere pgconn's own masking may miss it, and a word
// of the reason the error must still give.
var malformedDSNs = []struct{ dsn, reason string }{
	{"postgres://u:s3cret@host:notaport/db", "port"},
	{"postgres://u:s3cret@host:5432/db?sslmode=bogus", "sslmode"},
	{"postgres://u:s3cret@[::1/db", "URL"},
	{"postgres://u:s3cret@host/db?connect_timeout=abc", "connect_timeout"},
	{"postgres://u:s3%cret@host/db", "password"},
	{"postgres://u@host/db?password=s3cret&port=x", "port"},
	{"postgres://u:s3cret@host/db?pool_max_conns=x", "pool_max_conns"},
	{"host=h password=s3cret port=notaport", "port"},
	{"host=h password='s3cret port=5432", "quoted"},
	{"host=h  password = s3cret port=x", "port"}, // pgconn echoes this one unmasked
	{"host=h password = 's3cret' sslmode=bogus", "sslmode"},
	{"password=s3cret =x", "keyword/value"},
	{"mysql://u:s3cret@h/db", "keyword/value"},
}

// TestDSNErrorsNeverEchoThePassword: every path that parses a DSN (ParseDSN,
// New, Open) reports a malformed one by its problem, without the password.
func TestDSNErrorsNeverEchoThePassword(t *testing.T) {
	for _, tc := range malformedDSNs {
		errs := map[string]error{"ParseDSN": ParseDSN(tc.dsn)}
		_, errs["New"] = New(tc.dsn)
		_, errs["Open"] = Open(t.Context(), tc.dsn)
		for path, err := range errs {
			if err == nil {
				t.Errorf("%s(%q) accepted a malformed DSN", path, tc.dsn)
				continue
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("%s(%q) echoes the password: %v", path, tc.dsn, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("%s(%q) = %v, want the reason (%q)", path, tc.dsn, err, tc.reason)
			}
		}
	}
}
