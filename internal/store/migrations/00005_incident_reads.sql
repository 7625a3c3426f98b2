-- +goose Up
-- The API's reads of incidents: the service filter of the incident list
-- (is there a member of this service?), the live stream of incident
-- changes ((updated_at, id) order) and an incident's triage history (audit
-- rows that name it in details).
CREATE INDEX anomalies_incident_service_idx ON anomalies (incident_id, service) WHERE incident_id IS NOT NULL;
CREATE INDEX incidents_updated_idx ON incidents (updated_at, id);
CREATE INDEX audit_log_incident_idx ON audit_log (((details->>'incident_id')), at DESC, id DESC)
    WHERE details ? 'incident_id';

-- +goose Down
DROP INDEX audit_log_incident_idx;
DROP INDEX incidents_updated_idx;
DROP INDEX anomalies_incident_service_idx;
