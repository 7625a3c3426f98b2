-- +goose Up
-- Incidents: groups of anomalies the correlator (internal/incident, driven
-- by internal/correlator inside `driftlock serve`) judged to be one
-- condition, with a ranked list of probable root-cause services. Every time
-- here is OBSERVED time (the records' own clocks), not ingestion time.
CREATE TABLE incidents (
    id               bigserial PRIMARY KEY,
    -- key is the correlator's deterministic id of the incident (opening
    -- time and opening service): recomputing the same anomalies finds the
    -- same row again instead of creating a second one.
    key              text NOT NULL UNIQUE,
    -- state is the correlator's view: open while evidence continues,
    -- closed after a quiet period. triage is people's view (API).
    state            text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    triage           text NOT NULL DEFAULT 'open'
                     CHECK (triage IN ('open', 'acknowledged', 'resolved', 'false_positive')),
    note             text NOT NULL DEFAULT '',
    title            text NOT NULL DEFAULT '',
    -- leader is the first-ranked probable root-cause service; services is
    -- the whole ranked list with the evidence behind each rank (JSON array
    -- of objects, written by the correlator, read by the API as is).
    leader           text NOT NULL DEFAULT '',
    services         jsonb NOT NULL DEFAULT '[]'::jsonb,
    signals          text[] NOT NULL DEFAULT '{}',
    severity         text NOT NULL DEFAULT '',
    score            double precision NOT NULL DEFAULT 0,
    size             integer NOT NULL DEFAULT 0,
    opened_at        timestamptz NOT NULL,
    last_evidence_at timestamptz NOT NULL,
    closed_at        timestamptz,
    -- detail holds whatever else the correlator reports (evidence per
    -- signal, kinds); the API passes it through.
    detail           jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- revision counts material changes (open, new leader, escalation,
    -- close): the idempotency keys of notifications derive from it.
    revision         integer NOT NULL DEFAULT 1,
    version          integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incidents_opened_idx ON incidents (opened_at DESC, id DESC);
CREATE INDEX incidents_state_idx ON incidents (state, opened_at DESC, id DESC);
CREATE INDEX incidents_leader_idx ON incidents (leader, opened_at DESC, id DESC);

-- Membership: an anomaly belongs to at most one incident. Adding a
-- nullable column without a default does not rewrite the table.
ALTER TABLE anomalies ADD COLUMN incident_id bigint REFERENCES incidents(id) ON DELETE SET NULL;
CREATE INDEX anomalies_incident_idx ON anomalies (incident_id, observed_at, id) WHERE incident_id IS NOT NULL;

-- The active correlator's position, so that a restart (or another replica
-- taking over) resumes where it stopped: every anomaly with id <= last_id
-- has been read, and the correlator's clock (observed time) had reached
-- watermark.
-- snapshot is the correlator's whole state (internal/incident Snapshot,
-- JSON, kept as bytes: its keys may hold characters jsonb refuses), saved
-- with last_id in the same transaction.
-- rebuild_from is a request (from `driftlock incidents rebuild`) to
-- recompute the incidents from that observed time on; the active
-- correlator clears it when done.
CREATE TABLE correlator_state (
    name          text PRIMARY KEY,
    last_id       bigint NOT NULL DEFAULT 0,
    watermark     timestamptz,
    rebuild_from  timestamptz,
    snapshot      bytea,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Outgoing notifications, written in the transaction that changes the
-- incident, delivered by whoever claims them (FOR UPDATE SKIP LOCKED plus a
-- lease), so each is sent at least once and, across replicas, by one
-- sender at a time. idempotency_key goes out with every attempt.
CREATE TABLE notification_outbox (
    id               bigserial PRIMARY KEY,
    receiver         text NOT NULL,
    incident_id      bigint REFERENCES incidents(id) ON DELETE SET NULL,
    event            text NOT NULL CHECK (event IN ('opened', 'changed', 'closed')),
    idempotency_key  text NOT NULL,
    payload          jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    delivered_at     timestamptz,
    abandoned_at     timestamptz,
    UNIQUE (receiver, idempotency_key)
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (next_attempt_at, id)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;
CREATE INDEX notification_outbox_incident_idx ON notification_outbox (receiver, incident_id, id)
    WHERE delivered_at IS NULL AND abandoned_at IS NULL;

-- +goose Down
DROP TABLE notification_outbox;
DROP TABLE correlator_state;
DROP INDEX anomalies_incident_idx;
ALTER TABLE anomalies DROP COLUMN incident_id;
DROP TABLE incidents;
