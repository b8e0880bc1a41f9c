"""The two write paths of ingest/store.py against the real hypertable."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import psycopg
import pytest

from ingest.records import DeadLetter
from ingest.store import (
    DuplicateReadingError,
    copy_direct,
    copy_idempotent,
    insert_dead_letters,
)

T0_US = 1_790_000_000_000_000


def _columns(
    rows: list[tuple[int, int, float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sid, t, v = zip(*rows, strict=True)
    return np.array(sid, np.int64), np.array(t, np.int64) + T0_US, np.array(v, np.float64)


def _stored(conn: psycopg.Connection) -> list[tuple[int, int, float]]:
    rows = conn.execute(
        """SELECT series_id, (extract(epoch FROM time) * 1000000)::bigint, value
           FROM readings ORDER BY 1, 2"""
    ).fetchall()
    return [(s, t - T0_US, v) for s, t, v in rows]


def test_direct_copy_stores_exact_times_and_refuses_a_stored_reading(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        with conn.transaction():
            copy_direct(conn, *_columns([(1, 0, 1.5), (1, 1, 2.5), (2, 0, -3.25)]))
        assert _stored(conn) == [(1, 0, 1.5), (1, 1, 2.5), (2, 0, -3.25)]
        with pytest.raises(DuplicateReadingError), conn.transaction():
            copy_direct(conn, *_columns([(3, 0, 9.0), (1, 1, 2.5)]))
        assert _stored(conn) == [(1, 0, 1.5), (1, 1, 2.5), (2, 0, -3.25)], "not rolled back"
        with pytest.raises(DuplicateReadingError), conn.transaction():
            copy_direct(conn, *_columns([(4, 0, 1.0), (4, 0, 1.0)]))  # twice in one batch


def test_idempotent_copy_says_which_readings_were_new_and_the_first_wins(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        with conn.transaction():
            copy_direct(conn, *_columns([(1, 0, 1.0), (1, 1, 2.0)]))
        batch = [(1, 0, 1.0), (1, 2, 3.0), (1, 1, 2.0), (2, 5, 7.0), (2, 5, 8.0), (1, 3, 4.0)]
        with conn.transaction():
            fresh = copy_idempotent(conn, *_columns(batch))
        assert fresh.tolist() == [False, True, False, True, False, True]
        assert _stored(conn) == [(1, 0, 1.0), (1, 1, 2.0), (1, 2, 3.0), (1, 3, 4.0), (2, 5, 7.0)]
        with conn.transaction():
            again = copy_idempotent(conn, *_columns(batch))
        assert not again.any()
        empty = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
        with conn.transaction():
            assert copy_idempotent(conn, *empty).size == 0
            copy_direct(conn, *empty)


def test_a_redelivered_dead_letter_is_stored_once_a_resent_one_again(db_url: str) -> None:
    letter = DeadLetter("r/S1/D1/telemetry", "invalid_json", "line 1", b'{"ts": ', T0_US)

    def count() -> int:
        row = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        return int(row[0]) if row else 0

    with psycopg.connect(db_url) as conn:
        with conn.transaction():
            insert_dead_letters(conn, [letter])
            # The same message again after a crash before its ack (MQTT DUP flag): not stored.
            insert_dead_letters(conn, [replace(letter, redelivered=True)])
        assert count() == 1
        with conn.transaction():
            insert_dead_letters(conn, [letter])  # the gateway sent the same bytes again
        assert count() == 2
        with conn.transaction():
            insert_dead_letters(conn, [replace(letter, payload=b"{", redelivered=True)])
        assert count() == 3
