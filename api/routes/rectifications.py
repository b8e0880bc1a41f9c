"""Rectifications (整改措施清单): each round of a hazard's rectification, within the caller's scope.

A round opens when a hazard is assigned, carries the plan it was assigned with (measures,
responsible unit and person, funds, deadline, emergency plan), the report of the rectification
and the verification's outcome; a rejection closes it and opens the next. Written by the hazard
loop (`registry.HazardStore`), read here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel

from api import exports
from api.deps import ConnDep, Id64, QueryId32, QueryId64
from api.query import Filters, Page, fetch_one, fetch_page, paging
from api.resources import HAZARD_KINDS_PATTERN, RECTIFICATIONS, list_filters
from api.security import ReaderDep
from hazmon.vocabulary import HazardLevel, HazardSource, HazardState
from registry import lists

router = APIRouter(prefix="/rectifications", tags=["rectifications"])

Outcome = Literal["open", "accepted", "rejected"]


class RectificationPublic(BaseModel):
    """One round of a hazard's rectification."""

    id: int
    hazard_id: int
    round: int
    title: str
    level: HazardLevel
    hazard_state: HazardState
    source: HazardSource
    location: str
    site_id: int
    site_code: str
    site_name: str
    region_code: str
    work_id: int | None
    work_name: str | None
    hazard_kind: str | None
    measures: str
    responsible_unit: str
    responsible_person: str
    funds_yuan: float | None
    deadline: datetime
    emergency_plan: str
    assigned_by: str
    assigned_at: datetime
    reported_by: str | None
    reported_by_user: int | None
    reported_at: datetime | None
    report_note: str
    verification_due: datetime | None
    outcome: Outcome
    verified_by: str | None
    verified_by_user: int | None
    verified_at: datetime | None
    verification_note: str
    listed_supervision: bool
    overdue: bool


class RectificationsPublic(BaseModel):
    """A page of rectification rounds."""

    data: list[RectificationPublic]
    count: int


def rectification_filters(
    hazard_id: QueryId64 = None,
    region: Annotated[
        str | None, Query(pattern=r"^([0-9]{2}){1,3}$", description="区划前缀 / region prefix")
    ] = None,
    site_id: QueryId32 = None,
    kind: Annotated[
        str | None, Query(pattern=HAZARD_KINDS_PATTERN, description="危大工程类别 / hazard kind")
    ] = None,
    level: HazardLevel | None = None,
    state: Annotated[HazardState | None, Query(description="隐患状态 / the hazard's state")] = None,
    outcome: Outcome | None = None,
    start: Annotated[
        AwareDatetime | None, Query(description="下达时间起（含）/ assigned at or after")
    ] = None,
    end: Annotated[
        AwareDatetime | None, Query(description="下达时间止（不含）/ assigned before")
    ] = None,
) -> Filters:
    """The list's filters (the same as the hazard list's, the period on the assignment time)."""
    filters = list_filters(
        Filters(),
        region=region,
        site_id=site_id,
        kind=kind,
        level=level,
        start=start,
        end=end,
        time_column="r.assigned_at",
    )
    return (
        filters.add("r.hazard_id = %(hazard_id)s", hazard_id=hazard_id)
        .add("h.state = %(state)s", state=state)
        .add("coalesce(r.outcome, 'open') = %(outcome)s", outcome=outcome)
    )


FiltersDep = Annotated[Filters, Depends(rectification_filters)]


@router.get("", response_model=RectificationsPublic, summary="整改措施清单 / list rectifications")
async def list_rectifications(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(RECTIFICATIONS)],
    filters: FiltersDep,
) -> RectificationsPublic:
    """Rounds of rectification on the sites the caller may see (the 整改措施清单), filtered."""
    rows, count = await fetch_page(conn, RECTIFICATIONS, who, page, filters)
    return RectificationsPublic(
        data=[RectificationPublic.model_validate(r) for r in rows], count=count
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses=exports.RESPONSES,
    summary="导出整改措施清单 / the rectification list as CSV or XLSX",
)
async def export_rectifications(
    conn: ConnDep,
    who: ReaderDep,
    filters: Annotated[lists.ListFilters, Depends(exports.list_filters)],
    format: exports.FormatQuery = "xlsx",
) -> StreamingResponse:
    """The rectification-measures list (整改措施清单) of the caller's scope, one row per round,
    ordered by assignment; the period is of the assignment; at most 10 000 rows."""
    return await exports.export(conn, who, lists.RECTIFICATION_LIST, filters, format)


@router.get("/{rectification_id}", response_model=RectificationPublic, summary="整改 / one round")
async def get_rectification(
    conn: ConnDep, who: ReaderDep, rectification_id: Id64
) -> RectificationPublic:
    """One round of rectification, if the caller may see its hazard's site."""
    return RectificationPublic.model_validate(
        await fetch_one(conn, RECTIFICATIONS, who, rectification_id)
    )
