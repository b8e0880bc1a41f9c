"""API tokens and the roles they carry: creation, hashing, revocation and lookup.

A token is a random string shown once; only its SHA-256 is stored (`api_tokens.token_hash`), so
a copy of the database grants nothing. Each token has one role and, for the roles that see only
part of the registry, a scope:

- `admin`: everything, including tokens, webhooks and dead letters;
- `regulator`, `inspector`: the sites whose region code starts with the token's prefix
  (2 digits a province, 4 a city, 6 a county: GB/T 2260);
- `enterprise`: the sites of one enterprise, or one site;
- `gateway`: publishes telemetry over MQTT only; every HTTP route refuses it.

The SQL here is shared by the CLI (sync psycopg) and the API (async psycopg); the pure parts
(`grant`, `region_prefix`, `Principal`) do no I/O.
"""

from __future__ import annotations

import hashlib
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
    INSERT INTO api_tokens (name, token_hash, role, region_code, enterprise, site_id, expires_at)
    VALUES (%(name)s, %(token_hash)s, %(role)s, %(region_code)s, %(enterprise)s, %(site_id)s,
            %(expires_at)s)
    RETURNING id"""
REVOKE_GRANT_SQL = """
    UPDATE api_tokens SET revoked_at = now() WHERE id = %(id)s AND revoked_at IS NULL RETURNING id"""
LOOKUP_CALLER_SQL = """
    SELECT id, name, role, region_code, enterprise, site_id,
           last_used_at IS NULL OR last_used_at < now() - interval '1 minute' AS stale
    FROM api_tokens
    WHERE token_hash = %(token_hash)s AND revoked_at IS NULL AND expires_at > now()"""
TOUCH_CALLER_SQL = "UPDATE api_tokens SET last_used_at = now() WHERE id = %(id)s"


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
    """Who is calling: a token's id, name, role and scope."""

    token_id: int
    name: str
    role: Role
    region_prefix: str = ""
    enterprise: str = ""
    site_id: int | None = None

    def __post_init__(self) -> None:
        if self.role in REGION_ROLES and not self.region_prefix:
            raise AuthError(f"a {self.role} token needs a region")
        if self.role == "enterprise" and not (self.enterprise or self.site_id is not None):
            raise AuthError("an enterprise token needs an enterprise name or a site")

    @property
    def actor(self) -> str:
        """How the audit trail names this caller (`role:name#id`)."""
        return f"{self.role}:{self.name}#{self.token_id}"


@dataclass(frozen=True, slots=True)
class Grant:
    """A new token: the secret to show once and the row to store."""

    token: str
    row: dict[str, Any]


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

    Args:
        name: who or what the token is for (shown in logs and the audit trail).
        role: one of ROLES.
        expires_days: validity in days, 1 to MAX_EXPIRES_DAYS.
        now: the creation time (timezone-aware).
        region: region code or prefix, required for regulators and inspectors only.
        enterprise: enterprise name, for enterprise tokens (or give `site_id`).
        site_id: the one site an enterprise token may see.
    """
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    if not name.strip():
        raise AuthError("a token needs a name")
    if not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise AuthError(f"expiry must be 1 to {MAX_EXPIRES_DAYS} days, got {expires_days}")
    if role in REGION_ROLES:
        region = region_prefix(region)
    elif region:
        raise AuthError(f"a {role} token takes no region")
    if role == "enterprise":
        if bool(enterprise) == (site_id is not None):
            raise AuthError("an enterprise token needs exactly one of an enterprise or a site")
    elif enterprise or site_id is not None:
        raise AuthError(f"a {role} token takes no enterprise or site")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return Grant(
        token=token,
        row={
            "name": name.strip(),
            "token_hash": hash_token(token),
            "role": role,
            "region_code": region,
            "enterprise": enterprise,
            "site_id": site_id,
            "expires_at": now + timedelta(days=expires_days),
        },
    )


def principal_from_row(row: dict[str, Any]) -> Principal:
    """The caller described by a row of LOOKUP_CALLER_SQL."""
    return Principal(
        token_id=int(row["id"]),
        name=str(row["name"]),
        role=row["role"],
        region_prefix=str(row["region_code"]),
        enterprise=str(row["enterprise"]),
        site_id=row["site_id"],
    )


def create_token(conn: psycopg.Connection[Any], new: Grant) -> int:
    """Store a granted token and commit; return its id."""
    with conn.transaction():
        row = conn.execute(INSERT_GRANT_SQL, new.row).fetchone()
    assert row is not None
    return int(row[0])


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
        """SELECT id, name, role, region_code, enterprise, site_id, expires_at,
                  revoked_at IS NOT NULL, expires_at < now()
           FROM api_tokens ORDER BY id"""
    ).fetchall()
    listings = []
    for token_id, name, role, region, enterprise, site_id, expires, revoked, expired in rows:
        scope = region or enterprise or (f"site #{site_id}" if site_id else "-")
        state = "revoked" if revoked else "expired" if expired else f"until {expires:%Y-%m-%d}"
        listings.append(TokenListing(token_id, name, role, scope, state))
    return listings


def site_id_by_code(conn: psycopg.Connection[Any], code: str) -> int:
    """The id of the site with this code; raise AuthError if there is none."""
    row = conn.execute("SELECT id FROM sites WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise AuthError(f"no site with code {code!r}")
    return int(row[0])
