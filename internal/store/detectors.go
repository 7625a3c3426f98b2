package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// UpsertDetector records that the detector configuration with this hash
// produced anomalies: it inserts the row on first sight and moves
// last_seen forward afterwards. configJSON may be empty when only the hash
// is known (stored as {}); a later call that knows the configuration fills
// it in. It must run before anomalies that reference the hash are inserted.
func (s *Store) UpsertDetector(ctx context.Context, hash string, configJSON []byte) error {
	if hash == "" {
		return fmt.Errorf("store: upsert detector: empty config hash")
	}
	hash = SanitizeString(hash, MaxIndexedBytes)
	doc := "{}"
	if len(configJSON) > 0 {
		if !json.Valid(configJSON) {
			return fmt.Errorf("store: upsert detector %s: config is not valid JSON", hash)
		}
		var v any
		if err := json.Unmarshal(configJSON, &v); err != nil {
			return fmt.Errorf("store: upsert detector %s: %w", hash, err)
		}
		doc = string(EncodeJSON(v))
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO detectors (config_hash, config) VALUES ($1, $2::jsonb)
ON CONFLICT (config_hash) DO UPDATE SET last_seen = now(),
  config = CASE WHEN detectors.config = '{}'::jsonb THEN EXCLUDED.config ELSE detectors.config END`,
		hash, doc)
	if err != nil {
		return fmt.Errorf("store: upsert detector %s: %w", hash, err)
	}
	return nil
}

// Detector is one detectors row with the number of stored anomalies it
// produced (anomalies deleted by retention no longer count).
type Detector struct {
	DetectorInfo
	Anomalies int64 `json:"anomalies"`
}

// ErrDetectorNotFound is returned by GetDetector for an unknown hash.
var ErrDetectorNotFound = errors.New("store: detector not found")

const detectorSelect = `SELECT d.config_hash, d.config, d.first_seen, d.last_seen,
  (SELECT count(*) FROM anomalies a WHERE a.detector_config_hash = d.config_hash)
 FROM detectors d`

func scanDetector(row pgx.Row) (Detector, error) {
	var d Detector
	err := row.Scan(&d.ConfigHash, &d.Config, &d.FirstSeen, &d.LastSeen, &d.Anomalies)
	return d, err
}

// ListDetectors returns the detector configurations seen, most recently
// seen first, at most limit of them.
func (s *Store) ListDetectors(ctx context.Context, limit int) ([]Detector, error) {
	rows, err := s.pool.Query(ctx, detectorSelect+" ORDER BY d.last_seen DESC, d.config_hash LIMIT $1", limit)
	if err != nil {
		return nil, fmt.Errorf("store: list detectors: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Detector, error) { return scanDetector(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list detectors: %w", err)
	}
	return out, nil
}

// GetDetector returns one detector configuration by its hash, or
// ErrDetectorNotFound.
func (s *Store) GetDetector(ctx context.Context, hash string) (*Detector, error) {
	d, err := scanDetector(s.pool.QueryRow(ctx, detectorSelect+" WHERE d.config_hash = $1", hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrDetectorNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get detector: %w", err)
	}
	return &d, nil
}
