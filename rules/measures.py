"""The physics of the rules: what each rule kind measures, as pure numpy functions.

Arrays in, arrays of the same shape out (a scalar gives a 0-d array), units in the argument
names, no engine needed: the daily report computes rates and cumulative changes with these, and
the engine grades with the very same functions, so both agree to the bit. NaN in gives NaN (or
False) out; nothing raises on bad data.

Functions that continue a run across batches take the segments of rows sorted by series and
time (`starts`: a row begins its series) and the run carried in; their defaults treat the input
as one series with nothing carried.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rules import kernels as k

US_PER_S = 1_000_000
"""Microseconds per second: reading times are epoch µs."""
S_PER_DAY = 86_400.0
"""Seconds per day: rates are per day (GB 50497-2019 table 8.0.4 gives mm/d)."""
US_PER_DAY = S_PER_DAY * US_PER_S

_F = NDArray[np.float64]
_B = NDArray[np.bool_]
_I = NDArray[np.int64]
Floats = float | _F
"""A number or an array of them (float64)."""
Ints = int | _I
"""An integer or an array of them (int64: times in µs, counts)."""
Flags = bool | _B
"""A flag or an array of them."""


def _f(x: Floats) -> _F:
    return np.asarray(x, np.float64)


def _i(x: Ints) -> _I:
    return np.asarray(x, np.int64)


def scaled_change(value: Floats, offset: Floats, scale: Floats, magnitude: Flags = False) -> _F:
    """`(value - offset) * scale`, or its magnitude where `magnitude`: the affine measures.

    The four affine level measures are special cases (offset, scale): absolute (0, 1), ratio
    (0, 1 / design), deviation (nominal, 1 / nominal), cumulative (baseline, 1). The engine grades
    the rows of all of them with one call, a per-row offset, scale and magnitude flag.

    Args:
        value: readings, in the metric's unit.
        offset: subtracted first, same unit.
        scale: multiplier of the difference (a reciprocal, for shares).
        magnitude: take the absolute value (per row, or one flag for all).

    Returns:
        The measure, float64.
    """
    m = _f((_f(value) - offset) * scale)
    # a masked ufunc (np.absolute with where=) is several times slower than this
    return (
        np.where(magnitude, np.abs(m), m) if np.ndim(magnitude) else np.abs(m) if magnitude else m
    )


def ratio_to(value: Floats, design: Floats) -> _F:
    """The value as a share of a design value (strut force / f2 of GB 50497-2019 table 8.0.4,
    load / rated load of GB 5144): `value * (1 / design)`, exactly as the engine computes it.

    Args:
        value: readings, in the design value's unit (kN, t ...).
        design: the design value, same unit (> 0).
    """
    return scaled_change(value, 0.0, 1.0 / _f(design))


def deviation_from(value: Floats, nominal: Floats) -> _F:
    """The relative distance from a nominal value, `abs(value - nominal) / nominal` (a gas
    pressure band); computed as `abs((value - nominal) * (1 / nominal))`.

    Args:
        value: readings, in the nominal value's unit (kPa ...).
        nominal: the nominal value, same unit (> 0).
    """
    return scaled_change(value, nominal, 1.0 / _f(nominal), True)


def cumulative_change(value_mm: Floats, baseline_mm: Floats) -> _F:
    """Cumulative change since the baseline, `abs(value - baseline)` (GB 50497-2019 8.0.4:
    累计变化量). NaN baseline (none yet): NaN.

    Args:
        value_mm: readings, mm (or the metric's unit: permille, m).
        baseline_mm: the baseline in force at each reading's time, same unit.
    """
    return scaled_change(value_mm, baseline_mm, 1.0, True)


def rate_per_day(value: Floats, time_us: Ints, ref_value: Floats, ref_time_us: Ints) -> _F:
    """Rate of change per day against a reference reading, `abs(change) / days between`
    (GB 50497-2019 table 8.0.4: 变化速率, mm/d).

    Args:
        value: readings, in the metric's unit.
        time_us: their times, epoch µs.
        ref_value: the reference reading of each, same unit.
        ref_time_us: its time, epoch µs; not before the reading's: NaN (no rate).

    Returns:
        Unit per day; NaN where there is no reference.
    """
    span_d = np.asarray((_i(time_us) - _i(ref_time_us)) / US_PER_DAY)
    span_d[span_d <= 0] = np.nan  # change / NaN: NaN, without a division by zero
    return _f(np.abs(_f(value) - ref_value) / span_d)


def in_force(time_us: Ints, reading_time_us: Ints, max_age_us: Ints) -> _B:
    """Whether a companion reading (the wind, the radius) still holds at `time_us`: at most
    `max_age_us` older. `reading_time_us` of -2**63 (none) is never in force.

    Args:
        time_us: the time it is needed at, epoch µs.
        reading_time_us: the companion reading's time, epoch µs.
        max_age_us: its longest validity, µs.
    """
    return np.asarray(_i(reading_time_us) >= _i(time_us) - max_age_us)


def lifting_in_wind(
    load_t: Floats,
    wind_speed_ms: Floats,
    min_load_t: Floats,
    stop_wind_ms: Floats,
    wind_in_force: Flags = True,
) -> _B:
    """A crane lifting while the wind is at or over the stop-lifting limit (JGJ 276-2012
    3.0.12: no lifting at Beaufort 6, 10.8 m/s, and over).

    Args:
        load_t: load on the hook, t.
        wind_speed_ms: the newest wind reading of the work, m/s (NaN: none).
        min_load_t: load from which the crane counts as lifting, t.
        stop_wind_ms: the stop-lifting wind speed, m/s.
        wind_in_force: whether that wind reading is recent enough (see `in_force`).
    """
    lifting = _f(load_t) >= min_load_t
    return np.asarray(lifting & wind_in_force & (_f(wind_speed_ms) >= stop_wind_ms))


def rated_load_at_radius(radius_m: Floats, curve: Sequence[tuple[float, float]]) -> _F:
    """The rated load of a crane's load chart at a radius: linear between the chart's points,
    flat beyond its ends (GB/T 5031: the load chart gives the rated load by radius).

    Args:
        radius_m: trolley radius, m.
        curve: the chart, (radius m, rated load t) by increasing radius.

    Returns:
        Rated load, t (NaN for a NaN radius).
    """
    points = np.asarray(curve, np.float64).reshape(-1, 2)
    return _f(np.interp(_f(radius_m), points[:, 0], points[:, 1]))


_CURVE_STRIDE_M = 1e6
"""Curves of a `CurveStack` lie end to end: curve i covers keys [i * 1e6, i * 1e6 + 1e6)."""


@dataclass(frozen=True, slots=True)
class CurveStack:
    """Many load charts laid end to end, so that one `np.interp` reads each row on its own.

    Attributes:
        key: per point, `curve index * 1e6 + radius m`.
        load_t: per point, the rated load, t.
        radius_min_m, radius_max_m: per curve, its first and last radius, m.
    """

    key: _F
    load_t: _F
    radius_min_m: _F
    radius_max_m: _F

    @classmethod
    def of(cls, curves: Sequence[Sequence[tuple[float, float]]]) -> CurveStack:
        """Stack `curves` (each as for `rated_load_at_radius`, radii under 1e6 m)."""
        keys = [i * _CURVE_STRIDE_M + r for i, c in enumerate(curves) for r, _ in c]
        loads = [load for c in curves for _, load in c]
        return cls(
            np.array(keys, np.float64),
            np.array(loads, np.float64),
            np.array([c[0][0] for c in curves], np.float64),
            np.array([c[-1][0] for c in curves], np.float64),
        )

    def rated_load(self, radius_m: _F, curve: _I) -> _F:
        """The rated load at each radius on curve number `curve` (see `rated_load_at_radius`)."""
        # clipped to its own curve, a radius never interpolates towards a neighbouring curve
        r = np.minimum(np.maximum(radius_m, self.radius_min_m[curve]), self.radius_max_m[curve])
        return _f(np.interp(curve * _CURVE_STRIDE_M + r, self.key, self.load_t))


def step_change(value: Floats, first: _I | None = None, before: Floats = np.nan) -> _F:
    """Change of each reading from the one before it, `abs(value - previous)`.

    Args:
        value: readings of one or more series, sorted by series and time.
        first: the rows that begin a series (default: the first row only).
        before: per series, the reading before its first row (NaN: none, so no change).
    """
    v = _f(value).reshape(-1)
    if first is None:
        first = np.zeros(min(v.shape[0], 1), np.int64)
    carry = _f(before)
    if carry.shape != first.shape:  # (np.broadcast_to is slow for an array of the shape)
        carry = np.broadcast_to(carry, first.shape)
    return np.abs(v - k.previous(v, first, carry))


def jumps(step: Floats, limit: Floats) -> _B:
    """Steps that are physically impossible: at least `limit` (a sensor fault, or a collapse,
    which the fault alert says; see docs/rules.md).

    Args:
        step: change from the previous reading (`step_change`), metric's unit.
        limit: the smallest impossible step, same unit.
    """
    return np.asarray(_f(step) >= limit)


def stuck_runs(
    step: Floats,
    epsilon: Floats,
    starts: _B | None = None,
    carry: Ints = 0,
    cap: Ints | None = None,
) -> _I:
    """How many steps in a row, up to each reading, stayed within `epsilon` (a stuck sensor
    repeats itself: `count` equal readings are `count - 1` such steps).

    Args:
        step: change from the previous reading (`step_change`), sorted by series and time.
        epsilon: largest step still counted as equal, same unit.
        starts: rows that begin a series (default: one series).
        carry: per row, the run carried into its series from earlier readings.
        cap: longest run counted, per row (default: unbounded).
    """
    same = _f(step).reshape(-1) <= epsilon
    n = same.shape[0]
    if starts is None:
        starts = np.zeros(n, np.bool_)
        starts[:1] = True
    carried, limit = _i(carry), _i(np.iinfo(np.int64).max if cap is None else cap)
    if carried.shape != (n,):
        carried = np.broadcast_to(carried, (n,))
    if limit.shape != (n,):
        limit = np.broadcast_to(limit, (n,))
    return k.run_lengths(same, k.first_index(starts), carried, limit)
