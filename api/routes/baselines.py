"""Baselines (基准值) of a series: the dated references cumulative rules measure change against.

A series' first reading is its initial baseline (the engine pins it); an engineer re-baselines a
series after a construction stage or a sensor replacement: readings from `valid_from` are then
measured against the new value, earlier ones against the baseline of their time. Every
re-baseline is a dated record and an audit line (`registry.alerts.rebaseline`), picked up by
ingest at its next registry refresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import ConnDep, Id32, client
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging
from api.resources import SERIES
from api.security import ReaderDep, ThresholdEditorDep
from registry import alerts

router = APIRouter(prefix="/series", tags=["series"])

BASELINES = Resource(
    name="baseline",
    columns="b.id, b.series_id, b.value, b.valid_from, b.reason, b.set_by, b.set_at",
    source="baselines b JOIN series se ON se.id = b.series_id "
    "JOIN devices d ON d.id = se.device_id JOIN sites s ON s.id = d.site_id",
    id_column="b.id",
    sortable={"valid_from": "b.valid_from", "id": "b.id"},
    default_sort="valid_from",
)


class BaselineCreate(BaseModel):
    """A re-baseline of a series."""

    model_config = ConfigDict(extra="forbid")

    value: float = Field(
        allow_inf_nan=False,
        ge=-alerts.MAX_BASELINE_MAGNITUDE,
        le=alerts.MAX_BASELINE_MAGNITUDE,
        description="基准值（指标单位）/ the baseline, in the metric's unit",
    )
    valid_from: AwareDatetime = Field(
        description="生效时间 / readings from this time are measured against it"
    )
    reason: str = Field(
        min_length=1, max_length=500, description="原因 / why (a construction stage, a new sensor)"
    )


class BaselinePublic(BaseModel):
    """One dated baseline."""

    id: int
    series_id: int
    value: float
    valid_from: datetime
    reason: str
    set_by: str
    set_at: datetime


class BaselinesPublic(BaseModel):
    """A page of a series' baselines, oldest first by default."""

    data: list[BaselinePublic]
    count: int


@router.get(
    "/{series_id}/baselines", response_model=BaselinesPublic, summary="基准值记录 / baselines"
)
async def list_baselines(
    conn: ConnDep, who: ReaderDep, series_id: Id32, page: Annotated[Page, paging(BASELINES)]
) -> BaselinesPublic:
    """Every baseline of a series, initial and re-baselined, with who set it and why."""
    await fetch_one(conn, SERIES, who, series_id)
    filters = Filters().add("b.series_id = %(series_id)s", series_id=series_id)
    rows, count = await fetch_page(conn, BASELINES, who, page, filters)
    return BaselinesPublic(data=[BaselinePublic.model_validate(r) for r in rows], count=count)


@router.post(
    "/{series_id}/baselines",
    response_model=BaselinePublic,
    status_code=201,
    summary="重设基准值 / re-baseline a series",
)
async def create_baseline(
    conn: ConnDep,
    request: Request,
    who: ThresholdEditorDep,
    series_id: Id32,
    body: BaselineCreate,
) -> BaselinePublic:
    """Re-baseline a series the caller may see: a dated record and an audit line."""
    await fetch_one(conn, SERIES, who, series_id)
    try:
        baseline_id = await alerts.rebaseline(
            conn,
            series_id,
            body.value,
            body.valid_from,
            body.reason,
            who.actor,
            client_addr=client(request),
        )
    except alerts.AlertError as exc:
        raise HTTPException(422, str(exc)) from None
    return BaselinePublic.model_validate(await fetch_one(conn, BASELINES, who, baseline_id))
