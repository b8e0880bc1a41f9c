"""Dead letters (死信): payloads ingest refused, with their reason and raw bytes, for admins.

Topics name sites but a refused payload may name a site that does not exist, so dead letters
are not scoped to tenants: only admins see them. Once the registry is fixed (the missing device
added, the metric configured), `POST /dead-letters/replay` decodes them again with ingest's own
replay (`ingest.replay_dead_letters`, the same as `hazmon dead-letters replay`).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict

from api.deps import ConnDep, Id64, SettingsDep
from api.query import Filters, Page, Resource, fetch_one, fetch_page, paging
from api.security import AdminDep
from hazmon.db import connect
from hazmon.wire import Reason
from ingest import replay_dead_letters

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
    """What a replay did. Replayed readings are stored, not graded (they are late data)."""

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
async def replay(who: AdminDep, settings: SettingsDep, body: DeadLetterReplay) -> ReplayPublic:
    """Decode the unreplayed dead letters again against the current registry and store what
    now decodes; the others stay, with the reason they are still refused."""

    def run() -> ReplayPublic:
        with connect(settings.database_url) as conn:
            summary = replay_dead_letters(conn, settings, reason=body.reason)
        return ReplayPublic(
            attempted=summary.attempted,
            replayed=summary.replayed,
            still_refused=dict(summary.still_refused),
            readings_stored=summary.readings_stored,
            readings_already_stored=summary.readings_already_stored,
        )

    return await run_in_threadpool(run)
