package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// API key roles, weakest first: viewers read, analysts also triage, admins
// also manage keys.
const (
	RoleViewer  = "viewer"
	RoleAnalyst = "analyst"
	RoleAdmin   = "admin"
)

// RoleRank orders roles; a role may do what any lower-ranked role may.
func RoleRank(role string) int {
	switch role {
	case RoleViewer:
		return 1
	case RoleAnalyst:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// KeyPrefix starts every API key, so leaked keys are easy to grep for.
const KeyPrefix = "dlk_"

// Key errors.
var (
	ErrKeyNotFound  = errors.New("store: API key not found")
	ErrKeyExists    = errors.New("store: an API key with this name already exists")
	ErrBadRole      = errors.New("store: role must be viewer, analyst or admin")
	ErrBadKeyName   = errors.New("store: key name must be 1-64 characters of letters, digits, '.', '_', '-' or '@'")
	ErrKeyRevoked   = errors.New("store: API key is revoked")
	ErrKeyMalformed = errors.New("store: not a Driftlock API key")
)

// APIKey is an api_keys row (never the key itself: only its hash is stored).
type APIKey struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	CreatedAt time.Time  `json:"created_at"`
	LastUsed  *time.Time `json:"last_used"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// HashKey is the stored form of a key: hex SHA-256. Keys carry 256 random
// bits, so a fast unsalted hash is enough (nothing to brute-force).
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func validKeyName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, r := range n {
		ok := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') ||
			r == '.' || r == '_' || r == '-' || r == '@'
		if !ok {
			return false
		}
	}
	return true
}

// CreateKey makes a new random key, stores its hash and returns the key in
// clear: the only time it exists outside the caller's hands.
func (s *Store) CreateKey(ctx context.Context, name, role string) (string, *APIKey, error) {
	if !validKeyName(name) {
		return "", nil, ErrBadKeyName
	}
	if RoleRank(role) == 0 {
		return "", nil, fmt.Errorf("%w (got %q)", ErrBadRole, role)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("store: create key: %w", err)
	}
	key := KeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	k := &APIKey{Name: name, Role: role}
	err := s.pool.QueryRow(ctx, `INSERT INTO api_keys (name, role, key_hash) VALUES ($1, $2, $3)
 RETURNING id, created_at`, name, role, HashKey(key)).Scan(&k.ID, &k.CreatedAt)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return "", nil, fmt.Errorf("%w: %s", ErrKeyExists, name)
	}
	if err != nil {
		return "", nil, fmt.Errorf("store: create key: %w", err)
	}
	return key, k, nil
}

// LookupKey finds the key whose hash matches. It returns ErrKeyNotFound for
// unknown keys and ErrKeyRevoked (with the row) for revoked ones.
func (s *Store) LookupKey(ctx context.Context, key string) (*APIKey, error) {
	if len(key) < len(KeyPrefix)+16 || len(key) > 256 || key[:len(KeyPrefix)] != KeyPrefix {
		return nil, ErrKeyMalformed
	}
	return s.keyWhere(ctx, "key_hash = $1", HashKey(key))
}

// KeyByID returns a key row by id with the same errors as LookupKey.
func (s *Store) KeyByID(ctx context.Context, id int64) (*APIKey, error) {
	return s.keyWhere(ctx, "id = $1", id)
}

func (s *Store) keyWhere(ctx context.Context, cond string, arg any) (*APIKey, error) {
	var k APIKey
	err := s.pool.QueryRow(ctx, "SELECT id, name, role, created_at, last_used, revoked_at FROM api_keys WHERE "+cond, arg).
		Scan(&k.ID, &k.Name, &k.Role, &k.CreatedAt, &k.LastUsed, &k.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: look up key: %w", err)
	}
	if k.RevokedAt != nil {
		return &k, ErrKeyRevoked
	}
	return &k, nil
}

// TouchKey records that the key was used now.
func (s *Store) TouchKey(ctx context.Context, id int64) error {
	_, err := s.pool.Exec(ctx, "UPDATE api_keys SET last_used = now() WHERE id = $1", id)
	return err
}

// ListKeys returns every key row, oldest first.
func (s *Store) ListKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.pool.Query(ctx, "SELECT id, name, role, created_at, last_used, revoked_at FROM api_keys ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	defer rows.Close()
	out := []APIKey{}
	for rows.Next() {
		var k APIKey
		if err := rows.Scan(&k.ID, &k.Name, &k.Role, &k.CreatedAt, &k.LastUsed, &k.RevokedAt); err != nil {
			return nil, fmt.Errorf("store: list keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeKey marks the named key revoked (idempotent) and writes an audit
// row naming actor. It returns the key row.
func (s *Store) RevokeKey(ctx context.Context, name, actor string) (*APIKey, error) {
	var k APIKey
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE name = $1
 RETURNING id, name, role, created_at, last_used, revoked_at`, name).
			Scan(&k.ID, &k.Name, &k.Role, &k.CreatedAt, &k.LastUsed, &k.RevokedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrKeyNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO audit_log (actor, action, details) VALUES ($1, 'key_revoke', jsonb_build_object('key', $2::text))`, actor, name)
		return err
	})
	if errors.Is(err, ErrKeyNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("store: revoke key %s: %w", name, err)
	}
	return &k, nil
}

// AuditKeyCreate records a key creation in audit_log.
func (s *Store) AuditKeyCreate(ctx context.Context, actor string, k *APIKey) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_log (actor, action, details)
 VALUES ($1, 'key_create', jsonb_build_object('key', $2::text, 'role', $3::text))`, actor, k.Name, k.Role)
	return err
}
