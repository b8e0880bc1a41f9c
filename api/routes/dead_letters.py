"""Dead letters (死信): payloads ingest refused, with their reason and raw bytes, for admins.

Topics name sites but a refused payload may name a site that does not exist, so dead letters
are not scoped to tenants: only admins see them. Once the registry is fixed (the missing device
added, the metric configured), `POST /dead-letters/replay` queues a replay request that an ingest
worker carries out (`registry.dead_letters`, the same as `hazmon dead-letters replay`) and waits
for its result.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict

from api.deps import ConnDep, Id64, SettingsDep
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging
from api.security import AdminDep
from hazmon.wire import Reason
from registry import dead_letters

router = APIRouter(prefix="/dead-letters", tags=["dead letters"])

PREVIEW_CHARS = 4096
DEAD_LETTERS = Resource(
    name="dead letter",
    columns="l.id, l.received_at, l.topic, l.reason, l.detail, l.payload, l.replayed_at, "
    "l.replay_result",
    source="dead_letters l",
    id_column="l.id",
    sortable={"id": "l.id", "received_at": "l.received_at", "reason": "l.reason"},
    default_sort="-id",
    tenant=False,
)


class DeadLetterPublic(BaseModel):
    """A refused payload: `payload_base64` is exact, `payload_text` a UTF-8 preview."""

    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_base64: str
    payload_text: str
    payload_bytes: int
    replayed_at: datetime | None
    replay_result: str | None


class DeadLettersPublic(BaseModel):
    """A page of dead letters."""

    data: list[DeadLetterPublic]
    count: int


class DeadLetterReplay(BaseModel):
    """Which dead letters to replay: those of one reason, or all not yet replayed."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


class ReplayPublic(BaseModel):
    """What a replay did. Replayed readings are stored and graded by the ingest worker that owns
    their rule state (as late data where older than what it graded)."""

    attempted: int
    replayed: int
    still_refused: dict[str, int]
    readings_stored: int
    readings_already_stored: int


def _letter(row: dict[str, Any]) -> DeadLetterPublic:
    payload = bytes(row["payload"])
    return DeadLetterPublic.model_validate(
        {
            **row,
            "payload_base64": base64.b64encode(payload).decode(),
            "payload_text": payload[:PREVIEW_CHARS].decode("utf-8", errors="replace"),
            "payload_bytes": len(payload),
        }
    )


@router.get("", response_model=DeadLettersPublic, summary="死信列表 / list dead letters")
async def list_dead_letters(
    conn: ConnDep,
    who: AdminDep,
    page: Annotated[Page, paging(DEAD_LETTERS)],
    reason: Annotated[str | None, Query(max_length=64)] = None,
    topic_prefix: Annotated[str | None, Query(max_length=256)] = None,
    replayed: bool | None = None,
) -> DeadLettersPublic:
    """Dead letters by reason, topic prefix, or whether they were replayed."""
    filters = (
        Filters()
        .add("l.reason = %(reason)s", reason=reason)
        .add("starts_with(l.topic, %(topic_prefix)s)", topic_prefix=topic_prefix)
        .add("(l.replayed_at IS NOT NULL) = %(replayed)s", replayed=replayed)
    )
    rows, count = await fetch_page(conn, DEAD_LETTERS, who, page, filters)
    return DeadLettersPublic(data=[_letter(r) for r in rows], count=count)


@router.get("/{letter_id}", response_model=DeadLetterPublic, summary="死信详情 / one dead letter")
async def get_dead_letter(conn: ConnDep, who: AdminDep, letter_id: Id64) -> DeadLetterPublic:
    """One dead letter with its payload."""
    return _letter(await fetch_one(conn, DEAD_LETTERS, who, letter_id))


@router.post("/replay", response_model=ReplayPublic, summary="重放死信 / replay dead letters")
async def replay(
    conn: ConnDep, who: AdminDep, settings: SettingsDep, body: DeadLetterReplay
) -> ReplayPublic:
    """Decode the unreplayed dead letters again against the current registry and store what
    now decodes; the others stay, with the reason they are still refused. An ingest worker does
    it (it owns the rule state, so the readings are graded, as late data where older than what
    it graded); 503 if none finishes within the statement timeout (the request stays queued)."""
    request_id = await dead_letters.request_replay(conn, who.actor, body.reason)
    try:
        result = await dead_letters.wait_for_replay(conn, request_id, settings.statement_timeout_s)
    except dead_letters.ReplayError as exc:
        raise HTTPException(503, str(exc)) from None
    return ReplayPublic(
        attempted=result.attempted,
        replayed=result.replayed,
        still_refused=dict(result.still_refused),
        readings_stored=result.readings_stored,
        readings_already_stored=result.readings_already_stored,
    )
