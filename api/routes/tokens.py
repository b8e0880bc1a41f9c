"""API tokens (令牌): created and revoked by admins; the token itself is shown once.

Every token belongs to a user (`api/routes/users.py` issues tokens to a known user); a token
created here by name, role and scope belongs to the user of that name, role and scope, who is
created if there is none (`hazmon.auth.GRANT_USER_SQL`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import BodyId32, ConnDep, Id32, client
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging
from api.security import AdminDep, ReaderDep
from hazmon.auth import (
    GRANT_USER_SQL,
    INSERT_GRANT_SQL,
    MAX_EXPIRES_DAYS,
    REVOKE_GRANT_SQL,
    AuthError,
    Role,
    grant,
    grant_for_user,
)
from registry.alerts import audit

router = APIRouter(prefix="/tokens", tags=["tokens"])
me_router = APIRouter(tags=["tokens"])
user_tokens_router = APIRouter(prefix="/users", tags=["users"])

TOKENS = Resource(
    name="token",
    columns="t.id, t.name, t.role, t.region_code, t.enterprise, t.site_id, t.expires_at, "
    "t.revoked_at, t.created_at, t.last_used_at, t.user_id",
    source="api_tokens t",
    id_column="t.id",
    sortable={"id": "t.id", "name": "t.name", "expires_at": "t.expires_at"},
    default_sort="id",
    tenant=False,
)


class TokenCreate(BaseModel):
    """A new token and its scope (region for regulators and inspectors; enterprise or site)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, pattern=r"\S")
    role: Role
    region: str = Field(default="", pattern=r"^([0-9]{2}){0,3}$", description="区划 / region")
    enterprise: str = Field(default="", max_length=200)
    site_id: BodyId32 | None = None
    expires_days: int = Field(default=90, ge=1, le=MAX_EXPIRES_DAYS)


class TokenPublic(BaseModel):
    """A token's record (never the token)."""

    id: int
    name: str
    role: Role
    region_code: str
    enterprise: str
    site_id: int | None
    expires_at: datetime
    revoked_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None
    user_id: int = Field(description="用户 / the user the token was issued to")


class TokensPublic(BaseModel):
    """A page of tokens."""

    data: list[TokenPublic]
    count: int


class CallerPublic(BaseModel):
    """Who the caller is: the token, its user, and the user's role and scope."""

    token_id: int
    name: str
    role: Role
    region_prefix: str
    enterprise: str
    site_id: int | None
    user_id: int | None
    user_name: str


class TokenCreated(TokenPublic):
    """A new token: `token` is shown this once."""

    token: str


class UserTokenCreate(BaseModel):
    """A token for a user: it takes the user's role and scope."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, pattern=r"\S", description="用途 / what it is for (手机)"
    )
    expires_days: int = Field(default=90, ge=1, le=MAX_EXPIRES_DAYS)


@router.get("", response_model=TokensPublic, summary="令牌列表 / list tokens")
async def list_tokens(
    conn: ConnDep, who: AdminDep, page: Annotated[Page, paging(TOKENS)], role: Role | None = None
) -> TokensPublic:
    """Every token, revoked and expired ones included."""
    rows, count = await fetch_page(
        conn, TOKENS, who, page, Filters().add("t.role = %(role)s", role=role)
    )
    return TokensPublic(data=[TokenPublic.model_validate(r) for r in rows], count=count)


@router.post("", response_model=TokenCreated, status_code=201, summary="新建令牌 / create a token")
async def create_token(conn: ConnDep, who: AdminDep, body: TokenCreate) -> TokenCreated:
    """Create a token; its scope must fit its role (422 otherwise). It belongs to the user of
    this name, role and scope, created if there is none (422 if that user is disabled)."""
    new = grant(
        name=body.name,
        role=body.role,
        expires_days=body.expires_days,
        now=datetime.now(UTC),
        region=body.region,
        enterprise=body.enterprise,
        site_id=body.site_id,
    )
    found = await (await conn.execute(GRANT_USER_SQL, new.row)).fetchone()
    assert found is not None
    if found["disabled"]:
        raise AuthError(f"user #{found['id']} ({body.name}) is disabled")
    cur = await conn.execute(INSERT_GRANT_SQL, {**new.row, "user_id": found["id"]})
    row = await cur.fetchone()
    assert row is not None
    record = await fetch_one(conn, TOKENS, who, row["id"])
    return TokenCreated.model_validate({**record, "token": new.token})


@router.delete("/{token_id}", status_code=204, response_class=Response, summary="吊销令牌 / revoke")
async def revoke_token(conn: ConnDep, who: AdminDep, token_id: Id32) -> None:
    """Revoke a token now (404 if there is no such unrevoked token)."""
    cur = await conn.execute(REVOKE_GRANT_SQL, {"id": token_id})
    if await cur.fetchone() is None:
        raise HTTPException(404, f"no unrevoked token {token_id}")


@me_router.get("/me", response_model=CallerPublic, summary="当前身份 / who am I")
async def get_me(who: ReaderDep) -> CallerPublic:
    """The calling token, its user, and their role and scope, so a client can tell what it
    will see."""
    return CallerPublic(
        token_id=who.token_id,
        name=who.name,
        role=who.role,
        region_prefix=who.region_prefix,
        enterprise=who.enterprise,
        site_id=who.site_id,
        user_id=who.user_id,
        user_name=who.user_name,
    )


@user_tokens_router.post(
    "/{user_id}/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="为用户发放令牌 / issue a token to a user",
)
async def create_user_token(
    conn: ConnDep, who: AdminDep, user_id: Id32, body: UserTokenCreate, request: Request
) -> TokenCreated:
    """Issue a token (shown once) with the user's role and scope; 404 without such an enabled
    user."""
    new = grant_for_user(
        user_id=user_id, name=body.name, expires_days=body.expires_days, now=datetime.now(UTC)
    )
    stored = await (await conn.execute(INSERT_GRANT_SQL, new.row)).fetchone()
    if stored is None:
        raise HTTPException(404, f"no enabled user {user_id}")
    await audit(
        conn,
        actor=who.actor,
        action="token.create",
        subject="user",
        subject_id=user_id,
        detail={"token_id": int(stored["id"]), "name": body.name},
        client_addr=client(request),
    )
    record = await fetch_one(conn, TOKENS, who, stored["id"])
    return TokenCreated.model_validate({**record, "token": new.token})
