"""Users (用户): the people tokens are issued to, created and disabled by admins.

A user has a name, phone, unit, and one role with its scope; their tokens carry that role and
scope, and disabling the user stops every one of their tokens at the next request. Supervisors
(regulators, inspectors) may read the users within their region: the region users whose scope
lies inside theirs and the enterprise users of sites they see, so that they can name a plan's
responsible inspector. The password is write-only (stored as a scrypt hash, for a later phone
sign-in); every change is an `audit_log` line. Tokens are issued to a user by
`POST /users/{id}/tokens` (api/routes/tokens.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, LiteralString

from fastapi import APIRouter, HTTPException, Request
from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from api.deps import BodyId32, ConnDep, Id32, client
from api.query import Filters, Page, Resource, fetch_page, fetch_row, paging, update_row
from api.security import AdminDep, SupervisorDep
from hazmon.auth import (
    INSERT_USER_SQL,
    MIN_PASSWORD_CHARS,
    PHONE_PATTERN,
    SET_USER_DISABLED_SQL,
    Principal,
    Role,
    hash_password,
    new_user,
)
from registry.alerts import audit

router = APIRouter(prefix="/users", tags=["users"])

USERS = Resource(
    name="user",
    columns="u.id, u.name, u.phone, u.unit, u.role, u.region_code, u.enterprise, u.site_id, "
    "u.password_hash IS NOT NULL AS has_password, u.disabled_at IS NOT NULL AS disabled, "
    "u.disabled_at, u.created_at, u.updated_at",
    source="users u",
    id_column="u.id",
    sortable={"id": "u.id", "name": "u.name", "role": "u.role"},
    default_sort="id",
    tenant=False,
)
_VISIBLE: LiteralString = (
    "(u.role IN ('regulator', 'inspector') AND u.region_code LIKE %(scope_region)s)"
    " OR (u.role = 'enterprise' AND EXISTS (SELECT 1 FROM sites s"
    " WHERE s.region_code LIKE %(scope_region)s"
    " AND (s.id = u.site_id OR (u.site_id IS NULL AND s.enterprise = u.enterprise))))"
)
"""The users a regulator or inspector may read: theirs is a region prefix `scope_region`."""
_PHONE = Field(default=None, pattern=PHONE_PATTERN, description="手机 / mobile number (unique)")
_PASSWORD = Field(
    default=None,
    min_length=MIN_PASSWORD_CHARS,
    max_length=200,
    description="密码（仅存散列）/ password, stored as a scrypt hash only",
)


def visible_users(who: Principal, filters: Filters) -> Filters:
    """`filters` limited to the users `who` may read (admins: all)."""
    if who.role == "admin":
        return filters
    if who.role in ("regulator", "inspector"):
        return filters.add(_VISIBLE, scope_region=who.region_prefix + "%")
    return filters.add("FALSE")


async def fetch_user(
    conn: AsyncConnection[dict[str, Any]], who: Principal, user_id: int
) -> dict[str, Any]:
    """The user `user_id` if `who` may read them, else 404."""
    filters = visible_users(who, Filters().add("u.id = %(user_id)s", user_id=user_id))
    row = await fetch_row(conn, USERS, who, filters)
    if row is None:
        raise HTTPException(404, f"no user {user_id}")
    return row


class UserUpdate(BaseModel):
    """Changes to a user; a role or scope never changes (create another user)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"\S")
    phone: str | None = _PHONE
    unit: str | None = Field(default=None, max_length=200, description="单位 / unit")
    password: str | None = _PASSWORD
    disabled: bool | None = Field(
        default=None, description="停用（其令牌即失效）/ disabled: every token stops working"
    )


