"""Threshold overrides (阈值): a work's or a series' own values in place of the default profile.

The default profiles are data files (rules/profiles/, with the standard behind each number);
an override row replaces parts of one rule for one work (all its series of that metric) or for
one series. Regulators and admins edit them, within their scope.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import ConnDep, Id32
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging, update_row
from api.routes.series import SERIES
from api.routes.works import WORKS
from api.security import ReaderDep, ThresholdEditorDep
from hazmon.catalogue import CatalogueError, hazard_kind

router = APIRouter(prefix="/thresholds", tags=["thresholds"])

THRESHOLDS = Resource(
    name="threshold",
    columns="t.id, t.work_id, t.series_id, w.id AS of_work_id, s.id AS site_id, t.metric, "
    "t.rule, t.params, t.source, t.updated_at",
    source="thresholds t LEFT JOIN series se ON se.id = t.series_id "
    "LEFT JOIN devices d ON d.id = se.device_id "
    "JOIN works w ON w.id = coalesce(t.work_id, d.work_id) JOIN sites s ON s.id = w.site_id",
    id_column="t.id",
    sortable={"id": "t.id", "metric": "t.metric", "rule": "t.rule"},
    default_sort="id",
)
RULE_ID = r"^[a-z0-9_]{1,64}$"


class ThresholdUpdate(BaseModel):
    """New override values (replacing the old ones) or a new source."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] | None = Field(
        default=None, description="覆盖值 / overridden parts of the rule (levels, hysteresis, ...)"
    )
    source: str | None = Field(
        default=None, max_length=500, description="依据 / where it comes from"
    )


class ThresholdCreate(BaseModel):
    """An override for one rule of a work (all its series of the metric) or of one series."""

    model_config = ConfigDict(extra="forbid")

    work_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    series_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    metric: str = Field(min_length=1, max_length=64)
    rule: str = Field(pattern=RULE_ID, description="规则编号 / rule id in the profile")
    params: dict[str, Any]
    source: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _one_target(self) -> ThresholdCreate:
        if (self.work_id is None) == (self.series_id is None):
            raise ValueError("give exactly one of work_id and series_id")
        return self


class ThresholdPublic(BaseModel):
    """An override row; `of_work_id` is the work it applies to, directly or via its series."""

    id: int
    work_id: int | None
    series_id: int | None
    of_work_id: int
    site_id: int
    metric: str
    rule: str
    params: dict[str, Any]
    source: str
    updated_at: datetime


class ThresholdsPublic(BaseModel):
    """A page of overrides."""

    data: list[ThresholdPublic]
    count: int


@router.get("", response_model=ThresholdsPublic, summary="阈值覆盖列表 / list overrides")
async def list_thresholds(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(THRESHOLDS)],
    work_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    series_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    metric: Annotated[str | None, Query(max_length=64)] = None,
) -> ThresholdsPublic:
    """Overrides on the works the caller may see (a work's include its series' overrides)."""
    filters = (
        Filters()
        .add("w.id = %(work_id)s", work_id=work_id)
        .add("t.series_id = %(series_id)s", series_id=series_id)
        .add("t.metric = %(metric)s", metric=metric)
    )
    rows, count = await fetch_page(conn, THRESHOLDS, who, page, filters)
    return ThresholdsPublic(data=[ThresholdPublic.model_validate(r) for r in rows], count=count)


@router.get("/{threshold_id}", response_model=ThresholdPublic, summary="阈值覆盖 / one override")
async def get_threshold(conn: ConnDep, who: ReaderDep, threshold_id: Id32) -> ThresholdPublic:
    """One override, if the caller may see its work."""
    return ThresholdPublic.model_validate(await fetch_one(conn, THRESHOLDS, who, threshold_id))


@router.post(
    "", response_model=ThresholdPublic, status_code=201, summary="新增阈值覆盖 / add an override"
)
async def create_threshold(
    conn: ConnDep, who: ThresholdEditorDep, body: ThresholdCreate
) -> ThresholdPublic:
    """Override a rule for a work or a series the caller may see; one per (target, rule)."""
    if body.series_id is not None:
        series = await fetch_one(conn, SERIES, who, body.series_id)
        if series["metric"] != body.metric:
            raise CatalogueError(f"series {body.series_id} measures {series['metric']!r}")
    else:
        work = await fetch_one(conn, WORKS, who, body.work_id)
        kind = hazard_kind(work["hazard_kind"])
        if body.metric not in kind.metrics:
            raise CatalogueError(f"{body.metric!r} is not a {kind.code} metric")
    cur = await conn.execute(
        """INSERT INTO thresholds (work_id, series_id, metric, rule, params, source)
           VALUES (%(work_id)s, %(series_id)s, %(metric)s, %(rule)s, %(params)s, %(source)s)
           RETURNING id""",
        {**body.model_dump(), "params": Jsonb(body.params)},
    )
    row = await cur.fetchone()
    assert row is not None
    return ThresholdPublic.model_validate(await fetch_one(conn, THRESHOLDS, who, row["id"]))


@router.patch("/{threshold_id}", response_model=ThresholdPublic, summary="修改阈值覆盖 / update")
async def update_threshold(
    conn: ConnDep, who: ThresholdEditorDep, threshold_id: Id32, body: ThresholdUpdate
) -> ThresholdPublic:
    """Replace an override's values or source."""
    await fetch_one(conn, THRESHOLDS, who, threshold_id, lock="t")
    fields: dict[str, Any] = body.model_dump(exclude_none=True)
    if body.params is not None:
        fields["params"] = Jsonb(body.params)
    await update_row(conn, "thresholds", threshold_id, fields)
    return ThresholdPublic.model_validate(await fetch_one(conn, THRESHOLDS, who, threshold_id))


@router.delete(
    "/{threshold_id}", status_code=204, response_class=Response, summary="删除阈值覆盖 / remove"
)
async def delete_threshold(conn: ConnDep, who: ThresholdEditorDep, threshold_id: Id32) -> None:
    """Remove an override: the default profile applies again."""
    await fetch_one(conn, THRESHOLDS, who, threshold_id, lock="t")
    await conn.execute("DELETE FROM thresholds WHERE id = %(id)s", {"id": threshold_id})
