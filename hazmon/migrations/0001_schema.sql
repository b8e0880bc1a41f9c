-- hazmon schema, version 1: registry, readings hypertable, alerts, hazards, notifications, dead letters.
-- Applied by `hazmon migrate` inside one transaction; see hazmon/migrate.py.

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Administrative divisions (GB/T 2260 six-digit codes: province 2, city 2, county 2).
CREATE TABLE regions (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{6}$'),
    name        text NOT NULL,
    parent_code text REFERENCES regions (code)
);

CREATE TABLE sites (
    id          serial PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[A-Za-z0-9_-]{1,64}$'),
    name        text NOT NULL,
    region_code text NOT NULL CHECK (region_code ~ '^[0-9]{6}$'),
    enterprise  text NOT NULL DEFAULT '',
    address     text NOT NULL DEFAULT '',
    latitude    double precision,
    longitude   double precision,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sites_region_idx ON sites (region_code text_pattern_ops);

-- A major-hazard work (危大工程) on a site: its hazard kind and its design parameters
-- (pit grade, design depth, crane rated moment, ...), which override the default threshold profile.
CREATE TABLE works (
    id          serial PRIMARY KEY,
    site_id     int NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    code        text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,64}$'),
    name        text NOT NULL,
    hazard_kind text NOT NULL,
    params      jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code)
);

CREATE TABLE devices (
    id                serial PRIMARY KEY,
    site_id           int NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    work_id           int NOT NULL REFERENCES works (id) ON DELETE CASCADE,
    code              text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{1,64}$'),
    name              text NOT NULL DEFAULT '',
    sampling_period_s double precision NOT NULL DEFAULT 60 CHECK (sampling_period_s > 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, code)
);

-- Online/offline as the gateways report it on their status topic (and last will); kept apart
-- from `devices` so that status traffic is not a registry change.
CREATE TABLE device_status (
    device_id  int PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    online     boolean NOT NULL,
    changed_at timestamptz NOT NULL
);

-- A series is one metric of one device; readings reference it by id.
CREATE TABLE series (
    id        serial PRIMARY KEY,
    device_id int NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    metric    text NOT NULL,
    UNIQUE (device_id, metric)
);

-- Per-work or per-series overrides of the default threshold profile.
CREATE TABLE thresholds (
    id         serial PRIMARY KEY,
    work_id    int REFERENCES works (id) ON DELETE CASCADE,
    series_id  int REFERENCES series (id) ON DELETE CASCADE,
    metric     text NOT NULL,
    rule       text NOT NULL,
    params     jsonb NOT NULL,
    source     text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((work_id IS NULL) <> (series_id IS NULL))
);
CREATE UNIQUE INDEX thresholds_work_uq ON thresholds (work_id, metric, rule) WHERE work_id IS NOT NULL;
CREATE UNIQUE INDEX thresholds_series_uq ON thresholds (series_id, rule) WHERE series_id IS NOT NULL;

-- Baselines for cumulative rules: the initial reading or an explicitly set value, each dated.
CREATE TABLE baselines (
    id        bigserial PRIMARY KEY,
    series_id int NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    value     double precision NOT NULL,
    valid_from timestamptz NOT NULL,
    reason    text NOT NULL DEFAULT 'initial',
    set_by    text NOT NULL DEFAULT 'system',
    set_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX baselines_series_idx ON baselines (series_id, valid_from);

CREATE TABLE readings (
    time      timestamptz NOT NULL,
    series_id int NOT NULL,
    value     double precision NOT NULL
);
SELECT create_hypertable('readings', 'time', chunk_time_interval => interval '1 day');
CREATE UNIQUE INDEX readings_series_time_uq ON readings (series_id, time DESC);

-- Alerts: one open alert per (series, rule); every change is an alert_transitions row.
CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    series_id       int NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    rule            text NOT NULL,
    grade           smallint NOT NULL CHECK (grade BETWEEN 1 AND 4),
    state           text NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    opened_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    resolved_at     timestamptz,
    value           double precision,
    threshold       double precision,
    message_zh      text NOT NULL,
    message_en      text NOT NULL,
    acknowledged_by text,
    acknowledged_at timestamptz,
    ack_note        text
);
CREATE UNIQUE INDEX alerts_one_open_uq ON alerts (series_id, rule) WHERE state <> 'resolved';
CREATE INDEX alerts_opened_idx ON alerts (opened_at DESC);

CREATE TABLE alert_transitions (
    id          bigserial PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    action      text NOT NULL,
    grade_from  smallint NOT NULL,
    grade_to    smallint NOT NULL,
    reading_at  timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    value       double precision,
    threshold   double precision,
    message_zh  text NOT NULL,
    message_en  text NOT NULL,
    actor       text NOT NULL DEFAULT 'engine'
);
CREATE INDEX alert_transitions_alert_idx ON alert_transitions (alert_id, id);

-- Hazard registry (隐患): registered, graded, assigned, rectified, verified, closed out.
CREATE TABLE hazards (
    id                 bigserial PRIMARY KEY,
    site_id            int NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    work_id            int REFERENCES works (id) ON DELETE SET NULL,
    alert_id           bigint REFERENCES alerts (id) ON DELETE SET NULL,
    title              text NOT NULL,
    description        text NOT NULL DEFAULT '',
    level              text NOT NULL CHECK (level IN ('general', 'major')),
    state              text NOT NULL,
    basis              text NOT NULL DEFAULT '',
    found_by           text NOT NULL,
    found_at           timestamptz NOT NULL,
    responsible_unit   text,
    responsible_person text,
    deadline           timestamptz,
    listed_supervision boolean NOT NULL DEFAULT false,
    closed_at          timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE hazard_events (
    id        bigserial PRIMARY KEY,
    hazard_id bigint NOT NULL REFERENCES hazards (id) ON DELETE CASCADE,
    action    text NOT NULL,
    actor     text NOT NULL,
    note      text NOT NULL DEFAULT '',
    data      jsonb NOT NULL DEFAULT '{}'::jsonb,
    at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_subscriptions (
    id          serial PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('generic', 'wecom', 'dingtalk', 'feishu')),
    url         text NOT NULL,
    secret      text,
    region_code text NOT NULL DEFAULT '',
    min_grade   smallint NOT NULL DEFAULT 2 CHECK (min_grade BETWEEN 1 AND 4),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    subscription_id int NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    alert_transition_id bigint REFERENCES alert_transitions (id) ON DELETE CASCADE,
    payload         jsonb NOT NULL,
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at) WHERE delivered_at IS NULL;

-- Bad input from gateways, kept with its raw bytes so it can be replayed once the registry is fixed.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    payload     bytea NOT NULL,
    replayed_at timestamptz,
    replay_result text
);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason, received_at DESC);

CREATE TABLE api_tokens (
    id           serial PRIMARY KEY,
    name         text NOT NULL,
    token_hash   text NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('admin', 'regulator', 'inspector', 'enterprise', 'gateway')),
    region_code  text NOT NULL DEFAULT '',
    enterprise   text NOT NULL DEFAULT '',
    site_id      int REFERENCES sites (id) ON DELETE CASCADE,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);

-- A counter bumped by every change to the registry, so ingest workers know when to reload their
-- series map and rule engine without each writer having to remember to tell them.
CREATE TABLE registry_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);
INSERT INTO registry_version VALUES (true, 1);

CREATE FUNCTION bump_registry_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registry_version SET version = version + 1;
    RETURN NULL;
END $$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sites', 'works', 'devices', 'series', 'thresholds', 'baselines'] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version()',
            t || '_bump_registry_version', t);
    END LOOP;
END $$;
