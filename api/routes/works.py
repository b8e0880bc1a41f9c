"""Works (危大工程): a site's major-hazard works, their kind, grade and design values.

A work's `params` are the design values its thresholds are derived from (a pit's safety grade
and design depth, a crane's rated load and moment, ...), checked against the catalogue and
resolved as the rule engine resolves them (`rules.check_work`) before they are written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, JsonValue

import rules
from api.deps import BodyId32, BoundedJson, ConnDep, Id32, QueryId32
from api.query import Filters, Page, fetch_one, fetch_page, paging, update_row
from api.resources import CODE, SITES, WORKS
from api.security import AdminDep, ReaderDep
from hazmon.catalogue import catalogue
from registry import inventory_store

router = APIRouter(prefix="/works", tags=["works"])

_KINDS: list[JsonValue] = [*sorted(catalogue())]


class WorkUpdate(BaseModel):
    """Changes to a work: its name or its design values (replaced as a whole)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    params: BoundedJson | None = Field(
        default=None, description="设计参数 / design values, per the catalogue of the hazard kind"
    )


class WorkCreate(BaseModel):
    """A new work on a site."""

    model_config = ConfigDict(extra="forbid")

    site_id: BodyId32
    code: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=200)
    hazard_kind: str = Field(
        max_length=64, json_schema_extra={"enum": _KINDS}, description="危大工程类别 / kind"
    )
    params: BoundedJson = Field(default_factory=dict, description="设计参数 / design values")


class WorkPublic(BaseModel):
    """A work."""

    id: int
    site_id: int
    site_code: str
    code: str
    name: str
    hazard_kind: str
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class WorksPublic(BaseModel):
    """A page of works."""

    data: list[WorkPublic]
    count: int


async def check_design_values(
    conn: AsyncConnection[dict[str, Any]], work_id: int | None, kind: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Refuse design values the rule engine could not use (422 naming the parameter).

    They are resolved exactly as ingest will resolve them, with the work's own threshold
    overrides, so that no write here can leave a work ingest cannot grade.
    """
    overrides: list[rules.Override] = []
    if work_id is not None:
        cur = await conn.execute(inventory_store.WORK_OVERRIDES, {"work_id": work_id})
        overrides = [
            rules.Override(r["rule"], r["metric"], r["params"], work_id)
            for r in await cur.fetchall()
        ]
    try:
        await run_in_threadpool(rules.check_work, kind, params, overrides)
    except rules.ProfileError as exc:
        loc: tuple[str, ...] = (
            ("body", "hazard_kind")
            if exc.where == "hazard_kind"
            else (("body", "params", exc.field) if exc.field else ("body", "params"))
        )
        raise RequestValidationError(
            [{"loc": loc, "msg": str(exc), "type": "value_error"}]
        ) from None
    return params


@router.get("", response_model=WorksPublic, summary="危大工程列表 / list works")
async def list_works(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(WORKS)],
    site_id: QueryId32 = None,
    hazard_kind: Annotated[str | None, Query(max_length=64)] = None,
) -> WorksPublic:
    """Works on the sites the caller may see, by site or hazard kind."""
    filters = (
        Filters()
        .add("w.site_id = %(site_id)s", site_id=site_id)
        .add("w.hazard_kind = %(hazard_kind)s", hazard_kind=hazard_kind)
    )
    rows, count = await fetch_page(conn, WORKS, who, page, filters)
    return WorksPublic(data=[WorkPublic.model_validate(r) for r in rows], count=count)


@router.get("/{work_id}", response_model=WorkPublic, summary="危大工程详情 / one work")
async def get_work(conn: ConnDep, who: ReaderDep, work_id: Id32) -> WorkPublic:
    """One work, if the caller may see its site."""
    return WorkPublic.model_validate(await fetch_one(conn, WORKS, who, work_id))


@router.post("", response_model=WorkPublic, status_code=201, summary="新增危大工程 / add a work")
async def create_work(conn: ConnDep, who: AdminDep, body: WorkCreate) -> WorkPublic:
    """Register a work on an existing site."""
    await fetch_one(conn, SITES, who, body.site_id)
    await check_design_values(conn, None, body.hazard_kind, body.params)
    cur = await conn.execute(
        inventory_store.INSERT_WORK, {**body.model_dump(), "params": Jsonb(body.params)}
    )
    row = await cur.fetchone()
    assert row is not None
    return WorkPublic.model_validate(await fetch_one(conn, WORKS, who, row["id"]))


@router.patch("/{work_id}", response_model=WorkPublic, summary="修改危大工程 / update a work")
async def update_work(conn: ConnDep, who: AdminDep, work_id: Id32, body: WorkUpdate) -> WorkPublic:
    """Rename a work or replace its design values (checked against its hazard kind)."""
    work = await fetch_one(conn, WORKS, who, work_id, lock="w")
    fields: dict[str, Any] = body.model_dump(exclude_none=True)
    if body.params is not None:
        checked = await check_design_values(conn, work_id, work["hazard_kind"], body.params)
        fields["params"] = Jsonb(checked)
    await update_row(conn, "works", work_id, fields)
    return WorkPublic.model_validate(await fetch_one(conn, WORKS, who, work_id))
