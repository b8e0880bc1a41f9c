"""The deadline sweep: reminders, overdue marks, escalations and missed inspections, on a clock.

`run_sweep` is one pass in one transaction (`hazmon registry sweep`, for cron); `sweep_forever`
repeats it every `interval_s` until stopped (`hazmon registry sweep --every-s N`, the child that
`hazmon run` supervises), reconnecting with capped, jittered backoff when the database is away.
Both only write `hazard_events` (remind, overdue, escalate) and `inspection_events`
(inspection_missed) rows, each once; the notifier turns them into messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from hazmon.backoff import Backoff
from registry.hazard_store import sweep_deadlines
from registry.inspection_store import sweep_missed
from registry.lifecycle import DEFAULT_POLICY, DeadlinePolicy

log = logging.getLogger(__name__)
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one pass wrote, by event action."""

    remind: int
    overdue: int
    escalate: int
    inspection_missed: int

    @property
    def total(self) -> int:
        """Events written."""
        return self.remind + self.overdue + self.escalate + self.inspection_missed


async def run_sweep(
    conn: psycopg.AsyncConnection[Any],
    *,
    now: datetime,
    policy: DeadlinePolicy = DEFAULT_POLICY,
) -> SweepResult:
    """One pass at `now`, in one transaction on `conn`: running it twice writes nothing new."""
    async with conn.transaction():
        hazards = await sweep_deadlines(conn, now=now, policy=policy)
        missed = await sweep_missed(conn, now=now)
    return SweepResult(hazards.remind, hazards.overdue, hazards.escalate, missed)


async def sweep_forever(
    database_url: str,
    *,
    interval_s: float,
    stopped: Callable[[], bool],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    backoff: Backoff | None = None,
) -> None:
    """Sweep every `interval_s` seconds until `stopped()`; survive the database going away."""
    backoff = backoff or Backoff(initial_s=1.0, max_s=60.0)
    while not stopped():
        try:
            async with await psycopg.AsyncConnection.connect(
                database_url, connect_timeout=CONNECT_TIMEOUT_S
            ) as conn:
                backoff.reset()
                while not stopped():
                    result = await run_sweep(conn, now=clock())
                    if result.total:
                        log.info("sweep wrote events", extra=vars_of(result))
                    await _sleep(interval_s, stopped)
        except psycopg.OperationalError as exc:
            delay = backoff.next_delay_s()
            log.warning(
                "sweep: database unavailable; retrying",
                extra={"error": type(exc).__name__, "retry_in_s": round(delay, 2)},
            )
            await _sleep(delay, stopped)


def vars_of(result: SweepResult) -> dict[str, int]:
    """A result's counts as log fields."""
    return {
        "remind": result.remind,
        "overdue": result.overdue,
        "escalate": result.escalate,
        "inspection_missed": result.inspection_missed,
    }


async def _sleep(seconds: float, stopped: Callable[[], bool]) -> None:
    """Sleep up to `seconds`, waking every 0.2 s to see whether the sweep was stopped (the flag
    is the CLI's threading.Event, set from a signal handler, not an asyncio.Event)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not stopped() and loop.time() < end:  # noqa: ASYNC110
        await asyncio.sleep(min(0.2, max(0.0, end - loop.time())))
