-- The hazards of alerts are registered by the registry's Python code (registry/hazard_store.py,
-- policy in registry/lifecycle.py `alert_hazard_change`), called by ingest in the transaction
-- that records the alert transitions: the same guarantee as the trigger of 0006 (no orange or red
-- alert committed without its hazard), with the policy in one tested place.
DROP TRIGGER alert_transitions_register_hazards ON alert_transitions;
DROP FUNCTION register_hazards_from_alerts();
