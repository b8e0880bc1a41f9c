"""Authentication (bearer tokens, stored hashed) and role checks, as route dependencies.

Every route except /healthz, /readyz and /metrics declares the roles it admits with one of the
`*Dep` aliases below; the caller's scope is then applied to every query by `api.query`.
The `gateway` role is in none of them: gateways publish over MQTT and have no HTTP access.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import ConnDep
from hazmon.auth import (
    LOOKUP_CALLER_SQL,
    TOUCH_CALLER_SQL,
    Principal,
    Role,
    hash_token,
    principal_from_row,
)

_bearer = HTTPBearer(
    auto_error=False,
    description="令牌 / API token from `hazmon token create` or POST /tokens",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}

READERS: tuple[Role, ...] = ("admin", "regulator", "inspector", "enterprise")
SUPERVISORS: tuple[Role, ...] = ("admin", "regulator", "inspector")
THRESHOLD_EDITORS: tuple[Role, ...] = ("admin", "regulator")
RECTIFIERS: tuple[Role, ...] = ("admin", "enterprise")
ADMINS: tuple[Role, ...] = ("admin",)


async def authenticate(
    request: Request,
    conn: ConnDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller of this request; 401 without a valid, unexpired, unrevoked token."""
    if credentials is None:
        raise HTTPException(401, "a bearer token is required", headers=_CHALLENGE)
    cur = await conn.execute(LOOKUP_CALLER_SQL, {"token_hash": hash_token(credentials.credentials)})
    row = await cur.fetchone()
    if row is None:
        raise HTTPException(401, "the token is unknown, expired or revoked", headers=_CHALLENGE)
    if row["stale"]:
        await conn.execute(TOUCH_CALLER_SQL, {"id": row["id"]})
    principal = principal_from_row(row)
    request.state.principal = principal
    return principal


def allow(*roles: Role) -> Any:
    """A dependency admitting callers whose role is one of `roles`; 403 for the others."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"the {principal.role} role may not use this route")
        return principal

    return Depends(check)


ReaderDep = Annotated[Principal, allow(*READERS)]
SupervisorDep = Annotated[Principal, allow(*SUPERVISORS)]
ThresholdEditorDep = Annotated[Principal, allow(*THRESHOLD_EDITORS)]
RectifierDep = Annotated[Principal, allow(*RECTIFIERS)]
RegulatorDep = Annotated[Principal, allow("admin", "regulator")]
AdminDep = Annotated[Principal, allow(*ADMINS)]
