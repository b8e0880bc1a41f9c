"""Statistics (统计): what a supervision station's wall display shows, within the caller's scope."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from psycopg import AsyncConnection
from pydantic import AwareDatetime, BaseModel

from api.deps import ConnDep
from api.query import Filters, Resource, fetch_groups, fetch_row, scope_condition
from api.resources import ALERTS, HAZARDS, OVERDUE
from api.security import ReaderDep
from hazmon.auth import Principal
from registry.statistics import GroupBy, period_statistics

router = APIRouter(prefix="/statistics", tags=["statistics"])

_REGISTRY = Resource(
    name="registry statistics",
    columns="count(DISTINCT s.id) AS sites, count(DISTINCT w.id) AS works, "
    "count(DISTINCT d.id) AS devices, "
    "count(DISTINCT d.id) FILTER (WHERE ds.online) AS devices_online",
    source="sites s LEFT JOIN works w ON w.site_id = s.id LEFT JOIN devices d ON d.work_id = w.id "
    "LEFT JOIN device_status ds ON ds.device_id = d.id",
    id_column="s.id",
    sortable={},
    default_sort="",
)
_ALERTS = Resource(
    name="alert statistics",
    columns="count(*) FILTER (WHERE a.grade = 1) AS blue, "
    "count(*) FILTER (WHERE a.grade = 2) AS yellow, "
    "count(*) FILTER (WHERE a.grade = 3) AS orange, "
    "count(*) FILTER (WHERE a.grade = 4) AS red, "
    "count(*) FILTER (WHERE a.state = 'open') AS unacknowledged",
    source=ALERTS.source,
    id_column=ALERTS.id_column,
    sortable={},
    default_sort="",
)
_HAZARDS = Resource(
    name="hazard statistics",
    columns="count(*) FILTER (WHERE h.state <> 'closed') AS open, "
    "count(*) FILTER (WHERE h.state <> 'closed' AND h.level = 'major') AS major_open, "
    f"count(*) FILTER (WHERE {OVERDUE}) AS overdue, "
    "count(*) FILTER (WHERE h.state <> 'closed' AND h.listed_supervision) AS listed_supervision, "
    "count(*) FILTER (WHERE h.state = 'closed') AS closed",
    source=HAZARDS.source,
    id_column=HAZARDS.id_column,
    sortable={},
    default_sort="",
)


# One row per child division of a region prefix: each site's counts come from lateral
# subqueries (so alerts and hazards do not multiply each other), summed per division.
_DIVISION = "rpad(left(s.region_code, %(digits)s), 6, '0')"
_BY_REGION = Resource(
    name="statistics by region",
    columns=f"{_DIVISION} AS region_code, r.name, count(*) AS sites, "
    "sum(dv.devices) AS devices, sum(dv.online) AS devices_online, "
    "sum(al.red) AS alerts_red, sum(al.orange) AS alerts_orange, "
    "sum(al.yellow) AS alerts_yellow, sum(al.blue) AS alerts_blue, "
    "sum(hz.open) AS hazards_open, sum(hz.major_open) AS hazards_major_open, "
    "sum(hz.overdue) AS hazards_overdue",
    source="sites s "
    "CROSS JOIN LATERAL (SELECT count(*) AS devices, count(*) FILTER (WHERE ds.online) AS online "
    "  FROM devices d LEFT JOIN device_status ds ON ds.device_id = d.id "
    "  WHERE d.site_id = s.id) dv "
    "CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE a.grade = 4) AS red, "
    "  count(*) FILTER (WHERE a.grade = 3) AS orange, "
    "  count(*) FILTER (WHERE a.grade = 2) AS yellow, "
    "  count(*) FILTER (WHERE a.grade = 1) AS blue "
    "  FROM alerts a JOIN series se ON se.id = a.series_id "
    "  JOIN devices d ON d.id = se.device_id "
    "  WHERE d.site_id = s.id AND a.state <> 'resolved') al "
    "CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE h.state <> 'closed') AS open, "
    "  count(*) FILTER (WHERE h.state <> 'closed' AND h.level = 'major') AS major_open, "
    f"  count(*) FILTER (WHERE {OVERDUE}) AS overdue FROM hazards h WHERE h.site_id = s.id) hz "
    f"LEFT JOIN regions r ON r.code = {_DIVISION}",
    id_column="s.id",
    sortable={},
    default_sort="",
    group_by="1, r.name",
)


class ActiveAlerts(BaseModel):
    """Open or acknowledged alerts by grade."""

    blue: int
    yellow: int
    orange: int
    red: int
    unacknowledged: int


class HazardCounts(BaseModel):
    """Hazards by where they stand."""

    open: int
    major_open: int
    overdue: int
    listed_supervision: int
    closed: int


class StatisticsPublic(BaseModel):
    """Counts over the sites the caller may see (and the region asked for)."""

    sites: int
    works: int
    devices: int
    devices_online: int
    active_alerts: ActiveAlerts
    hazards: HazardCounts


async def _counts(
    conn: AsyncConnection[dict[str, Any]], resource: Resource, who: Principal, filters: Filters
) -> dict[str, Any]:
    row = await fetch_row(conn, resource, who, filters)
    assert row is not None  # an aggregate always yields one row
    return row


@router.get("", response_model=StatisticsPublic, summary="统计概览 / statistics")
async def get_statistics(
    conn: ConnDep,
    who: ReaderDep,
    region: Annotated[
        str | None, Query(pattern=r"^[0-9]{2,6}$", description="区划代码前缀 / region prefix")
    ] = None,
) -> StatisticsPublic:
    """Sites, works, devices online, active alerts by grade and hazards, in scope."""

    def in_region() -> Filters:
        return Filters().add("s.region_code LIKE %(region)s || '%%'", region=region)

    registry = await _counts(conn, _REGISTRY, who, in_region())
    alerts = await _counts(conn, _ALERTS, who, in_region().add("a.state <> 'resolved'"))
    hazards = await _counts(conn, _HAZARDS, who, in_region())
    return StatisticsPublic(
        **registry,
        active_alerts=ActiveAlerts.model_validate(alerts),
        hazards=HazardCounts.model_validate(hazards),
    )


class RegionCounts(BaseModel):
    """Counts of one division (province, city or county) over the sites the caller may see."""

    region_code: str
    name: str | None
    sites: int
    devices: int
    devices_online: int
    alerts_red: int
    alerts_orange: int
    alerts_yellow: int
    alerts_blue: int
    hazards_open: int
    hazards_major_open: int
    hazards_overdue: int


class RegionStatisticsPublic(BaseModel):
    """The child divisions of `parent` that have visible sites, with their counts."""

    parent: str
    data: list[RegionCounts]


@router.get(
    "/regions",
    response_model=RegionStatisticsPublic,
    summary="分地区统计 / statistics by province, city or county",
)
async def get_statistics_by_region(
    conn: ConnDep,
    who: ReaderDep,
    parent: Annotated[
        str,
        Query(
            pattern=r"^([0-9]{2}){0,2}$",
            description="上级区划前缀 / parent prefix: empty for provinces, 2 digits for its "
            "cities, 4 for a city's counties",
        ),
    ] = "",
) -> RegionStatisticsPublic:
    """One row per province (or per city of a province, per county of a city): sites,
    devices online, active alerts by grade and open, major and overdue hazards."""
    rows = await fetch_groups(
        conn,
        _BY_REGION,
        who,
        Filters().add("s.region_code LIKE %(parent)s || '%%'", parent=parent),
        digits=len(parent) + 2,
    )
    return RegionStatisticsPublic(
        parent=parent, data=[RegionCounts.model_validate(r) for r in rows]
    )


class HazardTallyPublic(BaseModel):
    """Hazards of a group in the period: opened, closed, marked overdue, closure rate (of those
    opened, the share closed out by the period's end), hours from finding to close-out."""

    opened: int
    closed: int
    overdue: int
    closure_rate: float | None
    mean_close_h: float | None
    p90_close_h: float | None


class GroupStatisticsPublic(BaseModel):
    """One site's or division's figures for the period."""

    key: str
    name: str
    hazards: HazardTallyPublic
    hazards_by_kind: dict[str, HazardTallyPublic]
    hazards_by_level: dict[str, HazardTallyPublic]
    alerts_by_grade: dict[str, int]
    alerts_by_kind: dict[str, int]
    missed_inspections: int


class PeriodStatisticsPublic(BaseModel):
    """The loop's figures over a period, per site or division, and their total."""

    start: datetime
    end: datetime
    by: GroupBy
    region: str
    groups: list[GroupStatisticsPublic]
    total: GroupStatisticsPublic


MAX_PERIOD = timedelta(days=3660)


@router.get(
    "/period",
    response_model=PeriodStatisticsPublic,
    summary="期间统计（通报、考核）/ the hazard loop over a period, per site or division",
)
async def get_period_statistics(
    conn: ConnDep,
    who: ReaderDep,
    start: Annotated[AwareDatetime, Query(description="期间起（含）/ from")],
    end: Annotated[AwareDatetime, Query(description="期间止（不含）/ until")],
    by: Annotated[
        GroupBy, Query(description="按工地、县、市、省分组 / per site, county, city or province")
    ] = "site",
    region: Annotated[
        str, Query(pattern=r"^([0-9]{2}){0,3}$", description="区划前缀 / region prefix")
    ] = "",
) -> PeriodStatisticsPublic:
    """Hazards opened, closed and overdue, the closure rate, mean and 90th-percentile time to
    close (by hazard kind and level), alerts by grade and kind, and missed inspections, for each
    site or division the caller sees with activity in `[start, end)`."""
    if end <= start or end - start > MAX_PERIOD:
        raise HTTPException(422, "the period must end after it starts and last at most 3660 days")
    result = await period_statistics(
        conn, start=start, end=end, by=by, region=region, scope=scope_condition(who)
    )
    return PeriodStatisticsPublic.model_validate(asdict(result))
