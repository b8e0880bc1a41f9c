"""People (users), the API tokens issued to them and the roles they carry: creation, hashing,
revocation and lookup.

A user is a person (name, phone, unit) with one role and scope; tokens are issued to a user and
carry the user's role and scope, so the hazard loop compares people, not tokens (the verifier
must be another user than the rectifier, whatever tokens either holds). Disabling a user stops
every token of theirs at the next request. A token is a random string shown once; only its
SHA-256 is stored (`api_tokens.token_hash`), so a copy of the database grants nothing. A user's
optional password is stored as a scrypt hash (`users.password_hash`), for a later phone sign-in.
Roles and scopes:

- `admin`: everything, including tokens, webhooks and dead letters;
- `regulator`, `inspector`: the sites whose region code starts with the token's prefix
  (2 digits a province, 4 a city, 6 a county: GB/T 2260);
- `enterprise`: the sites of one enterprise, or one site;
- `gateway`: publishes telemetry over MQTT only; every HTTP route refuses it.

A token created the old way, by name, role and scope without a user (`hazmon token create
--role R --name N`, `POST /tokens`), belongs to the user of that name, role and scope, who is
created if there is none: the rule migration 0013 applied to the tokens that existed before users.

The SQL here is shared by the CLI (sync psycopg) and the API (async psycopg); the pure parts
(`grant`, `new_user`, `hash_password`, `region_prefix`, `Principal`) do no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

import psycopg

Role = Literal["admin", "regulator", "inspector", "enterprise", "gateway"]
ROLES: tuple[Role, ...] = get_args(Role)
REGION_ROLES: frozenset[Role] = frozenset({"regulator", "inspector"})
TOKEN_PREFIX = "hzm_"  # noqa: S105 (a public marker that makes leaked tokens greppable)
MAX_EXPIRES_DAYS = 3660

INSERT_GRANT_SQL = """
    INSERT INTO api_tokens (name, token_hash, role, region_code, enterprise, site_id, expires_at,
                            user_id)
    SELECT %(name)s, %(token_hash)s, u.role, u.region_code, u.enterprise, u.site_id,
           %(expires_at)s, u.id
    FROM users u
    WHERE u.id = %(user_id)s AND u.disabled_at IS NULL
    RETURNING id"""
"""Store a token of user `user_id` with the user's role and scope; no row if the user is disabled
or does not exist."""
GRANT_USER_SQL = """
    WITH found AS (
        SELECT id, disabled_at FROM users
        WHERE name = %(name)s AND role = %(role)s AND region_code = %(region_code)s
          AND enterprise = %(enterprise)s AND site_id IS NOT DISTINCT FROM %(site_id)s::int
        ORDER BY id LIMIT 1),
    made AS (
        INSERT INTO users (name, role, region_code, enterprise, site_id)
        SELECT %(name)s, %(role)s, %(region_code)s, %(enterprise)s, %(site_id)s
        WHERE NOT EXISTS (SELECT 1 FROM found)
        RETURNING id, disabled_at)
    SELECT id, disabled_at IS NOT NULL AS disabled FROM found
    UNION ALL SELECT id, false FROM made"""
"""The user a token granted by name, role and scope belongs to (created if there is none)."""
REVOKE_GRANT_SQL = """
    UPDATE api_tokens SET revoked_at = now() WHERE id = %(id)s AND revoked_at IS NULL RETURNING id"""
LOOKUP_CALLER_SQL = """
    SELECT t.id, t.name, u.role, u.region_code, u.enterprise, u.site_id, u.id AS user_id,
           u.name AS user_name,
           t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' AS stale
    FROM api_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = %(token_hash)s AND t.revoked_at IS NULL AND t.expires_at > now()
      AND u.disabled_at IS NULL"""
TOUCH_CALLER_SQL = "UPDATE api_tokens SET last_used_at = now() WHERE id = %(id)s"
INSERT_USER_SQL = """
    INSERT INTO users (name, phone, unit, role, region_code, enterprise, site_id, password_hash)
    VALUES (%(name)s, %(phone)s, %(unit)s, %(role)s, %(region_code)s, %(enterprise)s,
            %(site_id)s, %(password_hash)s)
    RETURNING id"""
SET_USER_DISABLED_SQL = """
    UPDATE users SET disabled_at = CASE WHEN %(disabled)s THEN coalesce(disabled_at, now()) END,
                     updated_at = now()
    WHERE id = %(id)s RETURNING id"""
PHONE_PATTERN = r"^\+?[0-9]{5,20}$"
"""A phone number as stored: digits, an optional leading +, 5 to 20 digits (the later phone
sign-in looks users up by it, so it is unique)."""
MIN_PASSWORD_CHARS = 12
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
"""scrypt cost: RFC 7914's interactive-login parameters (16 MiB, tens of ms per check)."""


