-- +goose Up
-- The anomaly store: one row per flagged record. The fingerprint is derived
-- from the record itself (signal, stream, time, ids, body hash), so a batch
-- that is retried after a partial failure never creates a second row.
CREATE TABLE detectors (
    config_hash  text PRIMARY KEY,
    config       jsonb NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE anomalies (
    id                bigserial PRIMARY KEY,
    fingerprint       text NOT NULL UNIQUE,
    signal            text NOT NULL CHECK (signal IN ('logs', 'traces', 'metrics')),
    stream            text NOT NULL,
    service           text NOT NULL DEFAULT '',
    observed_at       timestamptz NOT NULL,
    detected_at       timestamptz NOT NULL DEFAULT now(),
    score             double precision NOT NULL,
    p_value           double precision NOT NULL,
    ncd               double precision,
    compression_ratio double precision,
    entropy           double precision,
    severity          text NOT NULL DEFAULT '',
    status            text NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'acknowledged', 'resolved', 'false_positive')),
    note              text NOT NULL DEFAULT '',
    summary           text NOT NULL DEFAULT '',
    explanation       text NOT NULL DEFAULT '',
    trace_id          text NOT NULL DEFAULT '',
    span_id           text NOT NULL DEFAULT '',
    attributes        jsonb NOT NULL DEFAULT '{}'::jsonb,
    resource          jsonb NOT NULL DEFAULT '{}'::jsonb,
    record            jsonb NOT NULL DEFAULT '{}'::jsonb,
    detector_config_hash text REFERENCES detectors(config_hash),
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- The API's list order is (detected_at DESC, id DESC); keyset pagination and
-- every filter below lead with that order or narrow it.
CREATE INDEX anomalies_detected_idx ON anomalies (detected_at DESC, id DESC);
CREATE INDEX anomalies_observed_idx ON anomalies (observed_at DESC);
CREATE INDEX anomalies_stream_idx ON anomalies (stream, detected_at DESC, id DESC);
CREATE INDEX anomalies_service_idx ON anomalies (service, detected_at DESC, id DESC);
CREATE INDEX anomalies_status_idx ON anomalies (status, detected_at DESC, id DESC);
CREATE INDEX anomalies_score_idx ON anomalies (score DESC);
CREATE INDEX anomalies_attributes_gin ON anomalies USING gin (attributes jsonb_path_ops);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    anomaly_id  bigint REFERENCES anomalies(id) ON DELETE SET NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_anomaly_idx ON audit_log (anomaly_id, at DESC);

CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    key_hash    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used   timestamptz,
    revoked_at  timestamptz
);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE audit_log;
DROP TABLE anomalies;
DROP TABLE detectors;
