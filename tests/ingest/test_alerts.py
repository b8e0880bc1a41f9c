"""The alert store against the real database: record, restore at restart, acknowledge."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import psycopg
import pytest

from ingest import alerts as alertstore
from registry import alerts as registry_alerts
from rules import Batch, Grade
from tests.support.registry_rows import T0_US, DeviceSpec, make_registry, store_readings

S = 1_000_000


def crane(conn: psycopg.Connection[Any]) -> int:
    series = make_registry(conn, [DeviceSpec("CR1", "tower_crane", ["moment_ratio"], {}, 1.0)])
    conn.commit()
    return series[0].series_id


def batch(sid: int, values: list[float], start_s: int = 0) -> Batch:
    n = len(values)
    return Batch(
        np.full(n, sid, dtype=np.int64),
        T0_US + (start_s + np.arange(n, dtype=np.int64)) * S,
        np.array(values, dtype=np.float64),
    )


def acknowledge(conn: psycopg.Connection[Any], alert_id: int, actor: str, note: str) -> bool:
    """`registry.alerts.acknowledge` on a connection of its own, committed."""

    async def run() -> bool:
        async with await psycopg.AsyncConnection.connect(conn.info.dsn) as own:
            return await registry_alerts.acknowledge(own, alert_id, actor, note)

    return asyncio.run(run())


def ingest(conn: psycopg.Connection[Any], engine: Any, b: Batch) -> list[Any]:
    store_readings(conn, b)
    out = engine.evaluate(b, int(b.time_us.max()))
    alertstore.record(conn, out)
    conn.commit()
    return list(out)


def alerts(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT series_id, rule, grade, state FROM alerts ORDER BY id").fetchall()


def test_record_opens_escalates_and_resolves_one_alert(conn: psycopg.Connection[Any]) -> None:
    sid = crane(conn)
    engine = alertstore.load_engine(conn)
    out = ingest(conn, engine, batch(sid, [0.5, 0.92, 0.93, 1.05, 0.5, 0.5, 0.5]))
    assert [t.action for t in out] == ["open", "escalate", "resolve"]
    assert alerts(conn) == [(sid, "moment_ratio", 4, "resolved")]
    rows = conn.execute(
        "SELECT action, grade_from, grade_to, value, threshold, message_zh, message_en"
        " FROM alert_transitions ORDER BY id"
    ).fetchall()
    assert [r[:3] for r in rows] == [("open", 0, 2), ("escalate", 2, 4), ("resolve", 4, 0)]
    assert rows[1][3:5] == (1.05, 1.0)
    assert "额定起重力矩" in rows[1][5]
    assert "rated moment" in rows[1][6]


def test_readings_milliseconds_apart_give_one_open_alert(conn: psycopg.Connection[Any]) -> None:
    sid = crane(conn)
    engine = alertstore.load_engine(conn)
    n = 50
    b = Batch(
        np.full(n, sid, dtype=np.int64),
        T0_US + np.arange(n, dtype=np.int64) * 1000,
        np.full(n, 0.95),
    )
    ingest(conn, engine, b)
    assert alerts(conn) == [(sid, "moment_ratio", 2, "open")]


def test_restart_neither_reopens_nor_forgets(conn: psycopg.Connection[Any]) -> None:
    sid = crane(conn)
    engine = alertstore.load_engine(conn)
    ingest(conn, engine, batch(sid, [0.95, 0.96, 0.5]))  # open, then one normal of three
    restarted = alertstore.load_engine(conn)
    assert restarted.open_alerts() == {(sid, "moment_ratio"): Grade.YELLOW}
    # still over: no new open; two more normals resolve it (the first normal was replayed)
    assert ingest(conn, restarted, batch(sid, [0.97], 3)) == []
    out = ingest(conn, restarted, batch(sid, [0.5, 0.5, 0.5], 4))
    assert [t.action for t in out] == ["resolve"]
    assert len(alerts(conn)) == 1


def test_restart_restores_partial_normal_run(conn: psycopg.Connection[Any]) -> None:
    sid = crane(conn)
    engine = alertstore.load_engine(conn)
    ingest(conn, engine, batch(sid, [0.95, 0.5, 0.5]))  # two of three normals
    restarted = alertstore.load_engine(conn)
    out = ingest(conn, restarted, batch(sid, [0.5], 3))
    assert [t.action for t in out] == ["resolve"]


def test_acknowledge_needs_a_note_and_escalation_reopens(conn: psycopg.Connection[Any]) -> None:
    sid = crane(conn)
    engine = alertstore.load_engine(conn)
    ingest(conn, engine, batch(sid, [0.95]))
    row = conn.execute("SELECT id FROM alerts").fetchone()
    assert row is not None
    alert_id = int(row[0])
    with pytest.raises(registry_alerts.AlertError):
        acknowledge(conn, alert_id, "zhang.san", " ")
    assert acknowledge(conn, alert_id, "zhang.san", "已通知司机停止吊装")
    assert not acknowledge(conn, alert_id, "zhang.san", "again")
    assert alerts(conn) == [(sid, "moment_ratio", 2, "acknowledged")]
    ingest(conn, engine, batch(sid, [1.02], 1))
    assert alerts(conn) == [(sid, "moment_ratio", 4, "open")]
    actions = [
        r[0] for r in conn.execute("SELECT action FROM alert_transitions ORDER BY id").fetchall()
    ]
    assert actions == ["open", "acknowledge", "escalate"]
    with pytest.raises(registry_alerts.AlertError):
        acknowledge(conn, 999_999, "zhang.san", "note")


def test_late_readings_attach_to_the_alert_of_their_time_and_never_reopen(
    conn: psycopg.Connection[Any],
) -> None:
    sid = crane(conn)
    engine = alertstore.load_engine(conn)
    # open at 10 s, resolved at 40 s (three normal readings after it)
    ingest(
        conn,
        engine,
        batch(sid, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.95, 0.5, 0.5, 0.5], 0),
    )
    assert alerts(conn) == [(sid, "moment_ratio", 2, "resolved")]
    # a buffered flush: 11.5 s lies inside that alert, 2.5 s before it
    late = Batch(
        np.array([sid, sid], dtype=np.int64),
        T0_US + np.array([11_500_000, 2_500_000], dtype=np.int64),
        np.array([1.05, 0.92]),
    )
    out = ingest(conn, engine, late)
    assert [(t.action, int(t.grade_to)) for t in out] == [("late", 4)]
    rows = conn.execute(
        "SELECT a.id, a.state, t.action, t.grade_to FROM alert_transitions t"
        " JOIN alerts a ON a.id = t.alert_id WHERE t.action = 'late'"
    ).fetchall()
    assert len(rows) == 1
    assert rows[0][1:] == ("resolved", "late", 4)
    assert conn.execute("SELECT count(*) FROM alerts WHERE state <> 'resolved'").fetchone() == (0,)
    # a late reading outside any alert is kept as an alert created resolved
    out = ingest(
        conn,
        engine,
        Batch(
            np.array([sid], dtype=np.int64),
            np.array([T0_US + 3_000_000], dtype=np.int64),
            np.array([1.2]),
        ),
    )
    assert [t.action for t in out] == ["late"]
    assert alerts(conn) == [
        (sid, "moment_ratio", 2, "resolved"),
        (sid, "moment_ratio", 4, "resolved"),
    ]


def test_initial_baseline_is_stored_and_used_after_restart(
    conn: psycopg.Connection[Any],
) -> None:
    (pit,) = make_registry(
        conn,
        [
            DeviceSpec(
                "PIT9",
                "excavation",
                ["top_disp_h_mm"],
                {"pit_grade": 1, "support_type": "bored_pile"},
                3600.0,
            )
        ],
    )
    conn.commit()
    engine = alertstore.load_engine(conn)
    ingest(conn, engine, batch(pit.series_id, [100.0, 101.0], 0))
    stored = conn.execute("SELECT value, reason, set_by FROM baselines").fetchall()
    assert stored == [(100.0, "initial", "engine")]
    # an older reading arrives late; after a restart the baseline is still the first one
    ingest(
        conn,
        engine,
        Batch(
            np.array([pit.series_id], dtype=np.int64),
            np.array([T0_US - 3_600_000_000], dtype=np.int64),
            np.array([90.0]),
        ),
    )
    restarted = alertstore.load_engine(conn)
    assert restarted.baseline(pit.series_id, T0_US + 5 * S) == 100.0
    out = ingest(conn, restarted, batch(pit.series_id, [115.0], 5))
    assert [(t.rule, t.action, int(t.grade_to)) for t in out] == [("wall_top_h", "open", 2)]


def test_an_alert_whose_rule_is_disabled_is_closed_at_reload(
    conn: psycopg.Connection[Any],
) -> None:
    sid = crane(conn)
    engine = alertstore.load_engine(conn)
    ingest(conn, engine, batch(sid, [0.95]))
    work = conn.execute(
        "SELECT d.work_id FROM series s JOIN devices d ON d.id = s.device_id WHERE s.id = %s",
        (sid,),
    ).fetchone()
    assert work is not None
    conn.execute(
        "INSERT INTO thresholds (work_id, metric, rule, params)"
        " VALUES (%s, 'moment_ratio', 'moment_ratio', '{\"enabled\": false}')",
        (work[0],),
    )
    reloaded = alertstore.load_engine(conn, previous=engine)
    conn.commit()
    assert reloaded.open_alerts() == {}
    assert alerts(conn) == [(sid, "moment_ratio", 2, "resolved")]
    last = conn.execute(
        "SELECT action, message_en FROM alert_transitions ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert last is not None
    assert last[0] == "resolve"
    assert "disabled" in last[1]
