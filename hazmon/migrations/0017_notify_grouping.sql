-- Issue 12: notifications that help instead of flooding (docs/architecture.md, Notifications).
--
-- * A subscription gets a level on the escalation ladder (site, county, city, province), its
--   Alertmanager-style grouping times, its reminder interval and its escalation delay.
-- * Outbox rows stay one per (transition or event, subscription): the facts. The notifier folds
--   the due rows of one (subscription, work) into one message (`notify_messages`: a single
--   notification or a digest) and sends messages per target (one robot: one URL) in order,
--   within the robot's rate limit (`notify_targets`).
-- * Reminders and escalations are outbox rows the notifier adds (kinds `remind`, `escalate`);
--   an escalation is recorded in `alert_escalations`, beside the alert, so that `alerts` and
--   `alert_transitions` stay what the engine and people write (Grafana and the API unchanged).

-- The subscription's place on the ladder: a site subscription (the site's own group) has a site;
-- otherwise its region prefix gives the level (6 digits county, 4 city, 2 province, empty: all
-- of China, above the ladder). An escalation-only subscription gets no alert directly, only the
-- escalations addressed to its level and the hazard escalations to its region.
ALTER TABLE webhook_subscriptions
    ADD COLUMN site_id int REFERENCES sites (id) ON DELETE CASCADE,
    ADD COLUMN escalation_only boolean NOT NULL DEFAULT false,
    -- Alertmanager's defaults (prometheus.io/docs/alerting/latest/configuration/#route):
    -- group_wait 30s, group_interval 5m; its repeat_interval (4h) is the reminder below.
    ADD COLUMN group_wait_s int NOT NULL DEFAULT 30 CHECK (group_wait_s BETWEEN 0 AND 3600),
    ADD COLUMN group_interval_s int NOT NULL DEFAULT 300
        CHECK (group_interval_s BETWEEN 1 AND 86400),
    -- Reminders of open, unacknowledged alerts at or above repeat_min_grade (red; 3 adds
    -- orange); NULL: none.
    ADD COLUMN repeat_interval_s int DEFAULT 1800
        CHECK (repeat_interval_s IS NULL OR repeat_interval_s BETWEEN 60 AND 604800),
    ADD COLUMN repeat_min_grade smallint NOT NULL DEFAULT 4 CHECK (repeat_min_grade BETWEEN 3 AND 4),
    -- A red alert this subscription got and nobody acknowledged within escalate_after_s goes
    -- to the next level up; NULL: never escalate past this subscription.
    ADD COLUMN escalate_after_s int DEFAULT 3600
        CHECK (escalate_after_s IS NULL OR escalate_after_s BETWEEN 60 AND 604800),
    -- One robot is one URL: its rate limit and its order are kept per target.
    ADD COLUMN target text GENERATED ALWAYS AS (md5(url)) STORED;

