-- People (users), to whom API tokens are issued (issue 11). The hazard loop compares users, not
-- tokens: the verifier must be another person than the rectifier, whatever tokens either holds.
-- A user's role and scope are fixed (a new role is a new user) and every token of theirs carries
-- them; disabling a user stops all of their tokens at the next request. The password hash is for
-- a later phone sign-in (hazmon.auth.hash_password: scrypt).
CREATE TABLE users (
    id            serial PRIMARY KEY,
    name          text NOT NULL CHECK (btrim(name) <> ''),
    phone         text UNIQUE CHECK (phone ~ '^\+?[0-9]{5,20}$'),
    unit          text NOT NULL DEFAULT '',
    role          text NOT NULL
                  CHECK (role IN ('admin', 'regulator', 'inspector', 'enterprise', 'gateway')),
    region_code   text NOT NULL DEFAULT '',
    enterprise    text NOT NULL DEFAULT '',
    site_id       int REFERENCES sites (id) ON DELETE CASCADE,
    password_hash text CHECK (password_hash LIKE 'scrypt$%'),
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- as api_tokens_scope_check (0003), which the tokens copied here already met
    CONSTRAINT users_scope_check CHECK (
        CASE role
            WHEN 'regulator' THEN region_code ~ '^([0-9]{2}){1,3}$'
            WHEN 'inspector' THEN region_code ~ '^([0-9]{2}){1,3}$'
            WHEN 'enterprise' THEN enterprise <> '' OR site_id IS NOT NULL
            ELSE true
        END
    )
);
CREATE INDEX users_region_idx ON users (region_code text_pattern_ops);

-- Every token that existed before users gets one: tokens with the same name, role and scope are
-- taken to be one person's (so two admin tokens named alike no longer verify each other's
-- rectifications). `hazmon token create --role R --name N` and POST /tokens follow the same rule.
ALTER TABLE api_tokens ADD COLUMN user_id int REFERENCES users (id) ON DELETE CASCADE;
INSERT INTO users (name, role, region_code, enterprise, site_id, created_at)
SELECT name, role, region_code, enterprise, site_id, min(created_at)
FROM api_tokens
GROUP BY name, role, region_code, enterprise, site_id
ORDER BY min(id);
UPDATE api_tokens t SET user_id = u.id
FROM users u
WHERE u.name = t.name AND u.role = t.role AND u.region_code = t.region_code
  AND u.enterprise = t.enterprise AND u.site_id IS NOT DISTINCT FROM t.site_id;
ALTER TABLE api_tokens ALTER COLUMN user_id SET NOT NULL;
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);
