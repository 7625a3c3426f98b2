package store

import (
	"context"
	"encoding/json"
	"fmt"
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
