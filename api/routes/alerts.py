"""Alerts: list and filter (acknowledgement arrives with the rule engine's state machine)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import ConnDep

router = APIRouter(prefix="/alerts", tags=["alerts"])

GRADE_NAMES = {1: "blue", 2: "yellow", 3: "orange", 4: "red"}


class AlertPublic(BaseModel):
    """One alert as the API shows it."""

    id: int
    series_id: int
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


class AlertsPublic(BaseModel):
    """A page of alerts."""

    data: list[AlertPublic]
    count: int


@router.get("", response_model=AlertsPublic, summary="报警列表 / list alerts")
async def list_alerts(
    conn: ConnDep,
    state: Annotated[Literal["open", "acknowledged", "resolved", "active"] | None, Query()] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    min_grade: Annotated[int, Query(ge=1, le=4)] = 1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AlertsPublic:
    """Alerts newest first; `state=active` means open or acknowledged."""
    states = ["open", "acknowledged"] if state == "active" else [state] if state else None
    cur = await conn.execute(
        """SELECT a.id, a.series_id, s.code AS site_code, d.code AS device_code, se.metric,
                  a.rule, a.grade, a.state, a.opened_at, a.updated_at, a.resolved_at,
                  a.value, a.threshold, a.message_zh, a.message_en,
                  count(*) OVER () AS total
           FROM alerts a
           JOIN series se ON se.id = a.series_id
           JOIN devices d ON d.id = se.device_id
           JOIN sites s ON s.id = d.site_id
           WHERE (%(states)s::text[] IS NULL OR a.state = ANY(%(states)s::text[]))
             AND (%(site)s::text IS NULL OR s.code = %(site)s::text)
             AND a.grade >= %(min_grade)s
           ORDER BY a.opened_at DESC, a.id DESC
           LIMIT %(limit)s OFFSET %(offset)s""",
        {"states": states, "site": site, "min_grade": min_grade, "limit": limit, "offset": offset},
    )
    rows = await cur.fetchall()
    total = int(rows[0]["total"]) if rows else 0
    return AlertsPublic(
        data=[
            AlertPublic(
                grade_name=GRADE_NAMES[int(r["grade"])],
                **{k: v for k, v in r.items() if k != "total"},
            )
            for r in rows
        ],
        count=total,
    )
