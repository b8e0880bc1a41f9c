"""Signed links (通知链接): what a notification's link opens on a phone, and its acknowledgement.

Every message the notifier sends carries `{HAZMON_PUBLIC_BASE_URL}/links/{token}` per alert or
hazard it tells: a token signed with `HAZMON_LINK_SECRET` that names one alert (or hazard), the
subscription it was sent to and its expiry (`hazmon/links.py`). It is its own authority: no API
token is needed, and it grants exactly that one subject's view and, for an alert, one
acknowledgement acting as `link:<subscription name>` (through `registry.alerts.acknowledge`, on
the request's connection, with its audit line). Until inspector pages exist the link opens this
JSON view.

Refusals: a token that is not one of ours (malformed, or its signature does not match: tampered)
answers **404**, as an unknown URL would, so that a forged token learns nothing about which
alerts exist; a genuine token past its expiry answers **403** (it was sent, and is no longer
allowed), as does one whose subscription has been deleted since. GET never changes anything
(chat apps fetch links to preview them); acknowledging is a POST.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ConnDep, SettingsDep, client
from hazmon.links import MAX_TOKEN_CHARS, Link, LinkError, read_link
from hazmon.vocabulary import Grade
from registry import alerts


async def _redact_path(request: Request) -> None:
    """The token is a credential: the access log (api/middleware.py) writes the request's path,
    so the path becomes the route's template before anything is logged."""
    route = request.scope.get("route")
    if route is not None:
        request.scope["path"] = getattr(route, "path", "/links")


router = APIRouter(prefix="/links", tags=["links"], dependencies=[Depends(_redact_path)])

Token = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_TOKEN_CHARS,
        description="通知中的签名链接 / the signed token of a notification's link",
    ),
]


class LinkAlert(BaseModel):
    """The alert a link opens."""

    id: int
    site_code: str
    site_name: str
    work_code: str
    work_name: str
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


class LinkTransition(BaseModel):
    """One change of the alert (its last ones, newest first)."""

    id: int
    action: str
    grade_from: int
    grade_to: int
    reading_at: datetime
    recorded_at: datetime
    value: float | None
    threshold: float | None
    message_zh: str
    message_en: str
    actor: str


class LinkEscalation(BaseModel):
    """The alert went up the ladder: to which level and region, after how long unacknowledged."""

    level: str
    region_code: str
    after_s: int
    reason: str
    escalated_at: datetime


class LinkHazard(BaseModel):
    """The hazard a link opens."""

    id: int
    site_code: str
    site_name: str
    work_code: str | None
    work_name: str | None
    alert_id: int | None
    title: str
    description: str
    level: str
    state: str
    responsible_unit: str | None
    responsible_person: str | None
    deadline: datetime | None
    listed_supervision: bool
    supervising_authority: str | None


class LinkHazardEvent(BaseModel):
    """One action on the hazard (its last ones, newest first)."""

    id: int
    action: str
    actor: str
    note: str
    data: dict[str, Any]
    at: datetime


class LinkPublic(BaseModel):
    """What a link shows: its alert (with its last changes and escalations) or its hazard (with
    its last events), who it was sent to, until when it works, whether it can acknowledge."""

    scope: Literal["alert", "hazard"]
    subscription: str
    expires_at: datetime
    can_acknowledge: bool
    alert: LinkAlert | None = None
    transitions: list[LinkTransition] = []
    escalations: list[LinkEscalation] = []
    hazard: LinkHazard | None = None
    events: list[LinkHazardEvent] = []


class LinkAcknowledge(BaseModel):
    """An acknowledgement through a link: what the recipient did or will do."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(
        min_length=1, max_length=2000, pattern=r"\S", description="处置说明 / action taken"
    )


HISTORY = 20
"""Transitions or events a link shows."""
_ALERT_SQL = """
SELECT a.id, s.code AS site_code, s.name AS site_name, w.code AS work_code, w.name AS work_name,
       d.code AS device_code, se.metric, a.rule, a.grade, a.state, a.opened_at, a.updated_at,
       a.resolved_at, a.value, a.threshold, a.message_zh, a.message_en, a.acknowledged_by,
       a.acknowledged_at, a.ack_note
FROM alerts a JOIN series se ON se.id = a.series_id JOIN devices d ON d.id = se.device_id
JOIN works w ON w.id = d.work_id JOIN sites s ON s.id = d.site_id
WHERE a.id = %s
"""
_TRANSITIONS_SQL = """
SELECT id, action, grade_from, grade_to, reading_at, recorded_at, value, threshold, message_zh,
       message_en, actor