class AuthError(ValueError):
    """A token request or a scope that does not fit its role."""


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256 as hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def region_prefix(code: str) -> str:
    """Normalise a region scope to its significant prefix: '420000' → '42', '420100' → '4201'.

    Accepts a 2-, 4- or 6-digit code; raises AuthError otherwise.
    """
    if not re.fullmatch(r"([0-9]{2}){1,3}", code):
        raise AuthError(f"region must be a 2, 4 or 6 digit division code, got {code!r}")
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token's id and name, its user, and the user's role and scope."""

    token_id: int
    name: str
    role: Role
    region_prefix: str = ""
    enterprise: str = ""
    site_id: int | None = None
    user_id: int | None = None
    """The person the token was issued to (`users.id`); the hazard loop compares these."""
    user_name: str = ""

    def __post_init__(self) -> None:
        if self.role in REGION_ROLES and not self.region_prefix:
            raise AuthError(f"a {self.role} token needs a region")
        if self.role == "enterprise" and not (self.enterprise or self.site_id is not None):
            raise AuthError("an enterprise token needs an enterprise name or a site")

    @property
    def actor(self) -> str:
        """How the audit trail names this caller (`role:name#token_id`, the user's name)."""
        return f"{self.role}:{self.user_name or self.name}#{self.token_id}"


@dataclass(frozen=True, slots=True)
class Grant:
    """A new token: the secret to show once and the row to store.

    `row` holds the token's name, hash and expiry, and either its `user_id` or (a token granted
    by name, role and scope) the role and scope that find or create its user.
    """

    token: str
    row: dict[str, Any]


def _checked_scope(
    role: Role, region: str, enterprise: str, site_id: int | None, what: str
) -> tuple[str, str, int | None]:
    """The scope of `role` normalised (region prefix), or AuthError if it does not fit."""
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    if role in REGION_ROLES:
        region = region_prefix(region)
    elif region:
        raise AuthError(f"a {role} {what} takes no region")
    if role == "enterprise":
        if bool(enterprise) == (site_id is not None):
            raise AuthError(f"an enterprise {what} needs exactly one of an enterprise or a site")
    elif enterprise or site_id is not None:
        raise AuthError(f"a {role} {what} takes no enterprise or site")
    return region, enterprise, site_id


def _secret(name: str, expires_days: int, now: datetime) -> tuple[str, dict[str, Any]]:
    if not name.strip():
        raise AuthError("a token needs a name")
    if not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise AuthError(f"expiry must be 1 to {MAX_EXPIRES_DAYS} days, got {expires_days}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, {
        "name": name.strip(),
        "token_hash": hash_token(token),
        "expires_at": now + timedelta(days=expires_days),
    }


def grant(
    *,
    name: str,
    role: Role,
    expires_days: int,
    now: datetime,
    region: str = "",
    enterprise: str = "",
    site_id: int | None = None,
) -> Grant:
    """Make a token for `role` with its scope checked; raise AuthError if the scope does not fit.

    The token belongs to the user of this name, role and scope (`create_token` finds or creates
    them); `grant_for_user` issues a token to a known user.

    Args:
        name: who the token is for (the user's name; shown in logs and the audit trail).
        role: one of ROLES.
        expires_days: validity in days, 1 to MAX_EXPIRES_DAYS.
        now: the creation time (timezone-aware).
        region: region code or prefix, required for regulators and inspectors only.
        enterprise: enterprise name, for enterprise tokens (or give `site_id`).
        site_id: the one site an enterprise token may see.
    """
    region, enterprise, site_id = _checked_scope(role, region, enterprise, site_id, "token")
    token, row = _secret(name, expires_days, now)
    row.update(role=role, region_code=region, enterprise=enterprise, site_id=site_id)
    return Grant(token=token, row=row)


def grant_for_user(*, user_id: int, name: str, expires_days: int, now: datetime) -> Grant:
    """Make a token for user `user_id`, who gives it their role and scope.

    Args:
        user_id: `users.id`.
        name: what the token is for ("手机", "值班电脑"), shown in token listings.
        expires_days: validity in days, 1 to MAX_EXPIRES_DAYS.
        now: the creation time (timezone-aware).
    """
    token, row = _secret(name, expires_days, now)
    row["user_id"] = user_id
    return Grant(token=token, row=row)


def hash_password(password: str) -> str:
    """The stored form of a password: `scrypt$N$r$p$salt$hash` (base64), salted per user.

    Raises:
        AuthError: a password shorter than MIN_PASSWORD_CHARS characters.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        raise AuthError(f"a password has at least {MIN_PASSWORD_CHARS} characters")
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    encoded = [base64.b64encode(b).decode("ascii") for b in (salt, digest)]
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${encoded[0]}${encoded[1]}"


def check_password(password: str, stored: str | None) -> bool:
    """Whether `password` is the one `stored` (a `hash_password` string) was made from."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def new_user(
    *,
    name: str,
    role: Role,
    region: str = "",
    enterprise: str = "",
    site_id: int | None = None,
    phone: str | None = None,
    unit: str = "",
    password: str | None = None,
) -> dict[str, Any]:
    """The `users` row of a new person, scope checked as for tokens; AuthError if it does not fit.

    Args:
        name: the person's name (张工).
        role: one of ROLES; a user's role and scope never change (create another user).
        region: region code or prefix (regulators, inspectors).
        enterprise: enterprise name (enterprise users, or give `site_id`).
        site_id: the one site an enterprise user may see.
        phone: mobile number, unique (a later phone sign-in looks users up by it).
        unit: the person's unit (单位), e.g. 武汉市建设工程安全监督站.
        password: stored as a scrypt hash only; None for none.
    """
    if not name.strip():
        raise AuthError("a user needs a name")
    region, enterprise, site_id = _checked_scope(role, region, enterprise, site_id, "user")
    if phone is not None and not re.fullmatch(PHONE_PATTERN, phone):
        raise AuthError(f"a phone number is 5 to 20 digits with an optional +, got {phone!r}")
    return {
        "name": name.strip(),
        "phone": phone,
        "unit": unit.strip(),
        "role": role,
        "region_code": region,
        "enterprise": enterprise,
        "site_id": site_id,
        "password_hash": hash_password(password) if password is not None else None,
    }


