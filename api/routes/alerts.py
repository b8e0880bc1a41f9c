"""Alerts (报警): list and filter within the caller's scope, and acknowledge with a note.

Acknowledgement is the registry's (`registry.alerts.acknowledge`, on the request's connection): it records
the person and the note as a transition; an acknowledged alert that later escalates opens again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import ConnDep, Id64, QueryId32, client
from api.query import Filters, Page, fetch_one, fetch_page, paging
from api.resources import ALERTS
from api.security import ReaderDep
from hazmon.vocabulary import Grade
from registry import alerts

router = APIRouter(prefix="/alerts", tags=["alerts"])


class AlertPublic(BaseModel):
    """One alert as the API shows it."""

    id: int
    series_id: int
    site_id: int
    site_code: str
    device_code: str
    metric: str
    rule: str
    grade: int
    grade_name: str
    state: str
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    value: float | None
    threshold: float | None
    message_zh: str
    message_en: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_note: str | None


class AlertsPublic(BaseModel):
    """A page of alerts."""

    data: list[AlertPublic]
    count: int


class AlertAcknowledge(BaseModel):
    """An acknowledgement: what the person did or will do."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(
        min_length=1, max_length=2000, pattern=r"\S", description="处置说明 / action taken"
    )


def _alert(row: dict[str, Any]) -> AlertPublic:
    return AlertPublic.model_validate({**row, "grade_name": Grade(row["grade"]).code})


@router.get("", response_model=AlertsPublic, summary="报警列表 / list alerts")
async def list_alerts(
    conn: ConnDep,
    who: ReaderDep,
    page: Annotated[Page, paging(ALERTS)],
    state: Annotated[Literal["open", "acknowledged", "resolved", "active"] | None, Query()] = None,
    site: Annotated[str | None, Query(max_length=64, description="工地编号 / site code")] = None,
    site_id: QueryId32 = None,
    min_grade: Annotated[int, Query(ge=1, le=4, description="1 蓝 blue … 4 红 red")] = 1,
    since: Annotated[AwareDatetime | None, Query(description="起 / opened at or after")] = None,
) -> AlertsPublic:
    """Alerts on the sites the caller may see, newest first; `state=active`: open or acknowledged."""
    states = ["open", "acknowledged"] if state == "active" else [state] if state else None
    filters = (
        Filters()
        .add("a.state = ANY(%(states)s::text[])", states=states)
        .add("s.code = %(site)s", site=site)
        .add("s.id = %(site_id)s", site_id=site_id)
        .add("a.grade >= %(min_grade)s", min_grade=min_grade)
        .add("a.opened_at >= %(since)s", since=since)
    )
    rows, count = await fetch_page(conn, ALERTS, who, page, filters)
    return AlertsPublic(data=[_alert(r) for r in rows], count=count)


@router.get("/{alert_id}", response_model=AlertPublic, summary="报警详情 / one alert")
async def get_alert(conn: ConnDep, who: ReaderDep, alert_id: Id64) -> AlertPublic:
    """One alert, if the caller may see its site."""
    return _alert(await fetch_one(conn, ALERTS, who, alert_id))


@router.post(
    "/{alert_id}/acknowledge", response_model=AlertPublic, summary="确认报警 / acknowledge"
)
async def acknowledge_alert(
    conn: ConnDep, request: Request, who: ReaderDep, alert_id: Id64, body: AlertAcknowledge
) -> AlertPublic:
    """Acknowledge an open alert with a note (409 if it is resolved); idempotent if acknowledged."""
    await fetch_one(conn, ALERTS, who, alert_id)
    try:
        await alerts.acknowledge(conn, alert_id, who.actor, body.note, client_addr=client(request))
    except alerts.AlertError as exc:
        raise HTTPException(409, str(exc)) from None
    return _alert(await fetch_one(conn, ALERTS, who, alert_id))