class UserCreate(BaseModel):
    """A new user and their scope (region for regulators and inspectors; enterprise or site)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"\S", description="姓名 / name")
    phone: str | None = _PHONE
    unit: str = Field(default="", max_length=200, description="单位 / unit")
    role: Role
    region: str = Field(default="", pattern=r"^([0-9]{2}){0,3}$", description="区划 / region")
    enterprise: str = Field(default="", max_length=200)
    site_id: BodyId32 | None = None
    password: str | None = _PASSWORD


class UserPublic(BaseModel):
    """A user (never the password or its hash)."""

    id: int
    name: str
    phone: str | None
    unit: str
    role: Role
    region_code: str
    enterprise: str
    site_id: int | None
    has_password: bool
    disabled: bool
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UsersPublic(BaseModel):
    """A page of users."""

    data: list[UserPublic]
    count: int


@router.get("", response_model=UsersPublic, summary="用户列表 / list users")
async def list_users(
    conn: ConnDep,
    who: SupervisorDep,
    page: Annotated[Page, paging(USERS)],
    role: Role | None = None,
    disabled: bool | None = None,
) -> UsersPublic:
    """The users the caller may read (admins: all)."""
    filters = (
        Filters()
        .add("u.role = %(role)s", role=role)
        .add("(u.disabled_at IS NOT NULL) = %(disabled)s", disabled=disabled)
    )
    rows, count = await fetch_page(conn, USERS, who, page, visible_users(who, filters))
    return UsersPublic(data=[UserPublic.model_validate(r) for r in rows], count=count)


@router.get("/{user_id}", response_model=UserPublic, summary="用户 / one user")
async def get_user(conn: ConnDep, who: SupervisorDep, user_id: Id32) -> UserPublic:
    """One user, if the caller may read them."""
    return UserPublic.model_validate(await fetch_user(conn, who, user_id))


@router.post("", response_model=UserPublic, status_code=201, summary="新建用户 / create a user")
async def create_user(
    conn: ConnDep, who: AdminDep, body: UserCreate, request: Request
) -> UserPublic:
    """Create a user; the scope must fit the role (422), a phone is unique (409)."""
    row = new_user(
        name=body.name,
        role=body.role,
        region=body.region,
        enterprise=body.enterprise,
        site_id=body.site_id,
        phone=body.phone,
        unit=body.unit,
        password=body.password,
    )
    stored = await (await conn.execute(INSERT_USER_SQL, row)).fetchone()
    assert stored is not None
    user_id = int(stored["id"])
    detail = {k: v for k, v in row.items() if k != "password_hash"}
    await audit(
        conn,
        actor=who.actor,
        action="user.create",
        subject="user",
        subject_id=user_id,
        detail=detail,
        client_addr=client(request),
    )
    return UserPublic.model_validate(await fetch_user(conn, who, user_id))


@router.patch("/{user_id}", response_model=UserPublic, summary="修改或停用用户 / update, disable")
async def update_user(
    conn: ConnDep, who: AdminDep, user_id: Id32, body: UserUpdate, request: Request
) -> UserPublic:
    """Change a user's name, phone, unit or password, or disable (enable) them: a disabled
    user's tokens stop working at their next request."""
    await fetch_user(conn, who, user_id)
    if body.disabled and user_id == who.user_id:
        raise HTTPException(409, "an admin cannot disable themselves")
    changes = body.model_dump(exclude_unset=True)
    fields: dict[str, Any] = {
        k: changes[k].strip() if isinstance(changes[k], str) else changes[k]
        for k in ("name", "phone", "unit")
        if k in changes and (changes[k] is not None or k == "phone")
    }
    if body.password is not None:
        fields["password_hash"] = hash_password(body.password)
    if fields:
        await update_row(conn, "users", user_id, fields)
    if body.disabled is not None:
        await conn.execute(SET_USER_DISABLED_SQL, {"id": user_id, "disabled": body.disabled})
    detail = {k: v for k, v in changes.items() if k != "password"}
    detail["password_changed"] = "password" in changes
    await audit(
        conn,
        actor=who.actor,
        action="user.update",
        subject="user",
        subject_id=user_id,
        detail=detail,
        client_addr=client(request),
    )
    return UserPublic.model_validate(await fetch_user(conn, who, user_id))
