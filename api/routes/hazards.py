"""Hazards (隐患): the registry's closed loop, each action a `hazard_events` row.

registered → (plan) → assigned (the plan in force: for a major hazard all five items) →
rectified → verified by another user than the rectifier (or rejected back to assigned) → closed
(销号); major hazards may be put under listed supervision (挂牌督办) by a province, city or county
authority. The rules of the loop are `registry.lifecycle`, its writes `registry.HazardStore`;
these routes load the hazard within the caller's scope and apply one action.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from psycopg import AsyncConnection
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api import exports
from api.deps import BodyId32, BodyId64, ConnDep, Id64, QueryId32
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging
from api.resources import (
    HAZARD_KINDS_PATTERN,
    HAZARDS,
    INSPECTIONS,
    OVERDUE,
    SITES,
    list_filters,
)
from api.security import ReaderDep, RectifierDep, RegulatorDep, SupervisorDep
from hazmon.auth import Principal
from hazmon.vocabulary import HazardSource, SupervisionLevel
from registry import (
    Change,
    Hazard,
    HazardLevel,
    HazardState,
    HazardStore,
    NewHazard,
    lifecycle,
    lists,
)
from registry.inspections import ITEM_CODE

router = APIRouter(prefix="/hazards", tags=["hazards"])
inspection_hazards_router = APIRouter(prefix="/inspections", tags=["inspections"])

EVENTS = Resource(
    name="hazard event",
    columns="e.id, e.hazard_id, e.action, e.actor, e.actor_user, e.note, e.data, e.at",
    source="hazard_events e JOIN hazards h ON h.id = e.hazard_id JOIN sites s ON s.id = h.site_id",
    id_column="e.id",
    sortable={"id": "e.id"},
    default_sort="id",
)
_NOTE = Field(default="", max_length=2000, description="说明 / note")
MAX_FUNDS_YUAN = 1e12
"""Largest amount of rectification funds accepted, in yuan (no source: a bound against garbage)."""
RegionQuery = Annotated[
    str | None, Query(pattern=r"^([0-9]{2}){1,3}$", description="区划前缀 / region prefix")
]
KindQuery = Annotated[
    str | None, Query(pattern=HAZARD_KINDS_PATTERN, description="危大工程类别 / hazard kind")
]
StartQuery = Annotated[
    AwareDatetime | None, Query(description="发现时间起（含）/ found at or after")
]
EndQuery = Annotated[AwareDatetime | None, Query(description="发现时间止（不含）/ found before")]


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
    location: str = Field(default="", max_length=200, description="位置 / where on the site")
    found_at: AwareDatetime | None = Field(default=None, description="发现时间 / default now")


class InspectionHazardCreate(BaseModel):
    """A hazard from a failed item of an inspection record."""

    model_config = ConfigDict(extra="forbid")

    item: str = Field(pattern=ITEM_CODE, description="不合格的检查项 / the failed item's code")
    level: HazardLevel = Field(description="一般 general / 重大 major")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    location: str = Field(default="", max_length=200, description="位置 / where on the site")


class HazardNote(BaseModel):
    """An action's note."""

    model_config = ConfigDict(extra="forbid")

    note: str = _NOTE


class HazardPlan(HazardNote):
    """A rectification plan (整改方案), or the items of it that change; a major hazard needs
    all five (措施、责任、资金、时限、预案) before it can be assigned."""

    measures: str | None = Field(default=None, max_length=4000, description="整改措施 / measures")
    responsible_unit: str | None = Field(
        default=None, min_length=1, max_length=200, description="责任单位"
    )
    responsible_person: str | None = Field(
        default=None, min_length=1, max_length=100, description="责任人"
    )
    funds_yuan: float | None = Field(
        default=None, ge=0, le=MAX_FUNDS_YUAN, description="整改资金（元）/ funds, yuan"
    )
    deadline: AwareDatetime | None = Field(default=None, description="整改期限 / deadline")
    emergency_plan: str | None = Field(
        default=None, max_length=4000, description="应急预案 / emergency plan"
    )


class HazardAssign(HazardPlan):
    """Assignment of the rectification (下达整改), with the plan's items that change."""

    responsible_unit: str = Field(min_length=1, max_length=200, description="责任单位")
    responsible_person: str = Field(min_length=1, max_length=100, description="责任人")
    deadline: AwareDatetime = Field(description="整改期限 / deadline")


