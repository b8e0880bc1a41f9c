"""Investigation (隐患排查): checklists by hazard kind, inspection plans per work, inspection
records, and the missed inspections the sweep finds.

A plan copies its work's checklist items (each with its clause and confidence), sets a frequency
(default: the kind's) and names the responsible inspector, a user whose scope holds the work. A
record answers every item of its plan; a failed item becomes a hazard in one step
(`POST /inspections/{id}/hazards`, api/routes/hazards.py). The rules are
`registry.inspections`, the writes `registry.inspection_store`; every read is scoped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import BodyId32, ConnDep, Id32, Id64, QueryId32
from api.query import Filters, Page, fetch_one, fetch_page, paging
from api.resources import INSPECTION_EVENTS, INSPECTION_PLANS, INSPECTIONS, WORKS
from api.security import ReaderDep
from hazmon.vocabulary import InspectionResult
from registry import inspection_store
from registry.inspections import (
    ITEM_CODE,
    MAX_FREQUENCY_H,
    MAX_ITEMS,
    Confidence,
    InspectionError,
    ItemResult,
    checklist,
    checklists,
    plan_items,
)
from registry.lifecycle import Actor

router = APIRouter(tags=["inspections"])
MAX_FUTURE = timedelta(minutes=5)
"""How far ahead of the server's clock a record's time may be (a phone's clock running fast)."""


@contextmanager
def _refused_as_422() -> Iterator[None]:
    try:
        yield
    except InspectionError as exc:
        raise HTTPException(422, str(exc)) from None


class ChecklistItemPublic(BaseModel):
    """One patrol item, with where it comes from."""

    code: str
    text_zh: str
    text_en: str
    clause: str
    source: str
    confidence: Confidence


class ChecklistPublic(BaseModel):
    """A hazard kind's checklist and default frequency."""

    kind: str
    name_zh: str
    frequency_h: int
    frequency_source: str
    frequency_confidence: Confidence
    items: list[ChecklistItemPublic]


class ChecklistsPublic(BaseModel):
    """Every hazard kind's checklist."""

    data: list[ChecklistPublic]


class PlanUpdate(BaseModel):
    """Changes to a plan; fields left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")
    frequency_h: int | None = Field(default=None, ge=1, le=MAX_FREQUENCY_H)
    inspector_user_id: BodyId32 | None = None
    active: bool | None = None


class PlanCreate(BaseModel):
    """A new inspection plan of a work."""

    model_config = ConfigDict(extra="forbid")

    work_id: BodyId32
    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"\S")
    frequency_h: int | None = Field(
        default=None, ge=1, le=MAX_FREQUENCY_H, description="频次（小时）/ every N hours"
    )
    inspector_user_id: BodyId32 = Field(description="责任巡查人 / responsible inspector (user)")
    items: list[Annotated[str, Field(pattern=ITEM_CODE)]] | None = Field(
        default=None, max_length=MAX_ITEMS, description="检查项编号，缺省为全部 / item codes"
    )
    extra_items: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(
        default_factory=list, max_length=MAX_ITEMS, description="自定义检查项 / own items"
    )
    starts_at: AwareDatetime | None = Field(default=None, description="起始 / default now")


class PlanPublic(BaseModel):
    """An inspection plan."""

    id: int
    work_id: int
    work_code: str
    work_name: str
    hazard_kind: str
    site_id: int
    site_code: str
    name: str
    frequency_h: int
    inspector_user: int
    inspector_name: str
    items: list[ChecklistItemPublic]
    starts_at: datetime
    active: bool
    checked_until: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class PlansPublic(BaseModel):
    """A page of plans."""

    data: list[PlanPublic]
    count: int


class ItemResultIn(BaseModel):
    """One item's result."""

    model_config = ConfigDict(extra="forbid")

    item: str = Field(pattern=ITEM_CODE)
    result: InspectionResult = Field(description="合格 pass / 不合格 fail / 不适用 na")
    note: str = Field(default="", max_length=1000)


class RecordCreate(BaseModel):
    """An inspection record: every item of the plan answered."""

    model_config = ConfigDict(extra="forbid")

    performed_at: AwareDatetime | None = Field(default=None, description="巡查时间 / default now")
    results: list[ItemResultIn] = Field(min_length=1, max_length=MAX_ITEMS)
    notes: str = Field(default="", max_length=4000, description="巡查记录 / notes")


class ItemResultPublic(BaseModel):
    """One item's result as recorded."""

    item: str
    result: InspectionResult
    note: str


class InspectionPublic(BaseModel):
    """An inspection record."""

    id: int
    plan_id: int
    plan_name: str
    work_id: int
    work_name: str
    hazard_kind: str
    site_id: int
    site_code: str
    performed_by: str
    performed_by_user: int | None
    performed_at: datetime
    results: list[ItemResultPublic]
    failed: int
    notes: str
    created_at: datetime


class InspectionsPublic(BaseModel):
    """A page of inspection records."""

    data: list[InspectionPublic]
    count: int


class InspectionEventPublic(BaseModel):
    """A missed inspection: a window of the plan's frequency that ended without a record."""

    id: int
    plan_id: int
    plan_name: str
    work_id: int
    site_id: int
    site_code: str
    action: str
    window_start: datetime
    window_end: datetime
    data: dict[str, Any]
    at: datetime


class InspectionEventsPublic(BaseModel):
    """A page of missed inspections."""

    data: list[InspectionEventPublic]
    count: int


def _checklist_public(kind: str) -> ChecklistPublic:
    c = checklist(kind)
    return ChecklistPublic(
        kind=c.kind,
        name_zh=c.name_zh,
        frequency_h=c.frequency_h,
        frequency_source=c.frequency_source,
        frequency_confidence=c.frequency_confidence,
        items=[ChecklistItemPublic.model_validate(i) for i in c.items],
    )


@router.get("/checklists", response_model=ChecklistsPublic, summary="排查项目 / checklists")
async def list_checklists(who: ReaderDep) -> ChecklistsPublic:
    """Every hazard kind's patrol items with their clause and confidence, and default frequency."""
    return ChecklistsPublic(data=[_checklist_public(kind) for kind in checklists()])


@router.get("/inspection-plans", response_model=PlansPublic, summary="排查计划 / plans")
async def list_plans(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(INSPECTION_PLANS)],
    work_id: QueryId32 = None,
    site_id: QueryId32 = None,
    active: bool | None = None,
) -> PlansPublic:
    """The inspection plans of the works the caller may see."""
    filters = (
        Filters()
        .add("p.work_id = %(work_id)s", work_id=work_id)
        .add("w.site_id = %(site_id)s", site_id=site_id)
        .add("p.active = %(active)s", active=active)
    )
    rows, count = await fetch_page(conn, INSPECTION_PLANS, who, page, filters)
    return PlansPublic(data=[PlanPublic.model_validate(r) for r in rows], count=count)


