package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/driftlock/driftlock/internal/store/internal/poolaccess"
)

func init() {
	poolaccess.Of = func(st any) *pgxpool.Pool { return st.(*Store).pool }
}

// Ping checks that the database answers (readiness probes).
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// PoolStats is a snapshot of the connection pool, for self-metrics.
type PoolStats struct {
	AcquiredConns     int32 // in use
	IdleConns         int32
	TotalConns        int32 // open
	MaxConns          int32 // the pool's size limit
	AcquireCount      int64 // successful acquisitions so far
	AcquireWait       time.Duration
	EmptyAcquireCount int64 // acquisitions that had to wait for a connection
}

// PoolStats reads the connection pool's counters.
func (s *Store) PoolStats() PoolStats {
	st := s.pool.Stat()
	return PoolStats{
		AcquiredConns: st.AcquiredConns(), IdleConns: st.IdleConns(), TotalConns: st.TotalConns(),
		MaxConns: st.MaxConns(), AcquireCount: st.AcquireCount(), AcquireWait: st.AcquireDuration(),
		EmptyAcquireCount: st.EmptyAcquireCount(),
	}
}

// ListenAnomalies holds a dedicated connection (outside the pool) in LISTEN
// on NotifyChannel and calls notified once when listening has begun, then
// after every notification. It returns when ctx ends or the connection
// fails; the caller reconnects, and since notifications sent while it was
// away are lost, the first call after LISTEN is its cue to re-read the
// table (see NotifyChannel).
func (s *Store) ListenAnomalies(ctx context.Context, notified func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{NotifyChannel}.Sanitize()); err != nil {
		return err
	}
	notified()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		notified()
	}
}
