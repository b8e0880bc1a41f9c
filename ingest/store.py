"""The SQL of ingest's data: the registry lookup, idempotent batch writes, dead letters, device
status and the replay requests (the rule state's SQL is ingest/alerts.py)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg.types.json import Jsonb

from hazmon.catalogue import catalogue
from hazmon.timeutil import to_datetime
from ingest.decode import DeviceSeries, SeriesLookup
from ingest.records import DeadLetter, DeviceStatus, ReplayRequest

_EPOCH_TO_PG_US = 946_684_800_000_000  # 2000-01-01 (PostgreSQL's epoch) in Unix microseconds


def registry_version(conn: psycopg.Connection[Any]) -> int:
    """The registry's change counter (bumped by triggers on every registry table)."""
    row = conn.execute("SELECT version FROM registry_version").fetchone()
    return int(row[0]) if row else 0


def load_lookup(conn: psycopg.Connection[Any], site_codes: frozenset[str]) -> SeriesLookup:
    """Build the (site, device, metric) → series id map for the given sites (empty = all)."""
    rows = conn.execute(
        """SELECT s.code, d.code, d.id, w.hazard_kind, se.metric, se.id
           FROM devices d
           JOIN sites s ON s.id = d.site_id
           JOIN works w ON w.id = d.work_id
           LEFT JOIN series se ON se.device_id = d.id
           WHERE cardinality(%s::text[]) = 0 OR s.code = ANY(%s::text[])""",
        (list(site_codes), list(site_codes)),
    ).fetchall()
    series: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    device_meta: dict[tuple[str, str], tuple[int, str]] = {}
    device_sites: dict[str, set[str]] = defaultdict(set)
    for site_code, device_code, device_id, kind, metric, series_id in rows:
        device_meta[(site_code, device_code)] = (device_id, kind)
        device_sites[device_code].add(site_code)
        if metric is not None:
            series[(site_code, device_code)][metric] = series_id
    all_sites = {str(r[0]) for r in conn.execute("SELECT code FROM sites")}
    owned = frozenset(all_sites if not site_codes else all_sites & site_codes)
    devices = {
        key: DeviceSeries(device_id, kind, series.get(key, {}))
        for key, (device_id, kind) in device_meta.items()
    }
    return SeriesLookup(
        devices=devices,
        sites=owned,
        device_sites={code: frozenset(s) for code, s in device_sites.items()},
        metrics_by_kind={code: frozenset(kind.metrics) for code, kind in catalogue().items()},
    )


class DuplicateReadingError(Exception):
    """A direct COPY hit the unique index on (series_id, time): some readings are stored already.

    The transaction is aborted; the caller rolls it back and writes the batch again with
    `copy_idempotent`.
    """


def copy_direct(
    conn: psycopg.Connection[Any],
    series_id: NDArray[np.int64],
    time_us: NDArray[np.int64],
    value: NDArray[np.float64],
) -> None:
    """Binary COPY straight into the hypertable: the fast path, for batches of new readings.

    One round trip, no savepoint (each costs a round trip, and round trips are what a loaded
    2-core machine makes slow). Raises `DuplicateReadingError` if any reading is stored already
    (a redelivery after a crash, or one (series, time) twice in the batch).
    """
    if len(series_id) == 0:
        return
    try:
        with (
            conn.cursor() as cur,
            cur.copy("COPY readings (time, series_id, value) FROM STDIN (FORMAT BINARY)") as cp,
        ):
            cp.write(_records(series_id, time_us, value))
    except psycopg.errors.UniqueViolation as exc:
        raise DuplicateReadingError(str(exc.diag.message_detail or exc)) from None