@router.get("/inspection-plans/{plan_id}", response_model=PlanPublic, summary="排查计划 / plan")
async def get_plan(conn: ConnDep, who: ReaderDep, plan_id: Id32) -> PlanPublic:
    """One plan, if the caller may see its work."""
    return PlanPublic.model_validate(await fetch_one(conn, INSPECTION_PLANS, who, plan_id))


@router.post(
    "/inspection-plans",
    response_model=PlanPublic,
    status_code=201,
    summary="新建排查计划 / create a plan",
)
async def create_plan(conn: ConnDep, who: ReaderDep, body: PlanCreate) -> PlanPublic:
    """Plan the inspections of a work the caller may see: its kind's checklist items (all, or
    those named, plus the plan's own), every `frequency_h` hours (default: the kind's), by the
    responsible inspector (a user whose scope holds the work; 422 otherwise)."""
    work = await fetch_one(conn, WORKS, who, body.work_id)
    with _refused_as_422():
        kind = checklist(work["hazard_kind"])
        items = plan_items(work["hazard_kind"], body.items, body.extra_items)
        plan_id = await inspection_store.create_plan(
            conn,
            work_id=body.work_id,
            name=body.name or f"{work['name']} {kind.name_zh}巡查",
            frequency_h=body.frequency_h or kind.frequency_h,
            inspector_user=body.inspector_user_id,
            items=items,
            starts_at=body.starts_at or datetime.now(UTC),
            actor=Actor(who.actor, who.user_id, who.role),
        )
    return PlanPublic.model_validate(await fetch_one(conn, INSPECTION_PLANS, who, plan_id))


