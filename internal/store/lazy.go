package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// New is Open without the initial ping: the pool connects on first use.
// The exporter uses it so that a collector starts (and queues data) while
// PostgreSQL is still down; Open is for tools that want to fail fast.
func New(dsn string) (*Store, error) {
	if dsn == "" {
		return nil, ErrNoDSN
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, redactParseError(err)
	}
	return newFromConfig(cfg)
}

// ParseDSN checks a connection string without connecting. Its errors name
// the problem and never contain the string (see redactParseError).
func ParseDSN(dsn string) error {
	if dsn == "" {
		return ErrNoDSN
	}
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		return redactParseError(err)
	}
	return nil
}

func newFromConfig(cfg *pgxpool.Config) (*Store, error) {
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("store: pool: %w", err)
	}
	return &Store{pool: pool}, nil
}