def copy_idempotent(
    conn: psycopg.Connection[Any],
    series_id: NDArray[np.int64],
    time_us: NDArray[np.int64],
    value: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """Store readings idempotently on (series_id, time); return a mask of those that were new.

    The staged path: binary COPY into a temporary table, then INSERT … ON CONFLICT DO NOTHING,
    which says which rows were new, so the rules never grade a reading twice. Of several
    readings of one (series, time) in a batch the first one wins. Runs in the caller's
    transaction.
    """
    n = len(series_id)
    if n == 0:
        return np.zeros(0, dtype=np.bool_)
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS readings_staging "
            "(time timestamptz, series_id int, value float8, idx int) ON COMMIT DELETE ROWS"
        )
        cur.execute("TRUNCATE readings_staging")
        with cur.copy(
            "COPY readings_staging (time, series_id, value, idx) FROM STDIN (FORMAT BINARY)"
        ) as cp:
            cp.write(_records(series_id, time_us, value, with_index=True))
        cur.execute(
            """WITH firsts AS (
                   SELECT DISTINCT ON (series_id, time) time, series_id, value, idx
                   FROM readings_staging ORDER BY series_id, time, idx),
               inserted AS (
                   INSERT INTO readings (time, series_id, value)
                   SELECT time, series_id, value FROM firsts
                   ON CONFLICT DO NOTHING
                   RETURNING series_id, time)
               SELECT f.idx FROM firsts f JOIN inserted USING (series_id, time)"""
        )
        fresh_idx = np.array([row[0] for row in cur.fetchall()], dtype=np.int64)
    fresh = np.zeros(n, dtype=np.bool_)
    fresh[fresh_idx] = True
    return fresh


def conflicting_readings(conn: psycopg.Connection[Any]) -> NDArray[np.int64]:
    """Positions in the batch just written by `copy_idempotent` of readings whose (series, time)
    is stored with another value (earlier, or by a reading before it in the same batch).

    Call in the same transaction, after `copy_idempotent`. Time bounds let TimescaleDB look
    only at the chunks the batch touches.
    """
    bounds = conn.execute("SELECT min(time), max(time) FROM readings_staging").fetchone()
    if bounds is None or bounds[0] is None:
        return np.empty(0, dtype=np.int64)
    rows = conn.execute(
        """SELECT s.idx FROM readings_staging s
           JOIN readings r ON r.series_id = s.series_id AND r.time = s.time
           WHERE r.time BETWEEN %s AND %s AND r.value <> s.value
           ORDER BY s.idx""",
        bounds,
    ).fetchall()
    return np.array([row[0] for row in rows], dtype=np.int64)


_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_FIELDS = [
    ("len_time", ">i4"),
    ("time", ">i8"),
    ("len_series", ">i4"),
    ("series", ">i4"),
    ("len_value", ">i4"),
    ("value", ">f8"),
]
_ROW = np.dtype([("nfields", ">i2"), *_FIELDS])
_ROW_INDEXED = np.dtype([("nfields", ">i2"), *_FIELDS, ("len_idx", ">i4"), ("idx", ">i4")])


def _records(
    series_id: NDArray[np.int64],
    time_us: NDArray[np.int64],
    value: NDArray[np.float64],
    *,
    with_index: bool = False,
) -> bytes:
    """The whole batch in PostgreSQL's binary COPY format, built with numpy in one pass.

    With `with_index`, a fourth int column holds each row's position in the batch.
    """
    rows = np.empty(len(series_id), dtype=_ROW_INDEXED if with_index else _ROW)
    rows["nfields"] = 4 if with_index else 3
    rows["len_time"] = 8
    rows["time"] = time_us - _EPOCH_TO_PG_US
    rows["len_series"] = 4
    rows["series"] = series_id
    rows["len_value"] = 8
    rows["value"] = value
    if with_index:
        rows["len_idx"] = 4
        rows["idx"] = np.arange(len(series_id))
    return _BINARY_HEADER + rows.tobytes() + b"\xff\xff"


def insert_dead_letters(conn: psycopg.Connection[Any], letters: Sequence[DeadLetter]) -> None:
    """Store refused payloads with their reason and raw bytes.

    A redelivered letter is skipped if a dead letter with the same topic and bytes exists: it
    is the same message again, after a crash between commit and acknowledgement.
    """
    if not letters:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO dead_letters (received_at, topic, reason, detail, payload)
               SELECT %(at)s, %(topic)s, %(reason)s, %(detail)s, %(payload)s
               WHERE NOT %(redelivered)s OR NOT EXISTS (
                   SELECT 1 FROM dead_letters
                   WHERE topic = %(topic)s AND md5(payload) = md5(%(payload)s)
                     AND payload = %(payload)s
                     -- a payload kept as its prefix is told apart by the size and hash in
                     -- its detail
                     AND (reason <> 'payload_too_large' OR detail = %(detail)s))""",
            [
                {
                    "at": to_datetime(d.received_us),
                    "topic": d.topic,
                    "reason": d.reason,
                    "detail": d.detail,
                    "payload": d.payload,
                    "redelivered": d.redelivered,
                }
                for d in letters
            ],
        )


def record_device_status(conn: psycopg.Connection[Any], reports: Sequence[DeviceStatus]) -> None:
    """Mark devices online/offline as their gateways report it; an older report never wins."""
    if not reports:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO device_status (device_id, online, changed_at)
               SELECT d.id, %s, %s FROM devices d JOIN sites s ON s.id = d.site_id
               WHERE s.code = %s AND d.code = %s
               ON CONFLICT (device_id) DO UPDATE
               SET online = EXCLUDED.online, changed_at = EXCLUDED.changed_at
               WHERE device_status.changed_at <= EXCLUDED.changed_at""",
            [(r.online, to_datetime(r.at_us), r.site_code, r.device_code) for r in reports],
        )


