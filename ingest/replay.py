"""Replay dead letters once the registry is fixed: the ingest worker's side of a replay request.

`POST /dead-letters/replay` and `hazmon dead-letters replay` queue a request
(`registry.dead_letters`); the worker takes it between its live batches and works through the
unreplayed letters (of one reason, or all) in chunks. Each letter is decoded again exactly as it
was when it arrived (same topic, raw bytes and receive time) but against the registry as it is
now. What decodes is stored through the same idempotent write as live ingest and graded by the
worker's own rule engine (readings older than what it graded already are late data), in one
transaction with the letters' new state and the request's counts:

- fully decoded: `replayed_at` is set and `replay_result` says how many readings were stored;
- still refused, in whole or in part: `replayed_at` stays empty (a later replay, after a
  further fix, tries again) and `replay_result` gives the current reason and detail. The part
  that did decode is stored already; storing it again later is harmless.

A worker of a site partition replays the letters of its own sites only (their rule state is
its); letters naming other sites are left for their worker (docs/scaling.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from hazmon.timeutil import to_us
from hazmon.wire import Reason, parse_topic
from ingest import store
from ingest.decode import Limits, SeriesLookup, decode_telemetry
from ingest.records import DeviceStatus, ReplayRequest
from ingest.status import parse_status
from ingest.store import (
    conflicting_readings,
    copy_idempotent,
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


Grader = Callable[[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]], None]
"""Grades newly stored readings (series id, time µs, value) in the caller's transaction."""


def replay_next_chunk(
    conn: psycopg.Connection[Any],
    request: ReplayRequest,
    *,
    root: str,
    limits: Limits,
    lookup: SeriesLookup,
    owned_sites: Collection[str],
    grade: Grader,
) -> bool:
    """Replay the next chunk of a claimed request in the caller's transaction; True when the
    request is done (no letter left after its place).

    Args:
        conn: the worker's connection, in the transaction that claimed the request.
        request: as claimed.
        root: the topic root.
        limits: the worker's payload limits.
        lookup: the worker's registry lookup (its sites).
        owned_sites: the site codes of the worker's partition; empty: every site.
        grade: grades the readings this chunk stored for the first time.
    """
    rows = store.unreplayed_letters(conn, request.after_id, request.reason, CHUNK)
    if not rows:
        store.finish_replay_request(conn, request.id)
        return True
    mine = [r for r in rows if _owned(r[1], root, owned_sites)]
    summary = ReplaySummary()
    _replay_chunk(conn, mine, root, limits, lookup, summary, grade)
    store.advance_replay_request(
        conn,
        request,
        after_id=int(rows[-1][0]),
        replayed=summary.replayed,
        still_refused=request.still_refused + summary.still_refused,
        readings_stored=summary.readings_stored,
        readings_already_stored=summary.readings_already_stored,
    )
    return False


def _owned(topic: str, root: str, owned_sites: Collection[str]) -> bool:
    """Whether a letter is this worker's to replay: every letter, unless the worker owns a
    partition of sites and the topic names another one."""
    if not owned_sites:
        return True
    address = parse_topic(topic, root)
    return address is not None and address.site_code in owned_sites


def _replay_chunk(
    conn: psycopg.Connection[Any],
    rows: list[tuple[int, str, bytes, datetime]],
    root: str,
    limits: Limits,
    lookup: SeriesLookup,
    summary: ReplaySummary,
    grade: Grader,
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
                result = f"{stored} and graded (older than the series' newest: as late data)"
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
        if fresh.any():
            grade(sid[fresh], t[fresh], v[fresh])
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
    store.record_replay_results(
        conn, [(o.letter_id, o.result, o.refused is None) for o in outcomes]
    )
    for outcome in outcomes:
        if outcome.refused is None:
            summary.replayed += 1
        else:
            summary.still_refused[outcome.refused] += 1
