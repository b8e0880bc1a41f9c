"""Hazards (隐患): the registry's closed loop, each action a `hazard_events` row.

registered → assigned (responsible unit, person, deadline) → rectified → verified by someone
other than the rectifier (or rejected back to assigned) → closed (销号); major hazards may be
put under listed supervision (挂牌督办). The rules of the loop are `registry.lifecycle`, its writes
`registry.HazardStore`; these routes load the hazard within the caller's scope and apply one action.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from psycopg import AsyncConnection
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import BodyId32, BodyId64, ConnDep, Id64, QueryId32
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging
from api.resources import HAZARDS, SITES
from api.security import ReaderDep, RectifierDep, RegulatorDep, SupervisorDep
from hazmon.auth import Principal
from registry import (
    Change,
    Hazard,
    HazardLevel,
    HazardState,
    HazardStore,
    NewHazard,
    lifecycle,
)

router = APIRouter(prefix="/hazards", tags=["hazards"])

EVENTS = Resource(
    name="hazard event",
    columns="e.id, e.hazard_id, e.action, e.actor, e.note, e.data, e.at",
    source="hazard_events e JOIN hazards h ON h.id = e.hazard_id JOIN sites s ON s.id = h.site_id",
    id_column="e.id",
    sortable={"id": "e.id"},
    default_sort="id",
)
_NOTE = Field(default="", max_length=2000, description="说明 / note")


class HazardCreate(BaseModel):
    """A hazard found on a site (by an inspection, the enterprise's own check, or an alert)."""

    model_config = ConfigDict(extra="forbid")

    site_id: BodyId32
    work_id: BodyId32 | None = None
    alert_id: BodyId64 | None = None
    title: str = Field(min_length=1, max_length=200, description="隐患名称 / title")
    description: str = Field(default="", max_length=4000)
    level: HazardLevel = Field(description="一般 general / 重大 major")
    basis: str = Field(default="", max_length=500, description="判定依据 / basis (clause)")
    found_at: AwareDatetime | None = Field(default=None, description="发现时间 / default now")


class HazardNote(BaseModel):
    """An action's note."""

    model_config = ConfigDict(extra="forbid")

    note: str = _NOTE


class HazardAssign(HazardNote):
    """Assignment of the rectification (整改)."""

    responsible_unit: str = Field(min_length=1, max_length=200, description="责任单位")
    responsible_person: str = Field(min_length=1, max_length=100, description="责任人")
    deadline: AwareDatetime = Field(description="整改期限 / deadline")


class HazardSupervise(HazardNote):
    """Listing a major hazard for supervision (挂牌督办)."""

    authority: str = Field(min_length=1, max_length=200, description="督办单位 / authority")


class HazardPublic(BaseModel):
    """A hazard and where it stands in the loop."""

    id: int
    site_id: int
    site_code: str
    work_id: int | None
    alert_id: int | None
    title: str
    description: str
    level: HazardLevel
    state: HazardState
    basis: str
    found_by: str
    found_at: datetime
    responsible_unit: str | None
    responsible_person: str | None
    deadline: datetime | None
    overdue: bool | None
    listed_supervision: bool
    supervising_authority: str | None
    rectified_by: str | None
    verified_by: str | None
    closed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class HazardsPublic(BaseModel):
    """A page of hazards."""

    data: list[HazardPublic]
    count: int


class HazardEventPublic(BaseModel):
    """One entry of a hazard's audit trail."""

    id: int
    hazard_id: int
    action: str
    actor: str
    note: str
    data: dict[str, Any]
    at: datetime


class HazardEventsPublic(BaseModel):
    """A page of a hazard's audit trail, oldest first by default."""

    data: list[HazardEventPublic]
    count: int


async def _act(
    conn: AsyncConnection[dict[str, Any]],
    who: Principal,
    hazard_id: int,
    transition: Callable[[Hazard], Change],
    note: str,
) -> HazardPublic:
    row = await fetch_one(conn, HAZARDS, who, hazard_id, lock="h")
    hazard = Hazard(row["state"], row["level"], row["listed_supervision"], row["rectified_by"])
    await HazardStore(conn).apply(hazard_id, transition(hazard), who.actor, note)
    return HazardPublic.model_validate(await fetch_one(conn, HAZARDS, who, hazard_id))


@router.get("", response_model=HazardsPublic, summary="隐患清单 / list hazards")
async def list_hazards(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(HAZARDS)],
    site_id: QueryId32 = None,
    state: HazardState | None = None,
    level: HazardLevel | None = None,
    listed_supervision: bool | None = None,
    overdue: Annotated[bool | None, Query(description="已逾期 / past the deadline")] = None,
) -> HazardsPublic:
    """Hazards on the sites the caller may see."""
    filters = (
        Filters()
        .add("h.site_id = %(site_id)s", site_id=site_id)
        .add("h.state = %(state)s", state=state)
        .add("h.level = %(level)s", level=level)
        .add("h.listed_supervision = %(listed)s", listed=listed_supervision)
        .add(
            "coalesce(h.deadline < now() AND h.state IN ('assigned', 'rectified'), false)"
            " = %(overdue)s",
            overdue=overdue,
        )
    )
    rows, count = await fetch_page(conn, HAZARDS, who, page, filters)
    return HazardsPublic(data=[HazardPublic.model_validate(r) for r in rows], count=count)