# --- dead-letter replay requests (ingest/replay.py) ----------------------------------------


def claim_replay_request(conn: psycopg.Connection[Any], worker: str) -> ReplayRequest | None:
    """Take the oldest pending or running replay request no other worker holds right now (in
    the caller's transaction, which keeps it locked)."""
    row = conn.execute(
        """SELECT id, reason, after_id, still_refused FROM replay_requests
           WHERE state IN ('pending', 'running') ORDER BY id LIMIT 1
           FOR UPDATE SKIP LOCKED"""
    ).fetchone()
    if row is None:
        return None
    conn.execute(
        """UPDATE replay_requests SET state = 'running', claimed_by = %s,
               started_at = coalesce(started_at, now())
           WHERE id = %s""",
        (worker, row[0]),
    )
    return ReplayRequest(int(row[0]), row[1], int(row[2]), Counter(row[3]))


def fail_replay_request(conn: psycopg.Connection[Any], request_id: int, error: str) -> None:
    """Give up a request the worker cannot carry out, with the cause (the caller commits)."""
    conn.execute(
        """UPDATE replay_requests SET state = 'failed', error = %s, finished_at = now()
           WHERE id = %s""",
        (error[:1000], request_id),
    )


def finish_replay_request(conn: psycopg.Connection[Any], request_id: int) -> None:
    """Mark a request done: no letter is left after its place."""
    conn.execute(
        "UPDATE replay_requests SET state = 'done', finished_at = now() WHERE id = %s",
        (request_id,),
    )


def advance_replay_request(
    conn: psycopg.Connection[Any],
    request: ReplayRequest,
    *,
    after_id: int,
    replayed: int,
    still_refused: Counter[str],
    readings_stored: int,
    readings_already_stored: int,
) -> None:
    """Move a request's place past a chunk and add the chunk's counts (`still_refused` is the
    new total)."""
    conn.execute(
        """UPDATE replay_requests SET after_id = %s, replayed = replayed + %s,
               still_refused = %s, readings_stored = readings_stored + %s,
               readings_already_stored = readings_already_stored + %s
           WHERE id = %s""",
        (
            after_id,
            replayed,
            Jsonb(dict(still_refused)),
            readings_stored,
            readings_already_stored,
            request.id,
        ),
    )


def unreplayed_letters(
    conn: psycopg.Connection[Any], after_id: int, reason: str | None, limit: int
) -> list[tuple[int, str, bytes, datetime]]:
    """The next dead letters not replayed yet (of one reason, or all), locked for the caller."""
    rows = conn.execute(
        """SELECT id, topic, payload, received_at FROM dead_letters
           WHERE replayed_at IS NULL AND id > %s AND (%s::text IS NULL OR reason = %s)
           ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED""",
        (after_id, reason, reason, limit),
    ).fetchall()
    return [(int(r[0]), str(r[1]), bytes(r[2]), r[3]) for r in rows]


def record_replay_results(
    conn: psycopg.Connection[Any], results: Sequence[tuple[int, str, bool]]
) -> None:
    """Each replayed letter's result text (letter id, text, fully stored?); a fully stored one
    is marked replayed, the others stay replayable."""
    if not results:
        return
    with conn.cursor() as cur:
        cur.executemany(
            """UPDATE dead_letters SET replay_result = %s,
                   replayed_at = CASE WHEN %s THEN now() END
               WHERE id = %s""",
            [(text, done, letter_id) for letter_id, text, done in results],
        )
