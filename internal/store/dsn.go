package store

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// dsnError is a connection string's parse error that names the problem
// and never the connection string. pgconn echoes the string with the
// password masked on a best-effort basis only (`host=h  password = s3cret
// port=x` comes back whole), so the string is dropped, not masked.
type dsnError struct {
	reason string // e.g. "invalid port", "failed to configure TLS (sslmode is invalid)"
	err    error  // the underlying cause, if any (never the connection string)
}

func (e *dsnError) Error() string { return "store: DSN is not valid: " + e.reason }
func (e *dsnError) Unwrap() error { return e.err }

// redactParseError converts an error of pgconn.ParseConfig or
// pgxpool.ParseConfig into a dsnError.
func redactParseError(err error) error {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		// Not a parse error: its text is not built from the string.
		return &dsnError{reason: err.Error(), err: err}
	}
	// pe reads "cannot parse `<string>`: <reason>": the reasons pgconn
	// writes hold no backquote, so the last "`: " ends the string.
	msg := pe.Error()
	reason := "cannot be parsed"
	if i := strings.LastIndex(msg, "`: "); i >= 0 {
		reason = msg[i+len("`: "):]
	}
	return &dsnError{reason: reason, err: pe.Unwrap()}
}
