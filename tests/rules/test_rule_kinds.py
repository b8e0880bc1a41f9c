"""One table-driven case per rule kind and per state-machine behaviour, on the pure engine."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from rules import Batch, Engine, Grade, Override, SeriesInfo, Transition, load_profiles

T0_US = 1_764_000_000_000_000
S = 1_000_000
DAY = 86_400
PROFILES = load_profiles()
PIT = {"pit_grade": 1, "support_type": "bored_pile", "design_depth_m": 20.0}


def series(
    sid: int,
    kind: str,
    metric: str,
    params: dict[str, Any] | None = None,
    device: int = 1,
    period_s: float = 1.0,
) -> SeriesInfo:
    return SeriesInfo(sid, device, device, "S", f"D{device}", kind, metric, params or {}, period_s)


@dataclass
class Case:
    """Readings (series, seconds, value), one batch each unless grouped in a list."""

    name: str
    registry: list[SeriesInfo]
    readings: Sequence[tuple[int, float, float] | list[tuple[int, float, float]]]
    expected: list[tuple[str, str, int, int]]  # rule, action, grade_from, grade_to
    overrides: list[Override] = field(default_factory=list)


def run(case: Case) -> tuple[Engine, list[Transition]]:
    engine = Engine(case.registry, PROFILES, case.overrides)
    out: list[Transition] = []
    for item in case.readings:
        rows = item if isinstance(item, list) else [item]
        batch = Batch(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([T0_US + int(r[1] * S) for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows], dtype=np.float64),
        )
        out += engine.evaluate(batch, int(batch.time_us.max()))
    return engine, out


def seq(
    sid: int, values: Sequence[float], step_s: float = 1.0, start_s: float = 0.0
) -> list[tuple[int, float, float]]:
    return [(sid, start_s + i * step_s, v) for i, v in enumerate(values)]


CRANE = [
    series(1, "tower_crane", "moment_ratio"),
    series(2, "tower_crane", "load_t", {"rated_load_t": 8.0}),
    series(3, "tower_crane", "wind_speed_ms"),
]
PIT_TOP = [series(5, "excavation", "top_disp_h_mm", PIT, device=2, period_s=3600)]

CASES = [
    Case(
        "absolute: open, escalate, resolve after 3 normal readings",
        CRANE,
        seq(1, [0.5, 0.91, 1.02, 0.5, 0.5, 0.5]),
        [
            ("moment_ratio", "open", 0, 2),
            ("moment_ratio", "escalate", 2, 4),
            ("moment_ratio", "resolve", 4, 0),
        ],
    ),
    Case(
        "hysteresis: 0.89 stays within 3 % of 0.9, 0.86 does not",
        CRANE,
        seq(1, [0.91, 0.89, 0.89, 0.89, 0.89, 0.86, 0.86, 0.86]),
        [("moment_ratio", "open", 0, 2), ("moment_ratio", "resolve", 2, 0)],
    ),
    Case(
        "de-escalation keeps the lower grade while it holds",
        CRANE,
        seq(1, [1.05, 0.95, 0.95, 0.95, 0.5, 0.5, 0.5]),
        [
            ("moment_ratio", "open", 0, 4),
            ("moment_ratio", "deescalate", 4, 2),
            ("moment_ratio", "resolve", 2, 0),
        ],
    ),
    Case(
        "debounce: the wind opens after 2 readings over 10.8 m/s in a row",
        CRANE,
        seq(3, [11.0, 3.0, 11.0, 11.0]),
        [("wind", "open", 0, 3)],
    ),
    Case(
        "readings milliseconds apart: one alert",
        CRANE,
        [[(1, i / 1000, 0.95) for i in range(20)]],
        [("moment_ratio", "open", 0, 2)],
    ),
    Case(
        "duplicates: the first row of a (series, time) wins",
        CRANE,
        [[(1, 0, 0.95), (1, 0, 0.5)], (1, 0, 0.5)],
        [("moment_ratio", "open", 0, 2)],
    ),
    Case(
        "NaN and unknown series are ignored",
        CRANE,
        [[(1, 0, math.nan), (99, 0, 5.0), (1, 1, 0.5)]],
        [],
    ),
    Case(
        "ratio to rated: load 7.3 t of 8 t is 91 %",
        CRANE,
        seq(2, [7.3, 8.1]),
        [("load_rated", "open", 0, 2), ("load_rated", "escalate", 2, 4)],
    ),
    Case(
        "deviation from nominal: 445 and 530 kPa of 400",
        [series(7, "gas_pipeline", "pressure_kpa", {"nominal_pressure_kpa": 400.0})],
        seq(7, [400, 445, 445, 445, 530, 530, 530]),
        [("pressure", "open", 0, 2), ("pressure", "escalate", 2, 4)],
    ),
    Case(
        "cumulative against the first reading (GB 50497 grade-1 pit, 20/30 mm)",
        PIT_TOP,
        seq(5, [100.0, 115.0, 121.0, 131.0], step_s=3600),
        [
            ("wall_top_h", "open", 0, 2),
            ("wall_top_h", "escalate", 2, 3),
            ("wall_top_h", "escalate", 3, 4),
        ],
    ),
    Case(
        "rate over a day, and 3 days in a row over 70 % of 2 mm/d",
        PIT_TOP,
        seq(5, [0.0, 1.5, 3.0, 4.5], step_s=DAY),
        [("wall_top_h_rate", "open", 0, 2), ("wall_top_h_rate_3x", "open", 0, 3)],
    ),
    Case(
        "stuck sensor: 3 identical readings mark the series suspect",
        [series(8, "facade", "tilt_permille")],
        seq(8, [1.0, 1.0, 1.0, 1.1]),
        [("tilt_stuck", "suspect", 0, 1), ("tilt_stuck", "resolve", 1, 0)],
        [Override("tilt_stuck", "tilt_permille", {"count": 3}, series_id=8)],
    ),
    Case(
        "impossible jump: suspect, and no structural alarm from it",
        PIT_TOP,
        seq(5, [0.0, 150.0, 0.5, 0.5, 0.6, 0.5, 0.6, 0.5], step_s=3600),
        [("wall_top_h_jump", "suspect", 0, 1), ("wall_top_h_jump", "resolve", 1, 0)],
    ),
    Case(
        "crane lifting while the wind is over 10.8 m/s",
        CRANE,
        [[(3, 0, 12.0), (2, 0, 2.0)], [(3, 1, 12.0), (2, 1, 0.0)], (2, 2, 0.0), (2, 3, 0.0)],
        [
            ("lifting_in_wind", "open", 0, 4),
            ("wind", "open", 0, 3),
            ("lifting_in_wind", "resolve", 4, 0),
        ],
    ),
    Case(
        "load against the rated load curve at the current radius (3.8 t of 4.1 t at 30 m)",
        [
            series(2, "tower_crane", "load_t", {"rated_curve": "2.5:8,16:8,30:4.1,50:2.3"}),
            series(9, "tower_crane", "radius_m"),
        ],
        [
            [(9, 0, 30.0), (2, 0, 3.8)],
            (2, 1, 4.2),
            (9, 2, 10.0),
            (2, 3, 4.2),
            (2, 4, 4.2),
            (2, 5, 4.2),
        ],
        [
            ("load_curve", "open", 0, 2),
            ("load_curve", "escalate", 2, 4),
            ("load_curve", "resolve", 4, 0),
        ],
    ),
    Case(
        "no curve grading without a radius reading of the last 30 s",
        [
            series(2, "tower_crane", "load_t", {"rated_curve": "2.5:8,16:8,30:4.1,50:2.3"}),
            series(9, "tower_crane", "radius_m"),
        ],
        [(9, 0, 30.0), (2, 31, 4.2)],
        [],
    ),
    Case(
        "no lifting-in-wind alarm on a stale wind reading", CRANE, [(3, 0, 12.0), (2, 400, 2.0)], []
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_kind(case: Case) -> None:
    _, out = run(case)
    alerts = [t for t in out if t.action != "baseline"]
    assert [(t.rule, t.action, int(t.grade_from), int(t.grade_to)) for t in alerts] == (
        case.expected
    )


def test_first_reading_becomes_the_initial_baseline_once() -> None:
    _, out = run(CASES[9])
    base = [t for t in out if t.action == "baseline"]
    assert [(t.series_id, t.rule, t.value, t.time_us) for t in base] == [
        (5, "wall_top_h", 100.0, T0_US)
    ]
    assert base[0].message_zh == "围护墙顶部水平位移初始基准值 100 mm（首个读数）"


def test_message_explains_in_chinese_and_english() -> None:
    _, out = run(CASES[9])
    last = out[-1]
    assert last.message_zh == (
        "升级为红色（I级）：围护墙顶部水平位移累计变化 31 mm，超过一级基坑预警值区间上限 30 mm"
    )
    assert last.message_en == (
        "escalated to red (I): wall-top horizontal displacement: cumulative change 31 mm "
        "exceeds the upper end of the grade-1 pit alarm range (30 mm)"
    )
    assert (last.value, last.threshold) == (31.0, 30.0)


def test_rebaseline_with_a_dated_record_resolves() -> None:
    engine, _out = run(CASES[9])
    engine.set_baseline(5, 131.0, T0_US + 4 * 3600 * S)
    rows = seq(5, [131.0, 131.2, 131.1, 131.0, 131.2], step_s=3600, start_s=4 * 3600)
    batch = Batch(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([T0_US + int(r[1] * S) for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows]),
    )
    after = engine.evaluate(batch, int(batch.time_us.max()))
    assert [(t.rule, t.action) for t in after] == [("wall_top_h", "resolve")]
    assert engine.baseline(5, T0_US) == 100.0  # readings before it keep the old baseline


def test_offline_after_silence_and_back_online() -> None:
    engine = Engine(CRANE, PROFILES)
    assert engine.tick(T0_US) == []  # starts the clock for devices never heard
    batch = Batch(np.array([1]), np.array([T0_US]), np.array([0.5]))
    engine.evaluate(batch, T0_US)
    assert engine.tick(T0_US + 100 * S) == []  # 10 periods of 1 s, but at least 120 s
    opened = engine.tick(T0_US + 121 * S)
    assert [(t.rule, t.action, t.grade_to) for t in opened] == [("offline", "open", Grade.YELLOW)]
    assert "CR" not in opened[0].message_zh
    assert "D1" in opened[0].message_zh
    assert engine.tick(T0_US + 200 * S) == []  # one alert, not one per tick
    back = Batch(np.array([2]), np.array([T0_US + 201 * S]), np.array([1.0]))
    resolved = engine.evaluate(back, T0_US + 201 * S)
    assert [(t.rule, t.action) for t in resolved] == [("offline", "resolve")]


def test_late_readings_are_graded_but_never_reopen() -> None:
    engine, out = run(Case("", CRANE, seq(1, [0.5, 0.95, 0.5, 0.5, 0.5], step_s=10), []))
    assert [t.action for t in out] == ["open", "resolve"]
    late = Batch(
        np.array([1, 1, 1]), T0_US + np.array([5, 15, 25]) * S, np.array([0.6, 1.05, 0.92])
    )
    got = engine.evaluate(late, T0_US + 60 * S)
    assert [(t.action, int(t.grade_from), int(t.grade_to), t.value) for t in got] == [
        ("late", 0, 4, 1.05)
    ]
    assert "2 条迟到读数" in got[0].message_zh
    assert engine.open_alerts() == {}
