"""Thresholds (阈值): the effective values of every rule, and the overrides that change them.

The default profiles are data files (rules/profiles/, with the standard behind each number);
an override row replaces parts of one rule for one work (all its series of that metric) or for
one series. Regulators and admins edit overrides within their scope. Every write is checked by
resolving the work's rules with the engine's own resolution (`rules.resolve_series`), so an
override the engine would refuse (ingest would isolate the work) is refused here with 422.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator

import rules
from api.deps import BodyId32, BoundedJson, ConnDep, Id32, QueryId32
from api.query import MAX_LIMIT, Filters, Page, Resource, fetch_one, fetch_page, paging, update_row
from api.resources import SERIES, WORKS
from api.security import ReaderDep, ThresholdEditorDep
from hazmon.auth import Principal
from hazmon.catalogue import CatalogueError, catalogue, hazard_kind

router = APIRouter(prefix="/thresholds", tags=["thresholds"])
effective_router = APIRouter(prefix="/works", tags=["thresholds"])

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

    params: BoundedJson | None = Field(
        default=None, description="覆盖值 / overridden parts of the rule (levels, hysteresis, ...)"
    )
    source: str | None = Field(
        default=None, max_length=500, description="依据 / where it comes from"
    )


class ThresholdCreate(BaseModel):
    """An override for one rule of a work (all its series of the metric) or of one series."""

    model_config = ConfigDict(extra="forbid")

    work_id: BodyId32 | None = None
    series_id: BodyId32 | None = None
    metric: str = Field(min_length=1, max_length=64)
    rule: str = Field(pattern=RULE_ID, description="规则编号 / rule id in the profile")
    params: BoundedJson
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


class LevelPublic(BaseModel):
    """One graded level of a rule as it applies now."""

    grade: int
    grade_name: str
    value: float
    label_zh: str
    label_en: str
    source: str


class RulePublic(BaseModel):
    """A rule resolved for one series: default profile, design values, then overrides."""

    rule: str
    kind: str
    direction: int
    levels: list[LevelPublic]
    hysteresis: float
    debounce: int
    resolve_after: int
    overridden: bool


class SeriesRulesPublic(BaseModel):
    """The effective rules of one series."""

    series_id: int
    device_code: str
    metric: str
    rules: list[RulePublic]


class WorkThresholdsPublic(BaseModel):
    """Effective thresholds of every series of a work, and the overrides behind them."""

    work_id: int
    hazard_kind: str
    series: list[SeriesRulesPublic]
    overrides: list[ThresholdPublic]
    notes: list[str]


def _profiles() -> Mapping[str, rules.Profile]:
    """The shipped default profiles, loaded (and checked) on first use."""
    return rules.shipped_profiles()


async def _resolve(
    conn: AsyncConnection[dict[str, Any]], who: Principal, work_id: int
) -> WorkThresholdsPublic:
    """Resolve the rules of a work's series as the engine does; ProfileError if they do not."""
    work = await fetch_one(conn, WORKS, who, work_id)
    everything = Page(MAX_LIMIT, 0, "id")
    series, _ = await fetch_page(
        conn, SERIES, who, everything, Filters().add("d.work_id = %(w)s", w=work_id)
    )
    overrides, _ = await fetch_page(
        conn, THRESHOLDS, who, everything, Filters().add("w.id = %(w)s", w=work_id)
    )
    infos = [
        rules.SeriesInfo(
            series_id=row["id"],
            device_id=row["device_id"],
            work_id=work_id,
            site_code=row["site_code"],
            device_code=row["device_code"],
            hazard_kind=work["hazard_kind"],
            metric=row["metric"],
            work_params=work["params"],
            sampling_period_s=row["sampling_period_s"],
        )
        for row in series
    ]
    rows = [
        rules.Override(o["rule"], o["metric"], o["params"], o["work_id"], o["series_id"])
        for o in overrides
    ]
    resolution = rules.resolve_series(infos, _profiles(), catalogue(), rows)
    if work_id in resolution.isolated:
        raise rules.ProfileError(f"work {work_id}", resolution.isolated[work_id])
    touched = {(o["rule"], o["work_id"], o["series_id"]) for o in overrides}

    def public(info: rules.SeriesInfo, rule: rules.ResolvedRule) -> RulePublic:
        levels = [
            LevelPublic(
                grade=grade.value,
                grade_name=grade.name.lower(),
                value=value,
                label_zh=rule.labels[grade - 1][0],
                label_en=rule.labels[grade - 1][1],
                source=rule.sources[grade - 1] if len(rule.sources) >= grade else "",
            )
            for grade, value in zip(list(rules.Grade)[1:], rule.thresholds, strict=True)
            if not math.isnan(value)
        ]
        overridden = bool(touched & {(rule.rule, work_id, None), (rule.rule, None, info.series_id)})
        return RulePublic(
            rule=rule.rule,
            kind=rule.kind,
            direction=rule.direction,
            levels=levels,
            hysteresis=rule.hysteresis,
            debounce=rule.debounce,
            resolve_after=rule.resolve_after,
            overridden=overridden,
        )

    return WorkThresholdsPublic(
        work_id=work_id,
        hazard_kind=work["hazard_kind"],
        series=[
            SeriesRulesPublic(
                series_id=info.series_id,
                device_code=info.device_code,
                metric=info.metric,
                rules=[public(info, r) for r in resolution.rules.get(info.series_id, [])],
            )
            for info in infos
        ],
        overrides=[ThresholdPublic.model_validate(o) for o in overrides],
        notes=resolution.notes,
    )


