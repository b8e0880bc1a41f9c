"""The physics of the rules (`rules.measures`) on scalars, arrays, NaN and empty input, against
golden values worked out by hand (pvlib tests/test_temperature.py style)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from rules import measures as ms

DAY_US = 86_400 * 1_000_000
NAN = math.nan


def test_cumulative_change_is_the_magnitude_of_the_change_since_the_baseline() -> None:
    # GB 50497-2019 8.0.4: 累计变化量, here 31.2 mm from a baseline of 100 mm either way
    assert float(ms.cumulative_change(131.2, 100.0)) == pytest.approx(31.2)
    assert_allclose(ms.cumulative_change(np.array([131.2, 68.8, 100.0]), 100.0), [31.2, 31.2, 0.0])
    assert_allclose(ms.cumulative_change(np.array([5.0, 6.0]), np.array([1.0, 8.0])), [4.0, 2.0])
    assert math.isnan(float(ms.cumulative_change(131.2, NAN)))  # no baseline yet
    assert ms.cumulative_change(np.zeros(0), 1.0).shape == (0,)


def test_ratio_to_a_design_value() -> None:
    # strut force 2,100 kN of f2 = 3,000 kN (table 8.0.4: a share of f2); 7.2 t of 8 t rated
    assert float(ms.ratio_to(2_100.0, 3_000.0)) == pytest.approx(0.7)
    assert_allclose(ms.ratio_to(np.array([7.2, 8.0, 8.8]), 8.0), [0.9, 1.0, 1.1])
    assert_allclose(ms.ratio_to(np.array([50.0, 50.0]), np.array([100.0, 500.0])), [0.5, 0.1])
    assert math.isnan(float(ms.ratio_to(NAN, 8.0)))
    assert ms.ratio_to(np.zeros(0), 8.0).shape == (0,)
    # multiplied by the reciprocal, as the engine's fused pass does: the same float
    assert float(ms.ratio_to(2_100.0, 3_000.0)) == 2_100.0 * (1.0 / 3_000.0)


def test_deviation_from_a_nominal_value_either_way() -> None:
    # gas pressure 445 and 355 kPa around 400 kPa nominal: 11.25 % off
    assert_allclose(ms.deviation_from(np.array([445.0, 355.0, 400.0]), 400.0), [0.1125, 0.1125, 0])
    assert float(ms.deviation_from(530.0, 400.0)) == pytest.approx(0.325)
    assert math.isnan(float(ms.deviation_from(NAN, 400.0)))
    assert ms.deviation_from(np.zeros(0), 400.0).shape == (0,)


def test_scaled_change_is_the_common_form_of_the_affine_measures() -> None:
    v = np.array([-3.0, 2.0, 5.0])
    assert_allclose(ms.scaled_change(v, 1.0, 0.5), [-2.0, 0.5, 2.0])
    assert_allclose(ms.scaled_change(v, 1.0, 0.5, True), [2.0, 0.5, 2.0])
    assert_allclose(ms.scaled_change(v, 1.0, 0.5, np.array([True, False, False])), [2.0, 0.5, 2.0])
    assert float(ms.scaled_change(-3.0, 0.0, 1.0, True)) == 3.0


def test_rate_per_day_against_a_reference_reading() -> None:
    t0 = 1_764_000_000_000_000
    # 3 mm in 1.5 days: 2 mm/d (the grade-1 pit rate alarm value of table 8.0.4)
    assert float(ms.rate_per_day(103.0, t0 + 3 * DAY_US // 2, 100.0, t0)) == pytest.approx(2.0)
    rates = ms.rate_per_day(
        np.array([101.0, 99.0, 100.0]),
        np.array([t0 + DAY_US, t0 + DAY_US // 2, t0 + DAY_US]),
        100.0,
        t0,
    )
    assert_allclose(rates, [1.0, 2.0, 0.0])  # a fall counts as much as a rise
    # no reference (not older than the reading), or a NaN one: no rate, and no warning
    none = ms.rate_per_day(
        np.array([1.0, 1.0, 1.0]),
        np.array([5, 5, 5]),
        np.array([0.0, 0.0, NAN]),
        np.array([5, 9, 0]),
    )
    assert np.isnan(none).all()
    assert ms.rate_per_day(np.zeros(0), np.zeros(0, np.int64), 0.0, 0).shape == (0,)


def test_in_force_bounds_the_age_of_a_companion_reading() -> None:
    never = np.iinfo(np.int64).min
    got = ms.in_force(np.array([100, 100, 100, 100]), np.array([70, 69, 100, never]), 30)
    assert_array_equal(got, [True, False, True, False])
    assert bool(ms.in_force(10, 10, 0))
    assert ms.in_force(np.zeros(0, np.int64), np.zeros(0, np.int64), 5).shape == (0,)


def test_lifting_in_wind() -> None:
    # JGJ 276-2012 3.0.12: no lifting from 10.8 m/s (Beaufort 6)
    got = ms.lifting_in_wind(
        np.array([2.0, 0.05, 2.0, 2.0, 2.0]),
        np.array([11.0, 11.0, 10.7, 10.8, NAN]),
        0.1,
        10.8,
    )
    assert_array_equal(got, [True, False, False, True, False])
    assert not bool(ms.lifting_in_wind(2.0, 12.0, 0.1, 10.8, wind_in_force=False))
    assert ms.lifting_in_wind(np.zeros(0), np.zeros(0), 0.1, 10.8).shape == (0,)


CHART = ((2.5, 8.0), (16.0, 8.0), (30.0, 4.1), (50.0, 2.3))


def test_rated_load_at_radius_reads_the_load_chart() -> None:
    # linear between points (23 m: halfway from 8 t at 16 m to 4.1 t at 30 m), flat beyond
    got = ms.rated_load_at_radius(np.array([1.0, 2.5, 16.0, 23.0, 30.0, 60.0]), CHART)
    assert_allclose(got, [8.0, 8.0, 8.0, 6.05, 4.1, 2.3])
    assert float(ms.rated_load_at_radius(40.0, CHART)) == pytest.approx(3.2)
    assert math.isnan(float(ms.rated_load_at_radius(NAN, CHART)))
    assert ms.rated_load_at_radius(np.zeros(0), CHART).shape == (0,)


def test_a_curve_stack_reads_each_row_on_its_own_curve() -> None:
    other = ((5.0, 10.0), (20.0, 10.0), (40.0, 4.0))
    stack = ms.CurveStack.of([CHART, other])
    radius = np.array([23.0, 23.0, 100.0, 0.0, NAN])
    curve = np.array([0, 1, 0, 1, 0])
    want = [
        ms.rated_load_at_radius(23.0, CHART),
        ms.rated_load_at_radius(23.0, other),
        2.3,  # beyond the end of its own curve, not the start of the next
        10.0,
        NAN,
    ]
    assert_allclose(stack.rated_load(radius, curve), np.array(want, dtype=float))


def test_step_change_continues_each_series_from_the_reading_before() -> None:
    assert_allclose(ms.step_change(np.array([1.0, 3.0, 2.5])), [NAN, 2.0, 0.5])
    got = ms.step_change(np.array([1.0, 3.0, 10.0, 7.0]), np.array([0, 2]), np.array([0.5, NAN]))
    assert_allclose(got, [0.5, 2.0, NAN, 3.0])
    assert ms.step_change(np.zeros(0)).shape == (0,)


def test_jumps_are_steps_at_least_the_impossible_one() -> None:
    assert_array_equal(ms.jumps(np.array([99.9, 100.0, NAN]), 100.0), [False, True, False])
    assert bool(ms.jumps(150.0, 100.0))


def test_stuck_runs_count_equal_steps_in_a_row() -> None:
    step = np.array([NAN, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0])
    assert_array_equal(ms.stuck_runs(step, 0.0), [0, 1, 2, 0, 1, 2, 3])
    assert_array_equal(ms.stuck_runs(step, 0.1), [0, 1, 2, 3, 4, 5, 6])
    assert_array_equal(ms.stuck_runs(step, 0.0, cap=2), [0, 1, 2, 0, 1, 2, 2])
    # two series, the first continuing a run of 5 from earlier readings
    starts = np.array([True, False, False, True, False])
    got = ms.stuck_runs(np.array([0.0, 0.0, 1.0, 0.0, 0.0]), 0.0, starts, np.array([5] * 5))
    assert_array_equal(got, [6, 7, 0, 6, 7])
    assert ms.stuck_runs(np.zeros(0), 0.0).shape == (0,)
