-- +goose Up
-- The service call graph learned from spans by the driftlock exporter
-- (internal/servicegraph): one row per caller -> callee, with the observed
-- (span) times of its first and last call and the calls counted. Every
-- collector upserts what it saw in its last period; updated_at (database
-- time) lets `driftlock serve`'s correlator read only what changed.
CREATE TABLE service_edges (
    caller     text        NOT NULL,
    callee     text        NOT NULL,
    first_seen timestamptz NOT NULL,
    last_seen  timestamptz NOT NULL,
    calls      bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (caller, callee),
    CHECK (caller <> callee),
    CHECK (first_seen <= last_seen)
);
CREATE INDEX service_edges_updated_idx ON service_edges (updated_at);

-- +goose Down
DROP TABLE service_edges;