@router.get("", response_model=ThresholdsPublic, summary="阈值覆盖列表 / list overrides")
async def list_thresholds(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(THRESHOLDS)],
    work_id: QueryId32 = None,
    series_id: QueryId32 = None,
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
        work = await fetch_one(conn, WORKS, who, series["work_id"])
    else:
        work = await fetch_one(conn, WORKS, who, body.work_id)
        if body.metric not in hazard_kind(work["hazard_kind"]).metrics:
            raise CatalogueError(f"{body.metric!r} is not a {work['hazard_kind']} metric")
    profile = _profiles().get(work["hazard_kind"])
    known = [r.rule for r in profile.rules_for(body.metric)] if profile else []
    if body.rule not in known:
        raise CatalogueError(
            f"no rule {body.rule!r} for {body.metric} (known: {', '.join(known) or 'none'})"
        )
    cur = await conn.execute(
        """INSERT INTO thresholds (work_id, series_id, metric, rule, params, source)
           VALUES (%(work_id)s, %(series_id)s, %(metric)s, %(rule)s, %(params)s, %(source)s)
           RETURNING id""",
        {**body.model_dump(), "params": Jsonb(body.params)},
    )
    row = await cur.fetchone()
    assert row is not None
    await _resolve(conn, who, work["id"])
    return ThresholdPublic.model_validate(await fetch_one(conn, THRESHOLDS, who, row["id"]))


@router.patch("/{threshold_id}", response_model=ThresholdPublic, summary="修改阈值覆盖 / update")
async def update_threshold(
    conn: ConnDep, who: ThresholdEditorDep, threshold_id: Id32, body: ThresholdUpdate
) -> ThresholdPublic:
    """Replace an override's values or source."""
    old = await fetch_one(conn, THRESHOLDS, who, threshold_id, lock="t")
    fields: dict[str, Any] = body.model_dump(exclude_none=True)
    if body.params is not None:
        fields["params"] = Jsonb(body.params)
    await update_row(conn, "thresholds", threshold_id, fields)
    await _resolve(conn, who, old["of_work_id"])
    return ThresholdPublic.model_validate(await fetch_one(conn, THRESHOLDS, who, threshold_id))


@router.delete(
    "/{threshold_id}", status_code=204, response_class=Response, summary="删除阈值覆盖 / remove"
)
async def delete_threshold(conn: ConnDep, who: ThresholdEditorDep, threshold_id: Id32) -> None:
    """Remove an override: the default profile applies again."""
    await fetch_one(conn, THRESHOLDS, who, threshold_id, lock="t")
    await conn.execute("DELETE FROM thresholds WHERE id = %(id)s", {"id": threshold_id})


@effective_router.get(
    "/{work_id}/thresholds",
    response_model=WorkThresholdsPublic,
    summary="有效阈值 / effective thresholds of a work's series",
)
async def get_effective_thresholds(
    conn: ConnDep, who: ReaderDep, work_id: Id32
) -> WorkThresholdsPublic:
    """Every rule of every series of a work as it applies now: default profile, resolved with
    the work's design values, then its overrides; each level with its source."""
    return await _resolve(conn, who, work_id)
