"""Restart mid-stream against the real database: the same alerts as an uninterrupted run.

The ingest's loop is reproduced: store the batch's readings, evaluate, record the transitions,
commit. At the restart the engine is rebuilt by `alertstore.load_engine`, which replays the
stored readings each rule needs and restores the open alerts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
import pytest

from ingest import alerts as alertstore
from rules import Batch, Engine, Transition
from tests.support.registry_rows import T0_US, DeviceSpec, make_registry, store_readings
from tests.support.streams import OVERRIDES, SERIES, VALUES

DEVICES = [
    DeviceSpec(
        "CR1",
        "tower_crane",
        ["moment_ratio", "load_t", "wind_speed_ms", "tilt_deg", "radius_m"],
        {"rated_load_t": 10.0, "free_standing": True, "rated_curve": "5:10,20:10,40:4"},
        1.0,
    ),
    DeviceSpec(
        "PIT1",
        "excavation",
        ["top_disp_h_mm", "anchor_force_kn"],
        {
            "pit_grade": 1,
            "support_type": "bored_pile",
            "design_depth_m": 12.0,
            "anchor_design_kn": 100.0,
        },
        10.0,
    ),
    DeviceSpec("GAS1", "gas_pipeline", ["pressure_kpa"], {"nominal_pressure_kpa": 100.0}, 5.0),
]


def setup_registry(conn: psycopg.Connection[Any]) -> dict[int, int]:
    """The stream registry in the database, with its overrides; stream id -> series id."""
    series = make_registry(conn, DEVICES)
    by_name = {(db.device_code, db.metric): db for db in series}
    ids = {i.series_id: by_name[i.device_code, i.metric].series_id for i in SERIES}
    work = {i.series_id: by_name[i.device_code, i.metric].work_id for i in SERIES}
    first_of_work = {info.work_id: info.series_id for info in reversed(SERIES)}
    for ov in OVERRIDES:
        if ov.series_id is not None:
            conn.execute(
                "INSERT INTO thresholds (series_id, metric, rule, params) VALUES (%s, %s, %s, %s)",
                (ids[ov.series_id], ov.metric, ov.rule, json.dumps(dict(ov.params))),
            )
        else:
            assert ov.work_id is not None
            conn.execute(
                "INSERT INTO thresholds (work_id, metric, rule, params) VALUES (%s, %s, %s, %s)",
                (work[first_of_work[ov.work_id]], ov.metric, ov.rule, json.dumps(dict(ov.params))),
            )
    conn.commit()
    return ids


def stream(seed: int, ids: dict[int, int]) -> list[Batch]:
    """Batches moving forward in time; rows shuffled and duplicated within each batch."""
    rng = np.random.default_rng(seed)
    out = []
    start = 0
    for _ in range(8):
        n = int(rng.integers(5, 40))
        sids = rng.choice(sorted(VALUES), n)
        secs = start + rng.integers(0, 30, n)
        vals = np.array([VALUES[s][int(rng.integers(0, 8)) % len(VALUES[s])] for s in sids])
        out.append(
            Batch(
                np.array([ids[int(s)] for s in sids], dtype=np.int64),
                T0_US + secs.astype(np.int64) * 1_000_000,
                vals,
            )
        )
        start += 30
    return out


def key(t: Transition) -> tuple[object, ...]:
    return (
        t.series_id,
        t.rule,
        t.action,
        int(t.grade_from),
        int(t.grade_to),
        t.time_us,
        t.message_en,
    )


def run_stored(
    conn: psycopg.Connection[Any],
    batches: list[Batch],
    rebuild_at: int,
    rebuild: Callable[[Engine], Engine],
) -> list[tuple[Any, ...]]:
    """Store, grade and record each batch as ingest does; rebuild the engine before one batch."""
    engine = alertstore.load_engine(conn)
    got = []
    for i, b in enumerate(batches):
        if i == rebuild_at:
            engine = rebuild(engine)
        store_readings(conn, b)
        out = engine.evaluate(b, int(b.time_us.max()))
        alertstore.record(conn, out)
        conn.commit()
        got += [key(t) for t in out]
    return got


@pytest.mark.parametrize(("seed", "restart_at"), [(1, 3), (2, 5), (3, 1), (4, 6)])
def test_restart_mid_stream_gives_the_same_alerts(
    conn: psycopg.Connection[Any], seed: int, restart_at: int
) -> None:
    ids = setup_registry(conn)
    batches = stream(seed, ids)
    uninterrupted = alertstore.load_engine(conn)
    want = [key(t) for b in batches for t in uninterrupted.evaluate(b, int(b.time_us.max()))]
    got = run_stored(conn, batches, restart_at, lambda engine: alertstore.load_engine(conn))
    assert got == want
    assert any(k[2] == "open" for k in want)  # the stream does raise alerts
    open_rows = conn.execute(
        "SELECT series_id, rule, grade FROM alerts WHERE state <> 'resolved'"
    ).fetchall()
    assert {(s, r): g for s, r, g in open_rows} == {
        k: int(v) for k, v in uninterrupted.open_alerts().items()
    }
    n_changes = conn.execute(
        "SELECT count(*) FROM alert_transitions WHERE actor = 'engine'"
    ).fetchone()
    assert n_changes is not None
    assert n_changes[0] == sum(1 for k in want if k[2] not in ("baseline",))


@pytest.mark.parametrize(("seed", "change_at"), [(5, 2), (6, 4)])
def test_registry_change_keeps_the_state_of_unchanged_series(
    conn: psycopg.Connection[Any], seed: int, change_at: int
) -> None:
    ids = setup_registry(conn)
    batches = stream(seed, ids)
    uninterrupted = alertstore.load_engine(conn)
    want = [key(t) for b in batches for t in uninterrupted.evaluate(b, int(b.time_us.max()))]

    def register_a_device(old: Engine) -> Engine:
        # a device is registered: the ingest rebuilds its engine
        make_registry(conn, [DeviceSpec("NEW1", "facade", ["tilt_permille"], {}, 60.0)])
        conn.commit()
        engine = alertstore.load_engine(conn, previous=old)
        assert engine.adopt(old) == set(ids.values())
        return engine

    assert run_stored(conn, batches, change_at, register_a_device) == want
