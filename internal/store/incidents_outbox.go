package store

import (
	"context"
	"fmt"
	"time"
)

// The notification outbox: rows written by the correlator's transaction
// (IncidentTx.Enqueue) and delivered by internal/notify. A sender claims due
// rows with FOR UPDATE SKIP LOCKED and a lease, so several senders (serve
// replicas) never hold the same row at once, and a sender that dies
// mid-delivery only delays the row until its lease ends (at-least-once).
// Rows of one receiver and incident go out in id order: a row waits while
// an older one of the same pair is undelivered, so a "closed" can never
// overtake its "opened".

// ClaimNotifications leases up to limit due notifications for lease.
func (s *Store) ClaimNotifications(ctx context.Context, limit int, lease time.Duration) ([]OutboxItem, error) {
	rows, err := s.pool.Query(ctx, `WITH due AS (
  SELECT o.id FROM notification_outbox o
  WHERE o.delivered_at IS NULL AND o.abandoned_at IS NULL AND o.next_attempt_at <= now()
    AND (o.lease_until IS NULL OR o.lease_until < now())
    AND NOT EXISTS (SELECT 1 FROM notification_outbox p
      WHERE p.receiver = o.receiver AND p.incident_id = o.incident_id AND p.id < o.id
        AND p.delivered_at IS NULL AND p.abandoned_at IS NULL)
  ORDER BY o.id LIMIT $1 FOR UPDATE SKIP LOCKED)
UPDATE notification_outbox o SET lease_until = now() + make_interval(secs => $2), attempts = o.attempts + 1
FROM due WHERE o.id = due.id
RETURNING o.id, o.receiver, coalesce(o.incident_id, 0), o.event, o.idempotency_key, o.payload, o.created_at, o.attempts`,
		limit, lease.Seconds())
	if err != nil {
		return nil, fmt.Errorf("store: claim notifications: %w", err)
	}
	defer rows.Close()
	var out []OutboxItem
	for rows.Next() {
		var it OutboxItem
		var payload []byte
		if err := rows.Scan(&it.ID, &it.Receiver, &it.IncidentID, &it.Event, &it.IdempotencyKey, &payload, &it.CreatedAt, &it.Attempts); err != nil {
			return nil, fmt.Errorf("store: claim notifications: %w", err)
		}
		it.Payload = payload
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claim notifications: %w", err)
	}
	return out, nil
}

// NotificationDelivered marks a claimed notification sent.
func (s *Store) NotificationDelivered(ctx context.Context, id int64) error {
	if _, err := s.pool.Exec(ctx, "UPDATE notification_outbox SET delivered_at = now(), lease_until = NULL, last_error = '' WHERE id = $1", id); err != nil {
		return fmt.Errorf("store: notification %d delivered: %w", id, err)
	}
	return nil
}

// NotificationFailed records a failed attempt: the row is due again at
// next, or abandoned (given up, kept for inspection) when abandon is set.
// reason must not contain secrets; it is stored as the row's last_error.
func (s *Store) NotificationFailed(ctx context.Context, id int64, reason string, next time.Time, abandon bool) error {
	_, err := s.pool.Exec(ctx, `UPDATE notification_outbox SET lease_until = NULL, last_error = $2, next_attempt_at = $3,
 abandoned_at = CASE WHEN $4 THEN now() END WHERE id = $1`, id, SanitizeString(reason, MaxIndexedBytes), next.UTC(), abandon)
	if err != nil {
		return fmt.Errorf("store: notification %d failed: %w", id, err)
	}
	return nil
}

// OutboxCounts reports undelivered (pending) and abandoned notifications.
func (s *Store) OutboxCounts(ctx context.Context) (pending, abandoned int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE delivered_at IS NULL AND abandoned_at IS NULL),
 count(*) FILTER (WHERE abandoned_at IS NOT NULL) FROM notification_outbox`).Scan(&pending, &abandoned)
	if err != nil {
		return 0, 0, fmt.Errorf("store: outbox counts: %w", err)
	}
	return pending, abandoned, nil
}

// ReleaseNotifications gives claimed notifications back unsent (the sender
// is stopping): they are due again at once for whoever claims next, and
// the attempt is not counted.
func (s *Store) ReleaseNotifications(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, "UPDATE notification_outbox SET lease_until = NULL, attempts = greatest(attempts - 1, 0) WHERE id = ANY($1) AND delivered_at IS NULL", ids); err != nil {
		return fmt.Errorf("store: release notifications: %w", err)
	}
	return nil
}
