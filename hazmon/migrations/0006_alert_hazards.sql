-- Significant alerts become hazards (隐患) in the registry, in the same transaction as the alert
-- transition that makes them significant, so no orange or red alert can be left without an
-- entry in the closed loop. Choice (docs/architecture.md, "Alerts into hazards"):
--   orange (II) -> a general hazard (一般隐患);
--   red (I)     -> a major hazard (重大事故隐患): deformation beyond the alarm value is among the
--                  major-hazard situations of 建质规〔2022〕2号 (e.g. support deformation beyond
--                  the design control value), and major hazards go on to listed supervision.
-- One hazard per alert: an escalation from orange to red raises the existing hazard to major
-- (recorded as an event) instead of registering a second one. The hazard's lifecycle is then
-- the registry's (registry/hazards.py): assignment, rectification, verification, close-out.

CREATE FUNCTION register_hazards_from_alerts() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t record;
    h_id bigint;
    h_level text;
BEGIN
    FOR t IN
        SELECT n.id AS transition_id, n.alert_id, n.grade_to, n.reading_at, n.message_zh,
               n.message_en, a.rule, se.metric, d.site_id, d.work_id, d.code AS device_code
        FROM new_transitions n
        JOIN alerts a ON a.id = n.alert_id
        JOIN series se ON se.id = a.series_id
        JOIN devices d ON d.id = se.device_id
        WHERE n.action IN ('open', 'escalate') AND n.grade_to >= 3
        ORDER BY n.id
    LOOP
        SELECT id, level INTO h_id, h_level FROM hazards WHERE alert_id = t.alert_id;
        IF h_id IS NULL THEN
            INSERT INTO hazards (site_id, work_id, alert_id, title, description, level, state,
                                 basis, found_by, found_at)
            VALUES (t.site_id, t.work_id, t.alert_id,
                    format('监测报警 / monitoring alert: %s %s', t.device_code, t.metric),
                    t.message_zh || E'\n' || t.message_en,
                    CASE WHEN t.grade_to >= 4 THEN 'major' ELSE 'general' END,
                    'registered',
                    format('hazmon rule %s (alert %s)', t.rule, t.alert_id),
                    'hazmon-engine', t.reading_at)
            RETURNING id INTO h_id;
            INSERT INTO hazard_events (hazard_id, action, actor, note, data)
            VALUES (h_id, 'register', 'hazmon-engine', t.message_zh || E'\n' || t.message_en,
                    jsonb_build_object('alert_id', t.alert_id, 'transition_id', t.transition_id,
                                       'grade', t.grade_to));
        ELSIF t.grade_to >= 4 AND h_level <> 'major' THEN
            UPDATE hazards SET level = 'major', updated_at = now() WHERE id = h_id;
            INSERT INTO hazard_events (hazard_id, action, actor, note, data)
            VALUES (h_id, 'raise_level', 'hazmon-engine', t.message_zh || E'\n' || t.message_en,
                    jsonb_build_object('alert_id', t.alert_id, 'transition_id', t.transition_id,
                                       'grade', t.grade_to, 'level', 'major'));
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER alert_transitions_register_hazards
    AFTER INSERT ON alert_transitions
    REFERENCING NEW TABLE AS new_transitions
    FOR EACH STATEMENT EXECUTE FUNCTION register_hazards_from_alerts();

CREATE UNIQUE INDEX hazards_alert_uq ON hazards (alert_id) WHERE alert_id IS NOT NULL;