FROM alert_transitions WHERE alert_id = %s ORDER BY id DESC LIMIT %s
"""
_ESCALATIONS_SQL = """
SELECT level, region_code, after_s, reason, escalated_at
FROM alert_escalations WHERE alert_id = %s ORDER BY id
"""
_HAZARD_SQL = """
SELECT h.id, s.code AS site_code, s.name AS site_name, w.code AS work_code, w.name AS work_name,
       h.alert_id, h.title, h.description, h.level, h.state, h.responsible_unit,
       h.responsible_person, h.deadline, h.listed_supervision, h.supervising_authority
FROM hazards h JOIN sites s ON s.id = h.site_id LEFT JOIN works w ON w.id = h.work_id
WHERE h.id = %s
"""
_EVENTS_SQL = """
SELECT id, action, actor, note, data, at FROM hazard_events
WHERE hazard_id = %s ORDER BY id DESC LIMIT %s
"""


async def _granted(conn: ConnDep, settings: SettingsDep, token: str) -> tuple[Link, str]:
    """The link a token grants and the name of its subscription; 404 or 403 otherwise."""
    if settings.link_secret is None:  # links are not configured: none can be genuine
        raise HTTPException(404, "no such link")
    try:
        link = read_link(settings.link_secret, token, time.time())
    except LinkError as exc:
        if exc.problem == "expired":
            raise HTTPException(
                403, "this link has expired: open the alert in the app, or use a newer message"
            ) from None
        raise HTTPException(404, "no such link") from None
    cur = await conn.execute(
        "SELECT name FROM webhook_subscriptions WHERE id = %s", (link.subscription_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise HTTPException(403, "the subscription this link was sent to no longer exists")
    return link, str(row["name"])


async def _view(conn: ConnDep, link: Link, subscription: str) -> LinkPublic:
    expires_at = datetime.fromtimestamp(link.expires_s, UTC)
    if link.scope == "hazard":
        cur = await conn.execute(_HAZARD_SQL, (link.subject_id,))
        hazard = await cur.fetchone()
        if hazard is None:
            raise HTTPException(404, f"no hazard {link.subject_id}")
        cur = await conn.execute(_EVENTS_SQL, (link.subject_id, HISTORY))
        return LinkPublic(
            scope="hazard",
            subscription=subscription,
            expires_at=expires_at,
            can_acknowledge=False,
            hazard=LinkHazard.model_validate(hazard),
            events=[LinkHazardEvent.model_validate(e) for e in await cur.fetchall()],
        )
    cur = await conn.execute(_ALERT_SQL, (link.subject_id,))
    alert = await cur.fetchone()
    if alert is None:
        raise HTTPException(404, f"no alert {link.subject_id}")
    transitions = await conn.execute(_TRANSITIONS_SQL, (link.subject_id, HISTORY))
    escalations = await conn.execute(_ESCALATIONS_SQL, (link.subject_id,))
    return LinkPublic(
        scope="alert",
        subscription=subscription,
        expires_at=expires_at,
        can_acknowledge=alert["state"] == "open",
        alert=LinkAlert.model_validate({**alert, "grade_name": Grade(alert["grade"]).code}),
        transitions=[LinkTransition.model_validate(t) for t in await transitions.fetchall()],
        escalations=[LinkEscalation.model_validate(e) for e in await escalations.fetchall()],
    )


@router.get("/{token}", response_model=LinkPublic, summary="打开通知链接 / open a link")
async def open_link(conn: ConnDep, settings: SettingsDep, token: Token) -> LinkPublic:
    """The alert or hazard a notification's signed link names; no API token needed."""
    link, subscription = await _granted(conn, settings, token)
    return await _view(conn, link, subscription)


@router.post(
    "/{token}/acknowledge",
    response_model=LinkPublic,
    summary="通过链接确认报警 / acknowledge through a link",
)
async def acknowledge_link(
    conn: ConnDep,
    settings: SettingsDep,
    request: Request,
    token: Token,
    body: LinkAcknowledge,
) -> LinkPublic:
    """Acknowledge the link's alert with a note, as `link:<subscription name>`: reminders and
    escalation stop. 409 if the alert is resolved or the link is a hazard's; idempotent if it
    is acknowledged already."""
    link, subscription = await _granted(conn, settings, token)
    if link.scope != "alert":
        raise HTTPException(
            409, "a hazard's link only opens it: its actions need an API token (docs/api.md)"
        )
    try:
        await alerts.acknowledge(
            conn, link.subject_id, f"link:{subscription}", body.note, client_addr=client(request)
        )
    except alerts.AlertError as exc:
        status = 404 if str(exc).startswith("no alert") else 409
        raise HTTPException(status, str(exc)) from None
    return await _view(conn, link, subscription)
