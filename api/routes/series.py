"""Series (device × metric) and their readings, raw or as `time_bucket` aggregates.

A chart asks for a range and a point budget (`max_points`); if the range holds no more raw
readings than that they come back as they are, otherwise they are averaged into equal buckets
(with min, max and count per bucket) so that a year of 1 Hz data is still a chart-sized answer.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel

from api.deps import ConnDep, Id32, QueryId32
from api.query import Filters, Page, fetch_one, fetch_page, paging
from api.resources import SERIES
from api.security import ReaderDep
from hazmon.catalogue import catalogue

router = APIRouter(prefix="/series", tags=["series"])

MAX_POINTS = 5000


class SeriesPublic(BaseModel):
    """A series: one metric of one device, with its unit from the catalogue."""

    id: int
    device_id: int
    device_code: str
    work_id: int
    hazard_kind: str
    site_id: int
    site_code: str
    metric: str
    unit: str
    sampling_period_s: float


class SeriesListPublic(BaseModel):
    """A page of series."""

    data: list[SeriesPublic]
    count: int


class ReadingPoint(BaseModel):
    """A reading, or the aggregate of the readings in one bucket starting at `time`."""

    time: datetime
    value: float
    min: float
    max: float
    count: int


class ReadingsPublic(BaseModel):
    """Readings of one series over [start, end); `bucket_s` is null for raw readings."""

    series_id: int
    metric: str
    unit: str
    start: datetime
    end: datetime
    bucket_s: float | None
    data: list[ReadingPoint]


def _series(row: dict[str, Any]) -> SeriesPublic:
    kind = catalogue().get(row["hazard_kind"])
    metric = kind.metrics.get(row["metric"]) if kind else None
    return SeriesPublic.model_validate({**row, "unit": metric.unit if metric else ""})


@router.get("", response_model=SeriesListPublic, summary="监测序列列表 / list series")
async def list_series(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(SERIES)],
    device_id: QueryId32 = None,
    site_id: QueryId32 = None,
    metric: Annotated[str | None, Query(max_length=64)] = None,
) -> SeriesListPublic:
    """Series on the sites the caller may see."""
    filters = (
        Filters()
        .add("se.device_id = %(device_id)s", device_id=device_id)
        .add("s.id = %(site_id)s", site_id=site_id)
        .add("se.metric = %(metric)s", metric=metric)
    )
    rows, count = await fetch_page(conn, SERIES, who, page, filters)
    return SeriesListPublic(data=[_series(r) for r in rows], count=count)


@router.get("/{series_id}", response_model=SeriesPublic, summary="监测序列 / one series")
async def get_series(conn: ConnDep, who: ReaderDep, series_id: Id32) -> SeriesPublic:
    """One series, if the caller may see its site."""
    return _series(await fetch_one(conn, SERIES, who, series_id))


@router.get(
    "/{series_id}/readings",
    response_model=ReadingsPublic,
    summary="监测数据（原始或聚合）/ readings, raw or aggregated to a point budget",
)
async def get_readings(
    conn: ConnDep,
    who: ReaderDep,
    series_id: Id32,
    start: Annotated[
        AwareDatetime | None, Query(description="起 / from (default end - 1 day)")
    ] = None,
    end: Annotated[
        AwareDatetime | None, Query(description="止 / until, exclusive (default now)")
    ] = None,
    max_points: Annotated[
        int, Query(ge=2, le=MAX_POINTS, description="点数上限 / point budget")
    ] = 500,
) -> ReadingsPublic:
    """Readings in [start, end): raw if they fit `max_points`, else bucket averages."""
    series = _series(await fetch_one(conn, SERIES, who, series_id))
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=1)
    if start >= end:
        raise HTTPException(422, "start must be before end")
    params = {"id": series_id, "start": start, "end": end, "limit": max_points + 1}
    cur = await conn.execute(
        """SELECT time, value, value AS min, value AS max, 1 AS count FROM readings
           WHERE series_id = %(id)s AND time >= %(start)s AND time < %(end)s
           ORDER BY time LIMIT %(limit)s""",
        params,
    )
    rows = await cur.fetchall()
    bucket_s: float | None = None
    if len(rows) > max_points:
        # Buckets aligned on `start`, so ceil(span / max_points) wide makes at most max_points.
        bucket_s = float(max(1, math.ceil((end - start).total_seconds() / max_points)))
        cur = await conn.execute(
            """SELECT time_bucket(make_interval(secs => %(bucket_s)s), time, origin => %(start)s) AS time,
                      avg(value) AS value, min(value) AS min, max(value) AS max,
                      count(*) AS count
               FROM readings
               WHERE series_id = %(id)s AND time >= %(start)s AND time < %(end)s
               GROUP BY 1 ORDER BY 1""",
            {**params, "bucket_s": bucket_s},
        )
        rows = await cur.fetchall()
    return ReadingsPublic(
        series_id=series.id,
        metric=series.metric,
        unit=series.unit,
        start=start,
        end=end,
        bucket_s=bucket_s,
        data=[ReadingPoint.model_validate(r) for r in rows],
    )
