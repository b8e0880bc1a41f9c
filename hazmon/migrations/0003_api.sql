-- hazmon schema 0003: API access control, device broker credentials, hazard lifecycle fields.

-- MQTT credentials of a gateway device. The password is stored only as Mosquitto's
-- PBKDF2-SHA512 hash (`$7$iterations$salt$hash`), so `hazmon broker-config` can write the
-- broker's password file from it; the clear password is shown once, when it is generated.
CREATE TABLE device_credentials (
    device_id     int PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.-]{1,129}$'),
    password_hash text NOT NULL CHECK (password_hash LIKE '$7$%'),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- A token's scope must fit its role: regulators and inspectors are scoped by a region code
-- prefix (province 2, city 4 or county 6 digits), enterprises by their name or one site.
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scope_check CHECK (
    CASE role
        WHEN 'regulator' THEN region_code ~ '^([0-9]{2}){1,3}$'
        WHEN 'inspector' THEN region_code ~ '^([0-9]{2}){1,3}$'
        WHEN 'enterprise' THEN enterprise <> '' OR site_id IS NOT NULL
        ELSE true
    END
);

-- The hazard lifecycle (registry/hazards.py): who rectified (the verifier must be someone else),
-- who verified, and which authority lists a major hazard for supervision (挂牌督办).
ALTER TABLE hazards
    ADD COLUMN rectified_by text,
    ADD COLUMN verified_by text,
    ADD COLUMN supervising_authority text,
    ADD CONSTRAINT hazards_state_check
        CHECK (state IN ('registered', 'assigned', 'rectified', 'verified', 'closed'));
CREATE INDEX hazards_site_state_idx ON hazards (site_id, state);
CREATE INDEX hazard_events_hazard_idx ON hazard_events (hazard_id, id);
CREATE INDEX works_site_idx ON works (site_id);
CREATE INDEX devices_site_idx ON devices (site_id);
