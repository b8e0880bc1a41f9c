-- Investigation (隐患排查, issue 11; registry/inspections.py): inspection plans per work with their
-- checklist items (each with its clause and confidence), frequency and responsible inspector;
-- inspection records answering every item; missed inspections as events of their own (a missed
-- round has no hazard: `inspection_events`, which a later notifier change turns into messages).
CREATE TABLE inspection_plans (
    id             serial PRIMARY KEY,
    work_id        int NOT NULL REFERENCES works (id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (btrim(name) <> ''),
    frequency_h    int NOT NULL CHECK (frequency_h BETWEEN 1 AND 8784),
    inspector_user int NOT NULL REFERENCES users (id),
    items          jsonb NOT NULL CHECK (jsonb_typeof(items) = 'array' AND jsonb_array_length(items) > 0),
    starts_at      timestamptz NOT NULL,
    active         boolean NOT NULL DEFAULT true,
    checked_until  timestamptz,
    created_by     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inspection_plans_work_idx ON inspection_plans (work_id);

CREATE TABLE inspection_records (
    id                bigserial PRIMARY KEY,
    plan_id           int NOT NULL REFERENCES inspection_plans (id) ON DELETE CASCADE,
    work_id           int NOT NULL REFERENCES works (id) ON DELETE CASCADE,
    performed_by      text NOT NULL,
    performed_by_user int REFERENCES users (id) ON DELETE SET NULL,
    performed_at      timestamptz NOT NULL,
    results           jsonb NOT NULL CHECK (jsonb_typeof(results) = 'array'),
    failed            int NOT NULL DEFAULT 0 CHECK (failed >= 0),
    notes             text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inspection_records_plan_idx ON inspection_records (plan_id, performed_at);

CREATE TABLE inspection_events (
    id           bigserial PRIMARY KEY,
    plan_id      int NOT NULL REFERENCES inspection_plans (id) ON DELETE CASCADE,
    action       text NOT NULL CHECK (action IN ('inspection_missed')),
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL CHECK (window_end > window_start),
    data         jsonb NOT NULL DEFAULT '{}'::jsonb,
    at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (plan_id, action, window_start)
);
CREATE INDEX inspection_events_at_idx ON inspection_events (action, at);

-- A hazard found by an inspection points at its record and the failed item, once per item.
ALTER TABLE hazards
    ADD CONSTRAINT hazards_inspection_fk FOREIGN KEY (inspection_id)
        REFERENCES inspection_records (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX hazards_inspection_item_uq ON hazards (inspection_id, inspection_item)
    WHERE inspection_id IS NOT NULL;
