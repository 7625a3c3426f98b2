-- +goose Up
-- Lists, filters, timelines and summaries work in observed time (the
-- record's own time), not detected_at (when the row was written): a replayed
-- day or a backlog drained after an outage keeps its own times instead of
-- collapsing into one spike. These indexes serve the keyset order
-- (observed_at DESC, id DESC) alone and behind each equality filter, as the
-- detected_at ones did; anomalies_detected_idx stays for retention, which
-- deletes by write time.
CREATE INDEX anomalies_observed_id_idx ON anomalies (observed_at DESC, id DESC);
CREATE INDEX anomalies_stream_observed_idx ON anomalies (stream, observed_at DESC, id DESC);
CREATE INDEX anomalies_service_observed_idx ON anomalies (service, observed_at DESC, id DESC);
CREATE INDEX anomalies_status_observed_idx ON anomalies (status, observed_at DESC, id DESC);
DROP INDEX anomalies_observed_idx;
DROP INDEX anomalies_stream_idx;
DROP INDEX anomalies_service_idx;
DROP INDEX anomalies_status_idx;

-- +goose Down
CREATE INDEX anomalies_observed_idx ON anomalies (observed_at DESC);
CREATE INDEX anomalies_stream_idx ON anomalies (stream, detected_at DESC, id DESC);
CREATE INDEX anomalies_service_idx ON anomalies (service, detected_at DESC, id DESC);
CREATE INDEX anomalies_status_idx ON anomalies (status, detected_at DESC, id DESC);
DROP INDEX anomalies_status_observed_idx;
DROP INDEX anomalies_service_observed_idx;
DROP INDEX anomalies_stream_observed_idx;
DROP INDEX anomalies_observed_id_idx;