def principal_from_row(row: dict[str, Any]) -> Principal:
    """The caller described by a row of LOOKUP_CALLER_SQL."""
    return Principal(
        token_id=int(row["id"]),
        name=str(row["name"]),
        role=row["role"],
        region_prefix=str(row["region_code"]),
        enterprise=str(row["enterprise"]),
        site_id=row["site_id"],
        user_id=row.get("user_id"),
        user_name=str(row.get("user_name") or ""),
    )


def create_token(conn: psycopg.Connection[Any], new: Grant) -> int:
    """Store a granted token (finding or creating its user) and commit; return its id.

    Raises:
        AuthError: the token's user is disabled or does not exist.
    """
    with conn.transaction():
        row = dict(new.row)
        if "user_id" not in row:
            found = conn.execute(GRANT_USER_SQL, row).fetchone()
            assert found is not None
            if found[1]:
                raise AuthError(f"user #{found[0]} ({row['name']}) is disabled")
            row["user_id"] = found[0]
        stored = conn.execute(INSERT_GRANT_SQL, row).fetchone()
    if stored is None:
        raise AuthError(f"no enabled user #{row['user_id']}")
    return int(stored[0])


def revoke_token(conn: psycopg.Connection[Any], token_id: int) -> bool:
    """Revoke a token now; return False if there is no such unrevoked token."""
    with conn.transaction():
        return conn.execute(REVOKE_GRANT_SQL, {"id": token_id}).fetchone() is not None


