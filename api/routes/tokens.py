"""API tokens (令牌): created and revoked by admins; the token itself is shown once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import BodyId32, ConnDep, Id32
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging
from api.security import AdminDep, ReaderDep
from hazmon.auth import INSERT_GRANT_SQL, MAX_EXPIRES_DAYS, REVOKE_GRANT_SQL, Role, grant

router = APIRouter(prefix="/tokens", tags=["tokens"])
me_router = APIRouter(tags=["tokens"])

TOKENS = Resource(
    name="token",
    columns="t.id, t.name, t.role, t.region_code, t.enterprise, t.site_id, t.expires_at, "
    "t.revoked_at, t.created_at, t.last_used_at",
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


class TokensPublic(BaseModel):
    """A page of tokens."""

    data: list[TokenPublic]
    count: int


class CallerPublic(BaseModel):
    """Who the caller is: the token's role and scope."""

    token_id: int
    name: str
    role: Role
    region_prefix: str
    enterprise: str
    site_id: int | None


class TokenCreated(TokenPublic):
    """A new token: `token` is shown this once."""

    token: str


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
    """Create a token; its scope must fit its role (422 otherwise)."""
    new = grant(
        name=body.name,
        role=body.role,
        expires_days=body.expires_days,
        now=datetime.now(UTC),
        region=body.region,
        enterprise=body.enterprise,
        site_id=body.site_id,
    )
    cur = await conn.execute(INSERT_GRANT_SQL, new.row)
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
    """The calling token's role and scope, so a client can tell what it will see."""
    return CallerPublic(
        token_id=who.token_id,
        name=who.name,
        role=who.role,
        region_prefix=who.region_prefix,
        enterprise=who.enterprise,
        site_id=who.site_id,
    )
