"""The vectorised engine agrees with the scalar reference on random multi-series streams.

Streams mix every rule kind, duplicate timestamps, rows in any order within a batch and
readings older than ones already graded (late), split into random batches.
"""

from __future__ import annotations

import math
from typing import get_args

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import Batch, Engine, Transition, load_profiles
from rules.kinds import RuleKind
from tests.rules.reference import Reference
from tests.rules.streams import OVERRIDES, SERIES, VALUES

T0_US = 1_764_000_000_000_000
PROFILES = load_profiles()

reading = st.tuples(
    st.sampled_from(sorted(VALUES)),
    st.integers(0, 240),  # seconds: collisions give duplicates, spread gives rate windows
    st.integers(0, 7),
)


@st.composite
def streams(draw: st.DrawFn) -> list[list[tuple[int, int, float]]]:
    rows = draw(st.lists(reading, min_size=1, max_size=160))
    # mostly advancing time, as devices do, with some rows out of order
    rows.sort(key=lambda r: r[1] + draw(st.sampled_from([0, 0, 0, 0, 30])))
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=6)))
    batches = [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
    out = []
    for b in batches:
        shuffled = draw(st.permutations(b))
        out.append(
            [(s, T0_US + t * 1_000_000, VALUES[s][i % len(VALUES[s])]) for s, t, i in shuffled]
        )
    return out


def key(t: Transition) -> tuple[object, ...]:
    return (
        t.series_id,
        t.rule,
        t.action,
        int(t.grade_from),
        int(t.grade_to),
        t.time_us,
        t.message_zh,
        t.message_en,
    )


def close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_engine_matches_reference(batches: list[list[tuple[int, int, float]]]) -> None:
    engine = Engine(SERIES, PROFILES, OVERRIDES)
    reference = Reference(engine)
    for rows in batches:
        batch = Batch(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows], dtype=np.float64),
        )
        now = int(batch.time_us.max()) if len(batch) else T0_US
        got = engine.evaluate(batch, now)
        want = reference.evaluate(batch)
        assert [key(t) for t in got] == [key(t) for t in want]
        for g, w in zip(got, want, strict=True):
            assert close(g.value, w.value)
            assert close(g.threshold, w.threshold)
    graded = {(s.series_id, s.rule.rule): s.grade for s in reference.slots if s.grade}
    assert {k: int(v) for k, v in engine.open_alerts().items()} == graded


def test_every_rule_kind_is_in_the_stream_registry() -> None:
    engine = Engine(SERIES, PROFILES, OVERRIDES)
    kinds = {r.kind for s in SERIES for r in engine.rules_of(s.series_id)}
    assert kinds == set(get_args(RuleKind))


@pytest.mark.parametrize("seed", range(6))
def test_rates_over_many_windows_match_the_reference(seed: int) -> None:
    """Long streams of the rate rules (window 40 s, so 16 checkpoints span 160 s): irregular
    gaps, batches from one reading to several hundred seconds (a ring overflowing within one
    batch), against the scalar reference."""
    rng = np.random.default_rng(seed)
    engine = Engine(SERIES, PROFILES, OVERRIDES)
    reference = Reference(engine)
    t_s = 0.0
    for _ in range(40):
        n = int(rng.choice([1, 3, 20, 150]))
        gaps = rng.choice([0.5, 2.0, 7.0, 45.0], size=n, p=[0.3, 0.4, 0.25, 0.05])
        times = t_s + np.cumsum(gaps)
        t_s = float(times[-1])
        values = np.round(rng.normal(0.0, 0.0015, n).cumsum(), 5)  # near 2 mm/d over 40 s
        batch = Batch(
            np.full(n, 5, dtype=np.int64),
            (T0_US + times * 1_000_000).astype(np.int64),
            values,
        )
        got = engine.evaluate(batch, int(batch.time_us.max()))
        want = reference.evaluate(batch)
        assert [key(t) for t in got] == [key(t) for t in want]
