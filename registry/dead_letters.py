"""Asking for a dead-letter replay and waiting for its result.

A replay is carried out by an ingest worker (`ingest.replay`), which owns the rule state of its
series and so can grade the replayed readings; the API and the CLI write a request and wait for
the worker to finish it (docs/architecture.md, "Dead letters").
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

POLL_INTERVAL_S = 0.05


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a finished replay did: letters now fully stored, still refused (by current reason),
    readings stored and found stored already."""

    request_id: int
    replayed: int
    still_refused: Counter[str] = field(default_factory=Counter)
    readings_stored: int = 0
    readings_already_stored: int = 0

    @property
    def attempted(self) -> int:
        """Dead letters looked at."""
        return self.replayed + sum(self.still_refused.values())


class ReplayError(Exception):
    """The replay was not done: no worker took it in time, or the worker could not do it."""

    def __init__(self, message: str, request_id: int) -> None:
        super().__init__(message)
        self.request_id = request_id


async def request_replay(
    conn: AsyncConnection[Any], requested_by: str, reason: str | None = None
) -> int:
    """Queue a replay of the unreplayed dead letters (of one reason, or all) and commit it, so
    that an ingest worker can see it; return its id."""
    cur = await conn.execute(
        "INSERT INTO replay_requests (requested_by, reason) VALUES (%s, %s) RETURNING id",
        (requested_by, reason),
    )
    row = await cur.fetchone()
    assert row is not None
    await conn.commit()
    return int(row["id"] if isinstance(row, dict) else row[0])


async def wait_for_replay(
    conn: AsyncConnection[Any], request_id: int, timeout_s: float
) -> ReplayResult:
    """Wait until the request is done; raise ReplayError if it failed or no worker finished it
    within `timeout_s` (it then stays queued: a worker that comes up later carries it out)."""
    deadline = time.monotonic() + timeout_s
    while True:
        cur = await conn.execute(
            """SELECT state, replayed, still_refused, readings_stored, readings_already_stored,
                      error, claimed_by
               FROM replay_requests WHERE id = %s""",
            (request_id,),
        )
        row = await cur.fetchone()
        await conn.commit()
        assert row is not None, f"replay request {request_id} vanished"
        values = tuple(row.values()) if isinstance(row, dict) else tuple(row)
        state, replayed, refused, stored, already, error, worker = values
        if state == "done":
            return ReplayResult(request_id, replayed, Counter(refused), stored, already)
        if state == "failed":
            raise ReplayError(f"ingest worker {worker} could not replay: {error}", request_id)
        if time.monotonic() >= deadline:
            if state == "running":
                message = (
                    f"ingest worker {worker} is still replaying after {timeout_s:g} s; replay "
                    f"request #{request_id} goes on (see GET /dead-letters?replayed=true)"
                )
            else:
                message = (
                    f"no ingest worker took replay request #{request_id} within {timeout_s:g} s; "
                    "it stays queued (start `hazmon ingest` or `hazmon run`)"
                )
            raise ReplayError(message, request_id)
        await asyncio.sleep(POLL_INTERVAL_S)
