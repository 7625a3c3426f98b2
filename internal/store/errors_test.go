package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/driftlock/driftlock/internal/store"
)

func TestErrorClasses(t *testing.T) {
	for _, c := range []struct {
		code                 string
		permanent, transient bool
	}{
		{"23505", true, false},  // unique violation
		{"23503", true, false},  // foreign key
		{"23514", true, false},  // check
		{"22P02", true, false},  // invalid text representation (bad JSON)
		{"22021", true, false},  // invalid byte sequence for encoding
		{"54000", true, false},  // index row too big
		{"40001", false, true},  // serialization failure
		{"40P01", false, true},  // deadlock
		{"08006", false, true},  // connection failure
		{"57P01", false, true},  // admin shutdown
		{"57P03", false, true},  // cannot connect now (starting up)
		{"53300", false, true},  // too many connections
		{"42P01", false, false}, // undefined table: not data, retried, not "known transient"
	} {
		err := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: c.code})
		if store.IsPermanent(err) != c.permanent || store.IsTransient(err) != c.transient {
			t.Errorf("%s: permanent=%v transient=%v, want %v %v", c.code,
				store.IsPermanent(err), store.IsTransient(err), c.permanent, c.transient)
		}
	}
	if store.IsPermanent(nil) || store.IsTransient(nil) {
		t.Error("nil classified")
	}
	if !store.IsTransient(context.DeadlineExceeded) || store.IsPermanent(context.DeadlineExceeded) {
		t.Error("deadline exceeded must be transient")
	}
	if !store.IsPermanent(fmt.Errorf("x: %w", store.ErrBadSignal)) {
		t.Error("ErrBadSignal must be permanent")
	}
	if store.IsPermanent(errors.New("something new")) {
		t.Error("unknown errors must not be permanent (dropping data on an unknown error is worse)")
	}
}

// A real refused connection (nothing listens on port 1) is transient.
func TestConnectionRefusedIsTransient(t *testing.T) {
	s, err := store.New("postgres://postgres@127.0.0.1:1/x?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = s.InsertAnomalies(ctx, sampleRows(1, "x"))
	if err == nil || !store.IsTransient(err) || store.IsPermanent(err) {
		t.Fatalf("err = %v: transient=%v permanent=%v", err, store.IsTransient(err), store.IsPermanent(err))
	}
}
