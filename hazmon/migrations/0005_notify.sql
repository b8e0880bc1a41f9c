-- Notification outbox fed in the same transaction as the alert transition that causes it:
-- a trigger on alert_transitions adds one outbox row per matching webhook subscription
-- (enabled, region code prefix matching the site's, grade at least min_grade). The notifier
-- (`hazmon notify`) delivers and retries from the outbox; nothing is lost if it is down.

CREATE FUNCTION enqueue_alert_notifications() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (subscription_id, alert_transition_id, payload)
    SELECT w.id, n.id, jsonb_build_object(
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
               'message_en', n.message_en)
    FROM new_transitions n
    JOIN alerts a ON a.id = n.alert_id
    JOIN series se ON se.id = a.series_id
    JOIN devices d ON d.id = se.device_id
    JOIN sites s ON s.id = d.site_id
    JOIN webhook_subscriptions w
      ON w.enabled
     AND starts_with(s.region_code, w.region_code)
     AND greatest(n.grade_to, n.grade_from) >= w.min_grade;
    RETURN NULL;
END $$;

CREATE TRIGGER alert_transitions_enqueue_notifications
    AFTER INSERT ON alert_transitions
    REFERENCING NEW TABLE AS new_transitions
    FOR EACH STATEMENT EXECUTE FUNCTION enqueue_alert_notifications();
