-- The audit trail of people's actions outside the hazard loop (which keeps its own in
-- hazard_events): who did what to which row, when, and from where. Written by registry/ in the
-- transaction of the action itself, so an action is never without its line.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    subject     text NOT NULL,
    subject_id  bigint,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    client_addr text
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, subject_id, at);
