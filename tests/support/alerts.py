"""Alert transitions recorded as ingest records them (`ingest.alerts.record`), for the tests of
what hangs off them: hazards, notifications."""

from __future__ import annotations

from typing import Any

import psycopg

from hazmon.timeutil import now_us
from hazmon.vocabulary import EngineAction, Grade
from ingest.alerts import record
from rules import Transition


def open_alert(conn: psycopg.Connection[Any], grade: int, metric: str = "moment_ratio") -> int:
    """Open an alert on the first series of `metric` (its rule named after the metric); return
    its id."""
    row = conn.execute(
        "SELECT id FROM series WHERE metric = %s ORDER BY id LIMIT 1", (metric,)
    ).fetchone()
    assert row is not None, f"no series of metric {metric}"
    _record(conn, int(row[0]), metric, "open", 0, grade)
    found = conn.execute(
        "SELECT id FROM alerts WHERE series_id = %s AND rule = %s AND state <> 'resolved'",
        (int(row[0]), metric),
    ).fetchone()
    assert found is not None
    return int(found[0])


def transition(
    conn: psycopg.Connection[Any],
    alert_id: int,
    action: EngineAction,
    grade_from: int,
    grade_to: int,
) -> None:
    """Record one more transition of an open alert."""
    row = conn.execute("SELECT series_id, rule FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    assert row is not None, f"no alert {alert_id}"
    _record(conn, int(row[0]), str(row[1]), action, grade_from, grade_to)


def _record(
    conn: psycopg.Connection[Any],
    series_id: int,
    rule: str,
    action: EngineAction,
    grade_from: int,
    grade_to: int,
) -> None:
    t = Transition(
        series_id=series_id,
        rule=rule,
        action=action,
        grade_from=Grade(grade_from),
        grade_to=Grade(grade_to),
        time_us=now_us(),
        value=1.02,
        threshold=1.0,
        message_zh="起重力矩 102%",
        message_en="moment 102 %",
    )
    record(conn, [t])
