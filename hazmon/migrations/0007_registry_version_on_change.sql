-- The registry version moves only when registry rows really change.
--
-- 0001 bumped `registry_version` from a statement-level trigger, which fires even when the
-- statement touches no row: the baseline pin (`INSERT ... WHERE NOT EXISTS`) that ingest runs on
-- every engine load bumped it with nothing inserted, so an idle ingest reloaded its registry and
-- replayed its rule state every refresh interval, forever (issue "No message, value or client can
-- stop hazmon", item 5). Here the triggers look at the statement's transition table and bump only
-- when it holds a row. Initial baselines (reason 'initial': a series' first reading, pinned by the
-- engine that already holds it) are no change for anyone; a re-baseline (any other reason) is.
-- Transition tables allow one event per trigger, hence one trigger per event.

CREATE FUNCTION bump_registry_version_if_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed_rows) THEN
        UPDATE registry_version SET version = version + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION bump_registry_version_if_rebaselined() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed_rows WHERE TG_OP = 'DELETE' OR reason <> 'initial') THEN
        UPDATE registry_version SET version = version + 1;
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE
    t text;
    fn text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sites', 'works', 'devices', 'series', 'thresholds', 'baselines'] LOOP
        fn := CASE WHEN t = 'baselines' THEN 'bump_registry_version_if_rebaselined'
                   ELSE 'bump_registry_version_if_changed' END;
        EXECUTE format('DROP TRIGGER %I ON %I', t || '_bump_registry_version', t);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS changed_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION %I()', t || '_registry_insert', t, fn);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING NEW TABLE AS changed_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION %I()', t || '_registry_update', t, fn);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS changed_rows '
            'FOR EACH STATEMENT EXECUTE FUNCTION %I()', t || '_registry_delete', t, fn);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION bump_registry_version()',
            t || '_registry_truncate', t);
    END LOOP;
END $$;
