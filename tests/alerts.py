"""Alert rows written as the engine's store writes them, for tests of what hangs off them."""

from __future__ import annotations

from typing import Any

import psycopg


def open_alert(conn: psycopg.Connection[Any], grade: int, metric: str = "moment_ratio") -> int:
    """Open an alert on the first series of `metric`, with its `open` transition; return its id."""
    row = conn.execute(
        """INSERT INTO alerts (series_id, rule, grade, state, opened_at, updated_at, value,
                               threshold, message_zh, message_en)
           SELECT se.id, %s, %s, 'open', now(), now(), 1.02, 1.0,
                  '起重力矩 102%%，达到额定值', 'moment 102 %% of rated'
           FROM series se WHERE se.metric = %s ORDER BY se.id LIMIT 1 RETURNING id""",
        (metric, grade, metric),
    ).fetchone()
    assert row is not None, f"no series of metric {metric}"
    transition(conn, int(row[0]), "open", 0, grade)
    return int(row[0])


def transition(
    conn: psycopg.Connection[Any], alert_id: int, action: str, grade_from: int, grade_to: int
) -> None:
    """Record one transition of an alert (and move its grade)."""
    conn.execute(
        "UPDATE alerts SET grade = greatest(%s, 1), updated_at = now() WHERE id = %s",
        (grade_to, alert_id),
    )
    conn.execute(
        """INSERT INTO alert_transitions (alert_id, action, grade_from, grade_to, reading_at, value,
                                          threshold, message_zh, message_en)
           VALUES (%s, %s, %s, %s, now(), 1.02, 1.0, '起重力矩 102%%', 'moment 102 %%')""",
        (alert_id, action, grade_from, grade_to),
    )
