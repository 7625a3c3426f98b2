package store

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// IsPermanent reports whether err means "this data can never be stored",
// so retrying is pointless: the row is dropped and counted. Everything
// else (lost connections, a restarting server, serialization failures,
// deadlocks, timeouts, and errors we do not recognize) is transient and
// worth retrying, because dropping data on an unknown error is the worse
// mistake.
//
// Permanent: SQLSTATE class 22 (data exception: bad encoding, out-of-range
// values, invalid JSON), class 23 (integrity constraint: a CHECK or a
// foreign key), 54000 (program limit exceeded, e.g. an index row too big),
// and a *RejectedRowsError or ErrBadSignal from this package.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	var rej *RejectedRowsError
	if errors.As(err, &rej) || errors.Is(err, ErrBadSignal) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "22"), strings.HasPrefix(pgErr.Code, "23"),
			pgErr.Code == "54000":
			return true
		}
	}
	return false
}

// IsTransient reports whether err is one of the failures known to pass
// (connection refused or reset, server shutting down or starting, a
// serialization failure or deadlock, too many connections, a timeout).
// IsPermanent(err) == false already means "retry"; IsTransient is the
// narrower list used in logs and tests.
func IsTransient(err error) bool {
	if err == nil || IsPermanent(err) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		c := pgErr.Code
		return strings.HasPrefix(c, "08") || // connection exception
			c == "40001" || c == "40P01" || // serialization failure, deadlock
			strings.HasPrefix(c, "53") || // insufficient resources (too many connections)
			c == "57P01" || c == "57P02" || c == "57P03" || // admin/crash shutdown, cannot connect now
			c == "57014" // query canceled (statement timeout)
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || pgconn.SafeToRetry(err)
}