class HazardVerify(HazardNote):
    """Acceptance of the rectification (复查验收)."""

    override_reason: str | None = Field(
        default=None,
        max_length=2000,
        description="报警未消除仍验收的理由（管理员、监管人员）/ why verify over an open alert "
        "(admin, regulator)",
    )


class HazardSupervise(HazardNote):
    """Listing a major hazard for supervision (挂牌督办)."""

    authority: str = Field(min_length=1, max_length=200, description="督办单位 / authority")
    level: SupervisionLevel = Field(description="督办层级 / province, city or county")
    due: AwareDatetime = Field(description="督办期限 / to be closed out by")


class HazardPublic(BaseModel):
    """A hazard and where it stands in the loop."""

    id: int
    site_id: int
    site_code: str
    site_name: str
    region_code: str
    work_id: int | None
    work_code: str | None
    work_name: str | None
    hazard_kind: str | None
    alert_id: int | None
    alert_open: bool
    title: str
    description: str
    level: HazardLevel
    state: HazardState
    source: HazardSource
    location: str
    basis: str
    found_by: str
    found_at: datetime
    inspection_id: int | None
    inspection_item: str | None
    measures: str
    responsible_unit: str | None
    responsible_person: str | None
    funds_yuan: float | None
    deadline: datetime | None
    emergency_plan: str
    overdue: bool | None
    listed_supervision: bool
    supervising_authority: str | None
    supervision_level: SupervisionLevel | None
    supervision_region: str | None
    supervision_due: datetime | None
    supervised_at: datetime | None
    rectified_by: str | None
    rectified_by_user: int | None
    rectified_at: datetime | None
    verification_due: datetime | None
    verified_by: str | None
    verified_by_user: int | None
    verified_at: datetime | None
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
    actor_user: int | None
    note: str
    data: dict[str, Any]
    at: datetime


class HazardEventsPublic(BaseModel):
    """A page of a hazard's audit trail, oldest first by default."""

    data: list[HazardEventPublic]
    count: int


def actor_of(who: Principal) -> lifecycle.Actor:
    """The lifecycle's actor for a caller: the audit label, their user and role."""
    return lifecycle.Actor(who.actor, who.user_id, who.role)


async def _act(
    conn: AsyncConnection[dict[str, Any]],
    who: Principal,
    hazard_id: int,
    transition: Callable[[Hazard], Change],
    note: str,
) -> HazardPublic:
    row = await fetch_one(conn, HAZARDS, who, hazard_id, lock="h")
    change = transition(lifecycle.hazard_from_row(row))
    await HazardStore(conn).apply(hazard_id, change, actor_of(who), note)
    return HazardPublic.model_validate(await fetch_one(conn, HAZARDS, who, hazard_id))


def _plan_changes(body: HazardPlan) -> dict[str, Any]:
    """The plan items a body sets (None: unchanged)."""
    return {
        "measures": body.measures,
        "responsible_unit": body.responsible_unit,
        "responsible_person": body.responsible_person,
        "funds_yuan": Decimal(f"{body.funds_yuan:.2f}") if body.funds_yuan is not None else None,
        "deadline": body.deadline,
        "emergency_plan": body.emergency_plan,
    }


@router.get("", response_model=HazardsPublic, summary="动态隐患清单 / list hazards")
async def list_hazards(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(HAZARDS)],
    site_id: QueryId32 = None,
    state: HazardState | None = None,
    level: HazardLevel | None = None,
    listed_supervision: bool | None = None,
    overdue: Annotated[bool | None, Query(description="已逾期 / past the deadline")] = None,
    region: RegionQuery = None,
    kind: KindQuery = None,
    source: HazardSource | None = None,
    start: StartQuery = None,
    end: EndQuery = None,
) -> HazardsPublic:
    """Hazards on the sites the caller may see (the 动态隐患清单), filtered."""
    filters = list_filters(
        Filters(),
        region=region,
        site_id=site_id,
        kind=kind,
        level=level,
        start=start,
        end=end,
        time_column="h.found_at",
    )
    filters = (
        filters.add("h.state = %(state)s", state=state)
        .add("h.source = %(source)s", source=source)
        .add("h.listed_supervision = %(listed)s", listed=listed_supervision)
        .add(f"{OVERDUE} = %(overdue)s", overdue=overdue)
    )
    rows, count = await fetch_page(conn, HAZARDS, who, page, filters)
    return HazardsPublic(data=[HazardPublic.model_validate(r) for r in rows], count=count)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses=exports.RESPONSES,
    summary="导出动态隐患清单 / the hazard list as CSV or XLSX",
)
async def export_hazards(
    conn: ConnDep,
    who: ReaderDep,
    filters: Annotated[lists.ListFilters, Depends(exports.list_filters)],
    format: exports.FormatQuery = "xlsx",
) -> StreamingResponse:
    """The dynamic hazard list (动态隐患清单) of the caller's scope, filtered as the list is,
    ordered by when each hazard was found; at most 10 000 rows (422: narrow the filters)."""
    return await exports.export(conn, who, lists.HAZARD_LIST, filters, format)


