-- The closed hazard loop a supervision office runs its week on (issue 11; registry/lifecycle.py):
-- where a hazard came from and where it is, the rectification plan with the five items of a
-- major hazard (措施、责任、资金、时限、预案), the people (users) who rectified and verified, the
-- verification deadline, listed supervision by a province, city or county authority with a due
-- date, and one `rectifications` row per round of rectification (the 整改措施清单).

ALTER TABLE hazards
    ADD COLUMN source text NOT NULL DEFAULT 'report'
        CHECK (source IN ('sensor', 'inspection', 'report')),
    ADD COLUMN location text NOT NULL DEFAULT '',
    ADD COLUMN measures text NOT NULL DEFAULT '',
    ADD COLUMN funds_yuan numeric(14, 2) CHECK (funds_yuan >= 0),
    ADD COLUMN emergency_plan text NOT NULL DEFAULT '',
    ADD COLUMN rectified_at timestamptz,
    ADD COLUMN rectified_by_user int REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN verification_due timestamptz,
    ADD COLUMN verified_at timestamptz,
    ADD COLUMN verified_by_user int REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN supervision_level text CHECK (supervision_level IN ('province', 'city', 'county')),
    ADD COLUMN supervision_region text CHECK (supervision_region ~ '^([0-9]{2}){1,3}$'),
    ADD COLUMN supervision_due timestamptz,
    ADD COLUMN supervised_at timestamptz,
    -- the inspection record and checklist item a hazard was found by (FK in 0015)
    ADD COLUMN inspection_id bigint,
    ADD COLUMN inspection_item text;

-- Hazards of alerts were registered by the engine (0006, 0010); other sources are unknown: report.
UPDATE hazards SET source = 'sensor' WHERE alert_id IS NOT NULL;

-- The user behind each recorded actor `role:name#token_id` (tokens got their users in 0013).
ALTER TABLE hazard_events ADD COLUMN actor_user int REFERENCES users (id) ON DELETE SET NULL;
UPDATE hazard_events e SET actor_user = t.user_id
FROM api_tokens t
WHERE e.actor ~ '#[0-9]+$' AND t.id = substring(e.actor FROM '#([0-9]+)$')::int;
UPDATE hazards h SET rectified_by_user = t.user_id
FROM api_tokens t
WHERE h.rectified_by ~ '#[0-9]+$' AND t.id = substring(h.rectified_by FROM '#([0-9]+)$')::int;
UPDATE hazards h SET verified_by_user = t.user_id
FROM api_tokens t
WHERE h.verified_by ~ '#[0-9]+$' AND t.id = substring(h.verified_by FROM '#([0-9]+)$')::int;
UPDATE hazards h SET rectified_at = e.at
FROM (SELECT hazard_id, max(at) AS at FROM hazard_events WHERE action = 'rectify'
      GROUP BY hazard_id) e
WHERE e.hazard_id = h.id AND h.state IN ('rectified', 'verified', 'closed');
UPDATE hazards h SET verified_at = e.at
FROM (SELECT hazard_id, max(at) AS at FROM hazard_events WHERE action = 'verify'
      GROUP BY hazard_id) e
WHERE e.hazard_id = h.id AND h.state IN ('verified', 'closed');

-- One row per round of rectification: the plan it was assigned with, the report, the outcome.
CREATE TABLE rectifications (
    id                 bigserial PRIMARY KEY,
    hazard_id          bigint NOT NULL REFERENCES hazards (id) ON DELETE CASCADE,
    round              int NOT NULL CHECK (round >= 1),
    measures           text NOT NULL DEFAULT '',
    responsible_unit   text NOT NULL,
    responsible_person text NOT NULL,
    funds_yuan         numeric(14, 2),
    deadline           timestamptz NOT NULL,
    emergency_plan     text NOT NULL DEFAULT '',
    assigned_by        text NOT NULL,
    assigned_at        timestamptz NOT NULL,
    reported_by        text,
    reported_by_user   int REFERENCES users (id) ON DELETE SET NULL,
    reported_at        timestamptz,
    report_note        text NOT NULL DEFAULT '',
    verification_due   timestamptz,
    outcome            text CHECK (outcome IN ('accepted', 'rejected')),
    verified_by        text,
    verified_by_user   int REFERENCES users (id) ON DELETE SET NULL,
    verified_at        timestamptz,
    verification_note  text NOT NULL DEFAULT '',
    UNIQUE (hazard_id, round)
);
CREATE UNIQUE INDEX rectifications_open_uq ON rectifications (hazard_id) WHERE outcome IS NULL;
CREATE INDEX rectifications_deadline_idx ON rectifications (deadline);

-- The rounds of the hazards already under way: one, with what is known of it.
INSERT INTO rectifications (hazard_id, round, responsible_unit, responsible_person, deadline,
                            assigned_by, assigned_at, reported_by, reported_by_user, reported_at,
                            outcome, verified_by, verified_by_user, verified_at)
SELECT id, 1, responsible_unit, responsible_person, deadline, 'migration 0014', updated_at,
       rectified_by, rectified_by_user, rectified_at,
       CASE WHEN state IN ('verified', 'closed') THEN 'accepted' END,
       verified_by, verified_by_user, verified_at
FROM hazards
WHERE state <> 'registered' AND responsible_unit IS NOT NULL AND responsible_person IS NOT NULL
  AND deadline IS NOT NULL;

-- The deadline sweep writes each reminder, overdue mark and escalation once (registry/lifecycle.py
-- `deadline_changes`, keyed by action, kind, due and target division): the index makes a second
-- sweep, or two at once, write nothing new.
CREATE UNIQUE INDEX hazard_events_sweep_uq
    ON hazard_events (hazard_id, action, (data ->> 'kind'), (data ->> 'due'),
                      (coalesce(data ->> 'to_region', '')))
    WHERE action IN ('remind', 'overdue', 'escalate');
CREATE INDEX hazards_open_deadline_idx ON hazards (state) WHERE state IN ('assigned', 'rectified');
CREATE INDEX hazard_events_action_at_idx ON hazard_events (action, at);