@router.patch(
    "/inspection-plans/{plan_id}", response_model=PlanPublic, summary="修改排查计划 / update"
)
async def update_plan(conn: ConnDep, who: ReaderDep, plan_id: Id32, body: PlanUpdate) -> PlanPublic:
    """Change a plan's name, frequency or responsible inspector, or stop (resume) it."""
    plan = await fetch_one(conn, INSPECTION_PLANS, who, plan_id, lock="p")
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "inspector_user_id" in changes:
        changes["inspector_user"] = changes.pop("inspector_user_id")
    with _refused_as_422():
        await inspection_store.update_plan(conn, plan_id, plan["work_id"], changes)
    return PlanPublic.model_validate(await fetch_one(conn, INSPECTION_PLANS, who, plan_id))


@router.post(
    "/inspection-plans/{plan_id}/records",
    response_model=InspectionPublic,
    status_code=201,
    summary="巡查记录 / record an inspection",
)
async def create_record(
    conn: ConnDep, who: ReaderDep, plan_id: Id32, body: RecordCreate
) -> InspectionPublic:
    """Record an inspection of the plan: each of its items passed, failed or not applicable
    (every item exactly once; 422 otherwise)."""
    plan = await fetch_one(conn, INSPECTION_PLANS, who, plan_id)
    now = datetime.now(UTC)
    performed_at = body.performed_at or now
    if performed_at > now + MAX_FUTURE:
        raise HTTPException(422, "performed_at is in the future")
    results = [ItemResult(item=r.item, result=r.result, note=r.note) for r in body.results]
    with _refused_as_422():
        record_id = await inspection_store.record_inspection(
            conn,
            plan=plan,
            results=results,
            performed_at=performed_at,
            notes=body.notes,
            actor=Actor(who.actor, who.user_id, who.role),
        )
    return InspectionPublic.model_validate(await fetch_one(conn, INSPECTIONS, who, record_id))


@router.get("/inspections", response_model=InspectionsPublic, summary="巡查记录 / records")
async def list_inspections(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(INSPECTIONS)],
    plan_id: QueryId32 = None,
    work_id: QueryId32 = None,
    site_id: QueryId32 = None,
    failed: Annotated[bool | None, Query(description="有不合格项 / with a failed item")] = None,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
) -> InspectionsPublic:
    """Inspection records of the works the caller may see."""
    filters = (
        Filters()
        .add("i.plan_id = %(plan_id)s", plan_id=plan_id)
        .add("i.work_id = %(work_id)s", work_id=work_id)
        .add("w.site_id = %(site_id)s", site_id=site_id)
        .add("(i.failed > 0) = %(failed)s", failed=failed)
        .add("i.performed_at >= %(start)s", start=start)
        .add("i.performed_at < %(end)s", end=end)
    )
    rows, count = await fetch_page(conn, INSPECTIONS, who, page, filters)
    return InspectionsPublic(data=[InspectionPublic.model_validate(r) for r in rows], count=count)


@router.get(
    "/inspections/{inspection_id}", response_model=InspectionPublic, summary="巡查记录 / record"
)
async def get_inspection(conn: ConnDep, who: ReaderDep, inspection_id: Id64) -> InspectionPublic:
    """One inspection record, if the caller may see its work."""
    return InspectionPublic.model_validate(await fetch_one(conn, INSPECTIONS, who, inspection_id))


@router.get(
    "/inspection-events",
    response_model=InspectionEventsPublic,
    summary="漏检 / missed inspections",
)
async def list_inspection_events(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(INSPECTION_EVENTS)],
    plan_id: QueryId32 = None,
    site_id: QueryId32 = None,
) -> InspectionEventsPublic:
    """Missed inspections (`inspection_missed`): windows of a plan's frequency that ended
    without a record, found by the sweep."""
    filters = (
        Filters()
        .add("e.plan_id = %(plan_id)s", plan_id=plan_id)
        .add("w.site_id = %(site_id)s", site_id=site_id)
    )
    rows, count = await fetch_page(conn, INSPECTION_EVENTS, who, page, filters)
    return InspectionEventsPublic(
        data=[InspectionEventPublic.model_validate(r) for r in rows], count=count
    )
