"""The people's side of alerts: acknowledging one, and re-baselining a series.

Both run on the caller's connection and inside the caller's transaction (the API's pooled
request connection, with its statement timeout), never on a connection of their own. The rule
state itself is ingest's: a re-baseline is a dated `baselines` row, which bumps the registry
version, so every ingest worker reloads and measures readings from `valid_from` against it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from hazmon.vocabulary import Grade

MAX_NOTE_CHARS = 2000
INITIAL_REASON = "initial"
"""The reason of the baseline the engine takes from a series' first reading (not a change of
the registry: migration 0007)."""
MAX_BASELINE_MAGNITUDE = 1e9
"""Largest baseline accepted, in the metric's unit (no source: a bound against garbage)."""


class AlertError(Exception):
    """An alert or baseline operation was refused; `subject_id` names the row concerned."""

    def __init__(self, message: str, subject_id: int | None = None) -> None:
        super().__init__(message)
        self.subject_id = subject_id


async def audit(
    conn: AsyncConnection[Any],
    *,
    actor: str,
    action: str,
    subject: str,
    subject_id: int | None,
    detail: dict[str, Any],
    client_addr: str | None = None,
) -> None:
    """Write one line of the audit trail in the caller's transaction."""
    await conn.execute(
        """INSERT INTO audit_log (actor, action, subject, subject_id, detail, client_addr)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (actor, action, subject, subject_id, Jsonb(detail), client_addr),
    )


async def acknowledge(
    conn: AsyncConnection[Any],
    alert_id: int,
    actor: str,
    note: str,
    *,
    client_addr: str | None = None,
) -> bool:
    """Acknowledge an open alert on behalf of a person, with a note; record the transition.

    An acknowledged alert that later escalates becomes open again and needs a new
    acknowledgement; de-escalation keeps the acknowledgement.

    Args:
        conn: the caller's connection (the caller commits).
        alert_id: `alerts.id`.
        actor: who acknowledges (a person's account name), not empty.
        note: what they say (e.g. the action taken), not empty, at most MAX_NOTE_CHARS.
        client_addr: where the request came from, for the audit trail.

    Returns:
        True if the alert was acknowledged now, False if it already was.

    Raises:
        AlertError: no such alert, the alert is resolved, or actor/note is empty.
    """
    if not actor.strip() or not note.strip():
        raise AlertError("an acknowledgement needs a person and a note", alert_id)
    if len(note) > MAX_NOTE_CHARS:
        raise AlertError(f"a note is at most {MAX_NOTE_CHARS} characters", alert_id)
    cur = await conn.execute(
        "SELECT state, grade FROM alerts WHERE id = %s FOR UPDATE", (alert_id,)
    )
    row = await cur.fetchone()
    if row is None:
        raise AlertError(f"no alert {alert_id}", alert_id)
    state, grade = _values(row, "state", "grade")
    if state == "resolved":
        raise AlertError(f"alert {alert_id} is resolved", alert_id)
    if state == "acknowledged":
        return False
    await conn.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_by = %s, acknowledged_at = now(),"
        " ack_note = %s WHERE id = %s",
        (actor, note, alert_id),
    )
    await conn.execute(
        "INSERT INTO alert_transitions (alert_id, action, grade_from, grade_to, reading_at,"
        " message_zh, message_en, actor) VALUES (%s, 'acknowledge', %s, %s, now(), %s, %s, %s)",
        (
            alert_id,
            grade,
            grade,
            f"{actor} 已确认：{note}",
            f"acknowledged by {actor}: {note}",
            actor,
        ),
    )
    await audit(
        conn,
        actor=actor,
        action="alert.acknowledge",
        subject="alert",
        subject_id=alert_id,
        detail={"grade": Grade(int(grade)).code, "note": note},
        client_addr=client_addr,
    )
    return True


async def rebaseline(
    conn: AsyncConnection[Any],
    series_id: int,
    value: float,
    valid_from: datetime,
    reason: str,
    actor: str,
    *,
    client_addr: str | None = None,
) -> int:
    """Re-baseline a series: readings from `valid_from` are measured against `value`.

    A dated record (the earlier baselines stay and keep applying to readings before it), and an
    audit line. Ingest workers pick it up at their next registry refresh (the baselines row
    bumps the registry version).

    Args:
        conn: the caller's connection (the caller commits).
        series_id: `series.id`.
        value: the new baseline in the metric's unit (finite, within ±MAX_BASELINE_MAGNITUDE).
        valid_from: from when it applies (aware).
        reason: why (a construction stage, a sensor replaced ...), not empty.
        actor: who sets it.
        client_addr: where the request came from, for the audit trail.

    Returns:
        The `baselines.id` of the record.

    Raises:
        AlertError: no such series, a value that is not finite or out of bounds, an empty reason.
    """
    if not math.isfinite(value) or abs(value) > MAX_BASELINE_MAGNITUDE:
        raise AlertError(
            f"a baseline must be finite and within ±{MAX_BASELINE_MAGNITUDE:g}", series_id
        )
    if not reason.strip() or not actor.strip():
        raise AlertError("a re-baseline needs a reason and a person", series_id)
    if reason.strip().lower() == INITIAL_REASON:
        raise AlertError(
            f"reason {INITIAL_REASON!r} is kept for a series' first reading", series_id
        )
    if valid_from.tzinfo is None:
        raise AlertError("valid_from needs a time zone", series_id)
    cur = await conn.execute("SELECT 1 FROM series WHERE id = %s", (series_id,))
    if await cur.fetchone() is None:
        raise AlertError(f"no series {series_id}", series_id)
    cur = await conn.execute(
        """INSERT INTO baselines (series_id, value, valid_from, reason, set_by)
           VALUES (%s, %s, %s, %s, %s) RETURNING id""",
        (series_id, value, valid_from, reason, actor),
    )
    row = await cur.fetchone()
    assert row is not None
    (baseline_id,) = _values(row, "id")
    await audit(
        conn,
        actor=actor,
        action="series.rebaseline",
        subject="series",
        subject_id=series_id,
        detail={
            "baseline_id": int(baseline_id),
            "value": value,
            "valid_from": valid_from.isoformat(),
            "reason": reason,
        },
        client_addr=client_addr,
    )
    return int(baseline_id)


def _values(row: Any, *names: str) -> tuple[Any, ...]:
    """Columns of a row whether the connection returns tuples or dicts."""
    if isinstance(row, dict):
        return tuple(row[n] for n in names)
    return tuple(row)