@router.get("/{hazard_id}", response_model=HazardPublic, summary="隐患详情 / one hazard")
async def get_hazard(conn: ConnDep, who: ReaderDep, hazard_id: Id64) -> HazardPublic:
    """One hazard, if the caller may see its site."""
    return HazardPublic.model_validate(await fetch_one(conn, HAZARDS, who, hazard_id))


@router.get(
    "/{hazard_id}/events", response_model=HazardEventsPublic, summary="隐患处理记录 / audit trail"
)
async def list_hazard_events(
    conn: ConnDep, who: ReaderDep, hazard_id: Id64, page: Annotated[Page, paging(EVENTS)]
) -> HazardEventsPublic:
    """Every action on a hazard, who did it and when."""
    await fetch_one(conn, HAZARDS, who, hazard_id)
    filters = Filters().add("e.hazard_id = %(hazard_id)s", hazard_id=hazard_id)
    rows, count = await fetch_page(conn, EVENTS, who, page, filters)
    return HazardEventsPublic(data=[HazardEventPublic.model_validate(r) for r in rows], count=count)


@router.post("", response_model=HazardPublic, status_code=201, summary="登记隐患 / register")
async def create_hazard(conn: ConnDep, who: ReaderDep, body: HazardCreate) -> HazardPublic:
    """Register a hazard on a site the caller may see; its work and alert must be of that site."""
    await fetch_one(conn, SITES, who, body.site_id)
    cur = await conn.execute(
        """SELECT (%(work_id)s::int IS NULL OR EXISTS (
                       SELECT 1 FROM works WHERE id = %(work_id)s AND site_id = %(site_id)s))
                  AND (%(alert_id)s::bigint IS NULL OR EXISTS (
                       SELECT 1 FROM alerts a JOIN series se ON se.id = a.series_id
                       JOIN devices d ON d.id = se.device_id
                       WHERE a.id = %(alert_id)s AND d.site_id = %(site_id)s)) AS ok""",
        body.model_dump(include={"site_id", "work_id", "alert_id"}),
    )
    check = await cur.fetchone()
    if not (check and check["ok"]):
        raise lifecycle.HazardError("register", "the work or alert is not on this site")
    new = NewHazard(
        site_id=body.site_id,
        work_id=body.work_id,
        alert_id=body.alert_id,
        title=body.title,
        description=body.description,
        basis=body.basis,
        found_by=who.actor,
        found_at=body.found_at or datetime.now(UTC),
    )
    hazard_id = await HazardStore(conn).register(
        new, lifecycle.register(body.level), body.description
    )
    return HazardPublic.model_validate(await fetch_one(conn, HAZARDS, who, hazard_id))


@router.post("/{hazard_id}/assign", response_model=HazardPublic, summary="下达整改 / assign")
async def assign_hazard(
    conn: ConnDep, who: SupervisorDep, hazard_id: Id64, body: HazardAssign
) -> HazardPublic:
    """Assign (or re-assign) the rectification to a unit and person with a future deadline."""
    now = datetime.now(UTC)
    return await _act(
        conn,
        who,
        hazard_id,
        lambda h: lifecycle.assign(
            h,
            unit=body.responsible_unit,
            person=body.responsible_person,
            deadline=body.deadline,
            now=now,
        ),
        body.note,
    )


@router.post("/{hazard_id}/rectify", response_model=HazardPublic, summary="整改完成 / rectified")
async def rectify_hazard(
    conn: ConnDep, who: RectifierDep, hazard_id: Id64, body: HazardNote
) -> HazardPublic:
    """Report the rectification done; the caller is recorded as the rectifier."""
    return await _act(
        conn, who, hazard_id, lambda h: lifecycle.rectify(h, actor=who.actor), body.note
    )


@router.post("/{hazard_id}/verify", response_model=HazardPublic, summary="复查验收 / verify")
async def verify_hazard(
    conn: ConnDep, who: SupervisorDep, hazard_id: Id64, body: HazardNote
) -> HazardPublic:
    """Accept the rectification; refused (409) to the rectifier."""
    return await _act(
        conn, who, hazard_id, lambda h: lifecycle.verify(h, actor=who.actor), body.note
    )


@router.post("/{hazard_id}/reject", response_model=HazardPublic, summary="复查不合格 / reject")
async def reject_hazard(
    conn: ConnDep, who: SupervisorDep, hazard_id: Id64, body: HazardNote
) -> HazardPublic:
    """Refuse the rectification: the hazard goes back to `assigned`."""
    return await _act(
        conn, who, hazard_id, lambda h: lifecycle.reject(h, actor=who.actor), body.note
    )


@router.post("/{hazard_id}/close", response_model=HazardPublic, summary="销号 / close out")
async def close_hazard(
    conn: ConnDep, who: SupervisorDep, hazard_id: Id64, body: HazardNote
) -> HazardPublic:
    """Close out a verified hazard."""
    now = datetime.now(UTC)
    return await _act(conn, who, hazard_id, lambda h: lifecycle.close(h, now=now), body.note)


@router.post(
    "/{hazard_id}/supervise", response_model=HazardPublic, summary="挂牌督办 / listed supervision"
)
async def supervise_hazard(
    conn: ConnDep, who: RegulatorDep, hazard_id: Id64, body: HazardSupervise
) -> HazardPublic:
    """Put a major hazard that is still open under listed supervision by an authority."""
    return await _act(
        conn,
        who,
        hazard_id,
        lambda h: lifecycle.supervise(h, authority=body.authority),
        body.note,
    )