@router.get(
    "/supervised",
    response_model=HazardsPublic,
    summary="挂牌督办隐患 / hazards under listed supervision, by due date",
)
async def list_supervised(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(HAZARDS)],
    region: RegionQuery = None,
    state: HazardState | None = None,
    open_only: Annotated[bool, Query(description="仅未销号 / only those not closed out")] = False,
) -> HazardsPublic:
    """The hazards under listed supervision (挂牌督办) in the caller's scope, soonest due first
    (the notice's order; `sort` is ignored)."""
    filters = (
        Filters()
        .add("h.listed_supervision")
        .add("s.region_code LIKE %(region)s || '%%'", region=region)
        .add("h.state = %(state)s", state=state)
    )
    if open_only:
        filters.add("h.state <> 'closed'")
    by_due = Page(page.limit, page.offset, "supervision_due")
    rows, count = await fetch_page(conn, HAZARDS, who, by_due, filters)
    return HazardsPublic(data=[HazardPublic.model_validate(r) for r in rows], count=count)


@router.get(
    "/supervised/export",
    response_class=StreamingResponse,
    responses=exports.RESPONSES,
    summary="挂牌督办公告 / the notice of listed supervision as CSV or XLSX",
)
async def export_supervised(
    conn: ConnDep,
    who: ReaderDep,
    filters: Annotated[lists.ListFilters, Depends(exports.list_filters)],
    format: exports.FormatQuery = "xlsx",
) -> StreamingResponse:
    """The hazards under listed supervision as a notice (公告): authority, level, due date and
    where each stands, soonest due first."""
    return await exports.export(conn, who, lists.SUPERVISION_LIST, filters, format)


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
    """Every action on a hazard, who did it and when (the sweep's reminders, overdue marks and
    escalations, and the evidence attached, included)."""
    await fetch_one(conn, HAZARDS, who, hazard_id)
    filters = Filters().add("e.hazard_id = %(hazard_id)s", hazard_id=hazard_id)
    rows, count = await fetch_page(conn, EVENTS, who, page, filters)
    return HazardEventsPublic(data=[HazardEventPublic.model_validate(r) for r in rows], count=count)


@router.post("", response_model=HazardPublic, status_code=201, summary="登记隐患 / register")
async def create_hazard(conn: ConnDep, who: ReaderDep, body: HazardCreate) -> HazardPublic:
    """Register a hazard on a site the caller may see; its work and alert must be of that site.
    With an alert it is sensor-born (its verification waits for the alert to resolve), else a
    report (hazards found by an inspection are registered from the inspection record)."""
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
        location=body.location,
        found_by=who.actor,
        found_by_user=who.user_id,
        found_at=body.found_at or datetime.now(UTC),
    )
    source: HazardSource = "sensor" if body.alert_id is not None else "report"
    hazard_id = await HazardStore(conn).register(
        new, lifecycle.register(body.level, source), body.description
    )
    return HazardPublic.model_validate(await fetch_one(conn, HAZARDS, who, hazard_id))


@router.post("/{hazard_id}/plan", response_model=HazardPublic, summary="整改方案 / plan")
async def plan_hazard(
    conn: ConnDep, who: SupervisorDep, hazard_id: Id64, body: HazardPlan
) -> HazardPublic:
    """Draft or revise the rectification plan (items left out stay as they are)."""
    now = datetime.now(UTC)
    return await _act(
        conn,
        who,
        hazard_id,
        lambda h: lifecycle.plan(h, h.plan.merged(**_plan_changes(body)), now=now),
        body.note,
    )


