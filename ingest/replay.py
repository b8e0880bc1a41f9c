"""Replay dead letters once the registry is fixed (`hazmon dead-letters replay`).

Each dead letter not yet replayed is decoded again, exactly as ingest would have decoded it
when it arrived (same topic, raw bytes and receive time), but against the registry as it is
now. What decodes is stored through the same idempotent write as live ingest, in one
transaction with the dead letter's new state:

- fully decoded: `replayed_at` is set and `replay_result` says how many readings were stored;
- still refused, in whole or in part: `replayed_at` stays empty (a later replay, after a
  further fix, tries again) and `replay_result` gives the current reason and detail. The part
  that did decode is stored already; storing it again later is harmless.

Replayed readings are stored, not graded by the rules: per-series rule state has exactly one
owner, the ingest worker of the series' site (docs/scaling.md), and a replay is late data by
nature. The result text says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from hazmon.settings import Settings
from hazmon.timeutil import to_us
from hazmon.wire import Reason, parse_topic
from ingest.decode import Limits, SeriesLookup, decode_telemetry
from ingest.status import parse_status
from ingest.store import (
    DeviceStatus,
    conflicting_readings,
    copy_idempotent,
    load_lookup,
    record_device_status,
)

CHUNK = 500
"""Dead letters replayed per transaction."""


@dataclass(slots=True)
class ReplaySummary:
    """What a replay did: letters now fully stored, still refused (by current reason), readings."""

    replayed: int = 0
    still_refused: Counter[str] = field(default_factory=Counter)
    readings_stored: int = 0
    readings_already_stored: int = 0

    @property
    def attempted(self) -> int:
        """Dead letters looked at."""
        return self.replayed + sum(self.still_refused.values())


@dataclass(frozen=True, slots=True)
class _Outcome:
    """The new state of one dead letter: its result text, and the reason if still refused."""

    letter_id: int
    result: str
    refused: str | None


def replay_dead_letters(
    conn: psycopg.Connection[Any], settings: Settings, *, reason: str | None = None
) -> ReplaySummary:
    """Decode the unreplayed dead letters (of one reason, or all) against the current registry.

    Args:
        conn: a connection to the hazmon database (not in a transaction).
        settings: topic root and payload limits, as the ingest workers use them.
        reason: only dead letters stored with this reason; None for all.
    """
    lookup = load_lookup(conn, frozenset())
    conn.commit()
    limits = Limits.from_settings(settings)
    summary = ReplaySummary()
    after_id = 0
    while True:
        with conn.transaction():
            rows = conn.execute(
                """SELECT id, topic, payload, received_at FROM dead_letters
                   WHERE replayed_at IS NULL AND id > %s AND (%s::text IS NULL OR reason = %s)
                   ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED""",
                (after_id, reason, reason, CHUNK),
            ).fetchall()
            if not rows:
                return summary
            after_id = rows[-1][0]
            _replay_chunk(conn, rows, settings.topic_root, limits, lookup, summary)


def _replay_chunk(
    conn: psycopg.Connection[Any],
    rows: list[tuple[int, str, bytes, datetime]],
    root: str,
    limits: Limits,
    lookup: SeriesLookup,
    summary: ReplaySummary,
) -> None:
    parts: list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]] = []
    owners: list[NDArray[np.int64]] = []  # per reading: the index of its letter's outcome
    statuses: list[DeviceStatus] = []
    outcomes: list[_Outcome] = []
    for letter_id, topic, raw, received_at in rows:
        payload = bytes(raw)
        received_us = to_us(received_at)
        address = parse_topic(topic, root)
        if address is None or address.channel not in ("telemetry", "status"):
            result = f"still refused: {Reason.BAD_TOPIC}: {topic}"
            outcomes.append(_Outcome(letter_id, result, Reason.BAD_TOPIC))
        elif address.channel == "status":
            status = parse_status(address, payload, received_us, limits)
            if isinstance(status, DeviceStatus):
                statuses.append(status)
                outcomes.append(_Outcome(letter_id, "status recorded", None))
            else:
                result = f"still refused: {status.reason}: {status.detail}"
                outcomes.append(_Outcome(letter_id, result, status.reason))
        else:
            decoded = decode_telemetry(address, payload, received_us, limits, lookup)
            if decoded.count:
                parts.append((decoded.series_id, decoded.time_us, decoded.value))
                owners.append(np.full(decoded.count, len(outcomes)))
            stored = f"stored {decoded.count} readings"
            if decoded.rejection is None:
                result = f"{stored} (not graded: replayed data is late data)"
                outcomes.append(_Outcome(letter_id, result, None))
            else:
                rejection = decoded.rejection
                result = f"still refused: {rejection.reason}: {rejection.detail}"
                if decoded.count:
                    result = f"{stored}; {result}"
                outcomes.append(_Outcome(letter_id, result, rejection.reason))
    if parts:
        sid, t, v = (np.concatenate(column) for column in zip(*parts, strict=True))
        fresh = copy_idempotent(conn, sid, t, v)
        summary.readings_stored += int(fresh.sum())
        summary.readings_already_stored += int(len(fresh) - fresh.sum())
        conflicting = np.concatenate(owners)[conflicting_readings(conn)]
        for index, count in zip(*np.unique(conflicting, return_counts=True), strict=True):
            letter_id = outcomes[index].letter_id
            result = (
                f"still refused: {Reason.DUPLICATE_CONFLICT}: {count} readings at a "
                "(series, time) stored with another value; the stored value was kept"
            )
            outcomes[index] = _Outcome(letter_id, result, Reason.DUPLICATE_CONFLICT)
    record_device_status(conn, statuses)
    with conn.cursor() as cur:
        cur.executemany(
            """UPDATE dead_letters SET replay_result = %s,
                   replayed_at = CASE WHEN %s THEN now() END
               WHERE id = %s""",
            [(o.result, o.refused is None, o.letter_id) for o in outcomes],
        )
    for outcome in outcomes:
        if outcome.refused is None:
            summary.replayed += 1
        else:
            summary.still_refused[outcome.refused] += 1