@dataclass(frozen=True, slots=True)
class TokenListing:
    """What may be shown of a stored token: never the token itself."""

    id: int
    name: str
    role: str
    scope: str
    state: str


def list_tokens(conn: psycopg.Connection[Any]) -> list[TokenListing]:
    """Every token, oldest first, with its scope and its state (revoked, expired, until when)."""
    rows = conn.execute(
        """SELECT t.id, t.name, u.role, u.region_code, u.enterprise, u.site_id, t.expires_at,
                  t.revoked_at IS NOT NULL, t.expires_at < now(), u.disabled_at IS NOT NULL
           FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id"""
    ).fetchall()
    listings = []
    for token_id, name, role, region, enterprise, site_id, expires, *flags in rows:
        revoked, expired, disabled = flags
        state = (
            "revoked"
            if revoked
            else "expired"
            if expired
            else "user disabled"
            if disabled
            else f"until {expires:%Y-%m-%d}"
        )
        listings.append(
            TokenListing(token_id, name, role, _scope_text(region, enterprise, site_id), state)
        )
    return listings


def _scope_text(region: str, enterprise: str, site_id: int | None) -> str:
    return region or enterprise or (f"site #{site_id}" if site_id else "-")


def create_user(conn: psycopg.Connection[Any], row: dict[str, Any]) -> int:
    """Store a `new_user` row and commit; return the user's id (a duplicate phone: IntegrityError)."""
    with conn.transaction():
        stored = conn.execute(INSERT_USER_SQL, row).fetchone()
    assert stored is not None
    return int(stored[0])


def set_user_disabled(conn: psycopg.Connection[Any], user_id: int, disabled: bool) -> bool:
    """Disable (every token of theirs stops working) or enable a user; False if there is none."""
    with conn.transaction():
        found = conn.execute(SET_USER_DISABLED_SQL, {"id": user_id, "disabled": disabled})
        return found.fetchone() is not None


@dataclass(frozen=True, slots=True)
class UserListing:
    """A user as `hazmon user list` shows them (never the password hash)."""

    id: int
    name: str
    role: str
    scope: str
    phone: str
    unit: str
    state: str
    tokens: int


def list_users(conn: psycopg.Connection[Any]) -> list[UserListing]:
    """Every user, oldest first, with scope, state and how many usable tokens they hold."""
    rows = conn.execute(
        """SELECT u.id, u.name, u.role, u.region_code, u.enterprise, u.site_id,
                  coalesce(u.phone, ''), u.unit, u.disabled_at IS NOT NULL,
                  count(t.id) FILTER (WHERE t.revoked_at IS NULL AND t.expires_at > now())
           FROM users u LEFT JOIN api_tokens t ON t.user_id = u.id
           GROUP BY u.id ORDER BY u.id"""
    ).fetchall()
    return [
        UserListing(
            user_id,
            name,
            role,
            _scope_text(region, enterprise, site_id),
            phone,
            unit,
            "disabled" if disabled else "enabled",
            int(tokens),
        )
        for user_id, name, role, region, enterprise, site_id, phone, unit, disabled, tokens in rows
    ]


def site_id_by_code(conn: psycopg.Connection[Any], code: str) -> int:
    """The id of the site with this code; raise AuthError if there is none."""
    row = conn.execute("SELECT id FROM sites WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise AuthError(f"no site with code {code!r}")
    return int(row[0])
