"""Webhook subscriptions (推送订阅): where the notifier posts alerts, for admins only.

A subscription receives the alerts of the sites whose region code starts with its
`region_code` (empty: all) at or above `min_grade`. Its signing secret is write-only: the API
says whether one is set, never what it is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from api.deps import ConnDep, Id32
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging, update_row
from api.security import AdminDep
from hazmon.vocabulary import WebhookKind

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

WEBHOOKS = Resource(
    name="webhook subscription",
    columns="w.id, w.name, w.kind, w.url, w.secret IS NOT NULL AS has_secret, w.region_code, "
    "w.min_grade, w.enabled, w.created_at",
    source="webhook_subscriptions w",
    id_column="w.id",
    sortable={"id": "w.id", "name": "w.name"},
    default_sort="id",
    tenant=False,
)


class WebhookUpdate(BaseModel):
    """Changes to a subscription; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: HttpUrl | None = None
    secret: str | None = Field(default=None, min_length=1, max_length=500)
    region_code: str | None = Field(default=None, pattern=r"^([0-9]{2}){0,3}$")
    min_grade: int | None = Field(default=None, ge=1, le=4)
    enabled: bool | None = None


class WebhookCreate(WebhookUpdate):
    """A new subscription."""

    name: str = Field(min_length=1, max_length=200)
    kind: WebhookKind
    url: HttpUrl
    region_code: str = Field(
        default="", pattern=r"^([0-9]{2}){0,3}$", description="区划前缀 / region prefix"
    )
    min_grade: int = Field(default=2, ge=1, le=4, description="最低等级 / lowest grade sent")
    enabled: bool = True


class WebhookPublic(BaseModel):
    """A subscription (without its secret)."""

    id: int
    name: str
    kind: WebhookKind
    url: str
    has_secret: bool
    region_code: str
    min_grade: int
    enabled: bool
    created_at: datetime


class WebhooksPublic(BaseModel):
    """A page of subscriptions."""

    data: list[WebhookPublic]
    count: int


def _columns(body: WebhookUpdate) -> dict[str, Any]:
    fields = body.model_dump(exclude_none=True)
    if "url" in fields:
        fields["url"] = str(fields["url"])
    return fields


@router.get("", response_model=WebhooksPublic, summary="推送订阅列表 / list subscriptions")
async def list_webhooks(
    conn: ConnDep,
    who: AdminDep,
    page: Annotated[Page, paging(WEBHOOKS)],
    kind: WebhookKind | None = None,
    enabled: Annotated[bool | None, Query()] = None,
) -> WebhooksPublic:
    """All subscriptions, by kind or enabled state."""
    filters = Filters().add("w.kind = %(kind)s", kind=kind).add("w.enabled = %(en)s", en=enabled)
    rows, count = await fetch_page(conn, WEBHOOKS, who, page, filters)
    return WebhooksPublic(data=[WebhookPublic.model_validate(r) for r in rows], count=count)


@router.get("/{webhook_id}", response_model=WebhookPublic, summary="推送订阅 / one subscription")
async def get_webhook(conn: ConnDep, who: AdminDep, webhook_id: Id32) -> WebhookPublic:
    """One subscription."""
    return WebhookPublic.model_validate(await fetch_one(conn, WEBHOOKS, who, webhook_id))


@router.post("", response_model=WebhookPublic, status_code=201, summary="新增推送订阅 / subscribe")
async def create_webhook(conn: ConnDep, who: AdminDep, body: WebhookCreate) -> WebhookPublic:
    """Add a subscription."""
    cur = await conn.execute(
        """INSERT INTO webhook_subscriptions (name, kind, url, secret, region_code, min_grade,
                                              enabled)
           VALUES (%(name)s, %(kind)s, %(url)s, %(secret)s, %(region_code)s, %(min_grade)s,
                   %(enabled)s)
           RETURNING id""",
        {"secret": None, **_columns(body)},
    )
    row = await cur.fetchone()
    assert row is not None
    return WebhookPublic.model_validate(await fetch_one(conn, WEBHOOKS, who, row["id"]))


@router.patch("/{webhook_id}", response_model=WebhookPublic, summary="修改推送订阅 / update")
async def update_webhook(
    conn: ConnDep, who: AdminDep, webhook_id: Id32, body: WebhookUpdate
) -> WebhookPublic:
    """Change a subscription (a new secret replaces the old one)."""
    await fetch_one(conn, WEBHOOKS, who, webhook_id, lock="w")
    await update_row(conn, "webhook_subscriptions", webhook_id, _columns(body), touch=False)
    return WebhookPublic.model_validate(await fetch_one(conn, WEBHOOKS, who, webhook_id))


@router.delete(
    "/{webhook_id}", status_code=204, response_class=Response, summary="删除推送订阅 / remove"
)
async def delete_webhook(conn: ConnDep, who: AdminDep, webhook_id: Id32) -> None:
    """Remove a subscription and its undelivered notifications."""
    await fetch_one(conn, WEBHOOKS, who, webhook_id, lock="w")
    await conn.execute("DELETE FROM webhook_subscriptions WHERE id = %(id)s", {"id": webhook_id})
