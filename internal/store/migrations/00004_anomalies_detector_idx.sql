-- +goose NO TRANSACTION
-- +goose Up
-- GET /v1/detectors counts the anomalies each detector configuration
-- produced; without this index every count reads the whole table.
-- CONCURRENTLY: the exporters keep writing while a large table is indexed.
CREATE INDEX CONCURRENTLY IF NOT EXISTS anomalies_detector_idx ON anomalies (detector_config_hash);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS anomalies_detector_idx;
