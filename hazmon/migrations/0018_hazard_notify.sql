-- Hazard events notify too, in the event's own transaction (as 0005 does for alert transitions).
--
-- Contract with the hazard loop (registry/): it writes `hazard_events` rows with actions
--   register   (notified for major hazards only)
--   assign
--   remind     data {"due": <ISO time>, "kind": "rectification" | "verification"}
--   overdue    data {"due": <ISO time>, "kind": "rectification" | "verification"}
--   escalate   data {"to_region": "<GB/T 2260 code of the next level up>", "reason": <text>}
--   supervise
-- and this trigger turns each into one outbox row per matching subscription: enabled, not
-- escalation-only, scoped to the hazard's site (a site subscription) or to a region prefix of
-- it, and its `min_grade` met by the hazard's level (general counts as orange 3, major as
-- red 4, as alerts become hazards). An `escalate` event goes instead to the subscriptions of
-- `to_region` itself (region code equal to it, normalised: 420100 -> 4201, 420000 -> 42),
-- escalation-only ones included; one without a usable `to_region` goes nowhere (a warning in
-- the server log). Other actions (raise_level, rectify, verify, reject, close) notify no one.

CREATE FUNCTION notify_region_prefix(code text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN code ~ '^[0-9]{2}0000$' THEN left(code, 2)
        WHEN code ~ '^[0-9]{4}00$' THEN left(code, 4)
        WHEN code ~ '^([0-9]{2}){1,3}$' THEN code
    END
$$;

CREATE VIEW notify_hazard_payloads AS
SELECT e.id AS event_id, h.id AS hazard_id, h.site_id, s.region_code, e.action, h.level,
       notify_region_prefix(e.data ->> 'to_region') AS to_region,
       jsonb_build_object(
           'hazard_event_id', e.id,
           'hazard_id', h.id,
           'action', e.action,
           'actor', e.actor,
           'note', e.note,
           'data', e.data,
           'at', e.at,
           'hazard_title', h.title,
           'level', h.level,
           'state', h.state,
           'deadline', h.deadline,
           'responsible_unit', h.responsible_unit,
           'responsible_person', h.responsible_person,
           'listed_supervision', h.listed_supervision,
           'supervising_authority', h.supervising_authority,
           'alert_id', h.alert_id,
           'site_code', s.code,
           'site_name', s.name,
           'region_code', s.region_code,
           'work_code', w.code,
           'work_name', w.name) AS payload
FROM hazard_events e
JOIN hazards h ON h.id = e.hazard_id
JOIN sites s ON s.id = h.site_id
LEFT JOIN works w ON w.id = h.work_id;

CREATE FUNCTION enqueue_hazard_notifications() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lost bigint;
BEGIN
    INSERT INTO outbox (subscription_id, hazard_event_id, kind, group_key, payload)
    SELECT w.id, p.event_id, 'hazard', 'h:' || p.site_id, p.payload
    FROM new_events n
    JOIN notify_hazard_payloads p ON p.event_id = n.id
    JOIN webhook_subscriptions w ON w.enabled
     AND CASE WHEN p.action = 'escalate' THEN w.site_id IS NULL AND w.region_code = p.to_region
              ELSE NOT w.escalation_only
               AND CASE WHEN w.site_id IS NOT NULL THEN w.site_id = p.site_id
                        ELSE starts_with(p.region_code, w.region_code) END
               AND CASE WHEN p.level = 'major' THEN 4 ELSE 3 END >= w.min_grade END
    WHERE p.action IN ('register', 'assign', 'remind', 'overdue', 'escalate', 'supervise')
      AND (p.action <> 'register' OR p.level = 'major')
    ORDER BY p.event_id, w.id;

    SELECT min(n.id) INTO lost FROM new_events n
    WHERE n.action = 'escalate' AND notify_region_prefix(n.data ->> 'to_region') IS NULL;
    IF lost IS NOT NULL THEN
        RAISE WARNING 'hazard event % (escalate) has no usable data.to_region: notified no one', lost;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER hazard_events_enqueue_notifications
    AFTER INSERT ON hazard_events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION enqueue_hazard_notifications();