-- An alert transition as the notifier tells it, built once in SQL for the trigger and for the
-- reminders and escalations the notifier adds (the keys of 0005, then the work's).
CREATE VIEW notify_transition_payloads AS
SELECT n.id AS transition_id, a.id AS alert_id, a.state AS alert_state, a.grade AS alert_grade,
       d.site_id, d.work_id, s.region_code, greatest(n.grade_to, n.grade_from) AS grade,
       n.action,
       jsonb_build_object(
           'alert_id', a.id,
           'transition_id', n.id,
           'action', n.action,
           'grade', greatest(n.grade_to, n.grade_from),
           'grade_to', n.grade_to,
           'grade_from', n.grade_from,
           'rule', a.rule,
           'site_code', s.code,
           'site_name', s.name,
           'region_code', s.region_code,
           'device_code', d.code,
           'metric', se.metric,
           'value', n.value,
           'threshold', n.threshold,
           'reading_at', n.reading_at,
           'message_zh', n.message_zh,
           'message_en', n.message_en,
           'work_id', w.id,
           'work_code', w.code,
           'work_name', w.name,
           'hazard_kind', w.hazard_kind,
           'opened_at', a.opened_at) AS payload
FROM alert_transitions n
JOIN alerts a ON a.id = n.alert_id
JOIN series se ON se.id = a.series_id
JOIN devices d ON d.id = se.device_id
JOIN sites s ON s.id = d.site_id
JOIN works w ON w.id = d.work_id;

CREATE TABLE notify_messages (
    id              bigserial PRIMARY KEY,
    subscription_id int NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL UNIQUE,
    group_key       text,
    items           int NOT NULL CHECK (items >= 1),
    created_at      timestamptz NOT NULL,
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    delivered_at    timestamptz,
    failed_at       timestamptz,
    last_error      text,
    CHECK (delivered_at IS NULL OR failed_at IS NULL)
);
CREATE INDEX notify_messages_pending_idx ON notify_messages (subscription_id, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

ALTER TABLE outbox
    ADD COLUMN kind text NOT NULL DEFAULT 'alert'
        CHECK (kind IN ('alert', 'remind', 'escalate', 'hazard')),
    ADD COLUMN alert_id bigint REFERENCES alerts (id) ON DELETE CASCADE,
    ADD COLUMN hazard_event_id bigint REFERENCES hazard_events (id) ON DELETE CASCADE,
    ADD COLUMN group_key text,
    ADD COLUMN dedupe_key text,
    ADD COLUMN message_id bigint REFERENCES notify_messages (id) ON DELETE SET NULL,
    ADD COLUMN cancelled_at timestamptz,
    DROP CONSTRAINT outbox_delivered_or_failed,
    ADD CONSTRAINT outbox_settled_once CHECK (num_nonnulls(delivered_at, failed_at, cancelled_at) <= 1);
CREATE UNIQUE INDEX outbox_dedupe_uq ON outbox (subscription_id, dedupe_key)
    WHERE dedupe_key IS NOT NULL;
CREATE INDEX outbox_unassigned_idx ON outbox (next_attempt_at)
    WHERE message_id IS NULL AND delivered_at IS NULL AND failed_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX outbox_message_idx ON outbox (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX outbox_alert_idx ON outbox (alert_id, subscription_id) WHERE alert_id IS NOT NULL;
DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox (created_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL AND cancelled_at IS NULL;

-- Rows queued before this migration: their alert and work, so they group like new ones.
UPDATE outbox o SET alert_id = a.id, group_key = 'w:' || d.work_id
FROM alerts a JOIN series se ON se.id = a.series_id JOIN devices d ON d.id = se.device_id
WHERE o.payload ? 'alert_id' AND jsonb_typeof(o.payload -> 'alert_id') = 'number'
  AND o.payload ->> 'alert_id' ~ '^[1-9][0-9]{0,17}$'
  AND a.id = (o.payload ->> 'alert_id')::bigint;

-- When each (subscription, group) last sent a message: the start of its next group_interval.
CREATE TABLE notify_groups (
    subscription_id int NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    group_key       text NOT NULL,
    last_flush_at   timestamptz,
    PRIMARY KEY (subscription_id, group_key)
);

-- One robot (one URL): who is sending to it (a lease, like the outbox rows had), when it may
-- be sent to next, and the start times of its recent sends (its rate limit's window).
CREATE TABLE notify_targets (
    target       text PRIMARY KEY,
    leased_until timestamptz NOT NULL DEFAULT '-infinity',
    not_before   timestamptz NOT NULL DEFAULT '-infinity',
    recent_sends double precision[] NOT NULL DEFAULT '{}'
);

-- Escalations of red alerts nobody acknowledged: to which level, which region, after how long.
CREATE TABLE alert_escalations (
    id            bigserial PRIMARY KEY,
    alert_id      bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    level         text NOT NULL CHECK (level IN ('site', 'county', 'city', 'province')),
    region_code   text NOT NULL,
    after_s       int NOT NULL,
    reason        text NOT NULL,
    subscriptions int NOT NULL,
    escalated_at  timestamptz NOT NULL,
    UNIQUE (alert_id, level)
);

-- The 0005 trigger, now with the work in the payload, the site subscriptions, the
-- escalation-only ones left out, and the acknowledgement and resolution of an escalated alert
-- told to the levels it was escalated to.
CREATE OR REPLACE FUNCTION enqueue_alert_notifications() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (subscription_id, alert_transition_id, alert_id, kind, group_key, payload)
    SELECT w.id, p.transition_id, p.alert_id, 'alert', 'w:' || p.work_id, p.payload
    FROM new_transitions n
    JOIN notify_transition_payloads p ON p.transition_id = n.id
    JOIN webhook_subscriptions w
      ON w.enabled
     AND NOT w.escalation_only
     AND CASE WHEN w.site_id IS NOT NULL THEN w.site_id = p.site_id
              ELSE starts_with(p.region_code, w.region_code) END
     AND p.grade >= w.min_grade
    UNION ALL
    SELECT DISTINCT w.id, p.transition_id, p.alert_id, 'alert', 'w:' || p.work_id, p.payload
    FROM new_transitions n
    JOIN notify_transition_payloads p ON p.transition_id = n.id
    JOIN outbox e ON e.alert_id = p.alert_id AND e.kind = 'escalate'
    JOIN webhook_subscriptions w ON w.id = e.subscription_id AND w.enabled AND w.escalation_only
    WHERE n.action IN ('acknowledge', 'resolve')
    ORDER BY 2, 1;
    RETURN NULL;
END $$;