@router.post("/{hazard_id}/assign", response_model=HazardPublic, summary="下达整改 / assign")
async def assign_hazard(
    conn: ConnDep, who: SupervisorDep, hazard_id: Id64, body: HazardAssign
) -> HazardPublic:
    """Assign (or re-assign) the rectification: the plan with the items given must name a unit,
    a person and a future deadline, and for a major hazard also the measures, the funds and the
    emergency plan (五到位); 409 naming what is missing otherwise."""
    now = datetime.now(UTC)
    return await _act(
        conn,
        who,
        hazard_id,
        lambda h: lifecycle.assign(h, h.plan.merged(**_plan_changes(body)), now=now),
        body.note,
    )


@router.post("/{hazard_id}/rectify", response_model=HazardPublic, summary="整改完成 / rectified")
async def rectify_hazard(
    conn: ConnDep, who: RectifierDep, hazard_id: Id64, body: HazardNote
) -> HazardPublic:
    """Report the rectification done; the caller is recorded as the rectifier, and the
    verification falls due 10 days later."""
    now = datetime.now(UTC)
    return await _act(
        conn,
        who,
        hazard_id,
        lambda h: lifecycle.rectify(h, actor=actor_of(who), now=now),
        body.note,
    )


@router.post("/{hazard_id}/verify", response_model=HazardPublic, summary="复查验收 / verify")
async def verify_hazard(
    conn: ConnDep, who: SupervisorDep, hazard_id: Id64, body: HazardVerify
) -> HazardPublic:
    """Accept the rectification; refused (409) to the rectifier's user, and while the hazard's
    alert is still open unless an admin or regulator gives `override_reason`."""
    now = datetime.now(UTC)
    return await _act(
        conn,
        who,
        hazard_id,
        lambda h: lifecycle.verify(
            h, actor=actor_of(who), now=now, override_reason=body.override_reason
        ),
        body.note,
    )


@router.post("/{hazard_id}/reject", response_model=HazardPublic, summary="复查不合格 / reject")
async def reject_hazard(
    conn: ConnDep, who: SupervisorDep, hazard_id: Id64, body: HazardNote
) -> HazardPublic:
    """Refuse the rectification: the hazard goes back to `assigned` for another round."""
    return await _act(
        conn, who, hazard_id, lambda h: lifecycle.reject(h, actor=actor_of(who)), body.note
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
    """Put a major hazard that is still open under listed supervision by an authority of the
    province, city or county it lies in (within the caller's own scope), due by `due`."""
    now = datetime.now(UTC)
    caller_region = None if who.role == "admin" else who.region_prefix
    return await _act(
        conn,
        who,
        hazard_id,
        lambda h: lifecycle.supervise(
            h,
            authority=body.authority,
            level=body.level,
            due=body.due,
            now=now,
            caller_region=caller_region,
        ),
        body.note,
    )


@inspection_hazards_router.post(
    "/{inspection_id}/hazards",
    response_model=HazardPublic,
    status_code=201,
    summary="由不合格项登记隐患 / register a hazard from a failed item",
)
async def create_inspection_hazard(
    conn: ConnDep, who: ReaderDep, inspection_id: Id64, body: InspectionHazardCreate
) -> HazardPublic:
    """Register the hazard a failed checklist item of an inspection record shows, in one step:
    its work and site, the item's clause as the basis, the inspector's note as the description,
    found when the inspection was performed. Once per item (409 again, and for an item that did
    not fail)."""
    record = await fetch_one(conn, INSPECTIONS, who, inspection_id)
    result = next((r for r in record["results"] if r["item"] == body.item), None)
    if result is None or result["result"] != "fail":
        raise lifecycle.HazardError("register", f"item {body.item!r} did not fail in this record")
    item = next(i for i in record["items"] if i["code"] == body.item)
    description = "\n".join(t for t in (body.description, result["note"], item["text_zh"]) if t)
    new = NewHazard(
        site_id=record["site_id"],
        work_id=record["work_id"],
        title=body.title or f"巡查不合格：{item['text_zh'][:180]}",
        description=description,
        basis=item["clause"] if item["clause"] != "none" else "",
        location=body.location,
        found_by=who.actor,
        found_by_user=who.user_id,
        found_at=record["performed_at"],
        inspection_id=inspection_id,
        inspection_item=body.item,
    )
    change = lifecycle.register(
        body.level, "inspection", inspection_id=inspection_id, item=body.item
    )
    hazard_id = await HazardStore(conn).register(new, change, body.description)
    return HazardPublic.model_validate(await fetch_one(conn, HAZARDS, who, hazard_id))
