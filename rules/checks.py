"""The checks shared by profile loading and override resolution: bounds, checked conversions.

Loud on bad configuration: each check raises `ProfileError` naming where the value came from
and what is wrong with it, cut short if the value is huge (registry content may be garbage).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, cast

from hazmon.vocabulary import GRADES_BY_CODE
from rules.kinds import OVERRIDE_OPTION_KEYS, PROFILE_OPTION_KEYS
from rules.measures import S_PER_DAY
from rules.types import ProfileError

GRADE_NAMES = GRADES_BY_CODE
"""Grades as profiles and overrides name them."""
MAX_MAGNITUDE = 1e12
"""Largest threshold or option value accepted in any unit (no source: a bound against garbage)."""
MAX_SPAN_S = 366 * S_PER_DAY
"""Longest time option accepted (windows, periods, ages), seconds (no source: a year covers
every rule of the profiles; longer would only make the engine replay more history)."""
MAX_COUNT = 10_000
"""Largest run length accepted (debounce, resolve_after, count; no source: a bound)."""
OVERRIDE_KEYS = frozenset(
    {"levels", "hysteresis", "debounce", "resolve_after", "enabled"} | OVERRIDE_OPTION_KEYS
)
"""Keys of a `thresholds.params` object (besides `source`)."""


def check_options(options: Mapping[str, Any], where: str) -> None:
    """Check the option values of a profile rule or an override (keys of `rules.kinds`)."""
    for key in ("window_s", "period_s", "max_wind_age_s", "max_radius_age_s"):
        if key in options:
            as_number(options[key], where, key, lo=1e-3, hi=MAX_SPAN_S)
    if "share" in options:
        as_number(options["share"], where, "share", lo=1e-9, hi=1.0)
    for key in ("epsilon", "min_load_t"):
        if key in options:
            as_number(options[key], where, key, lo=0.0)
    if "count" in options:
        as_count(options["count"], where, "count")
    if "abs" in options and not isinstance(options["abs"], bool):
        raise ProfileError(where, "abs must be true or false")


def check_override(ov: Mapping[str, Any], where: str) -> None:
    """Check one `thresholds.params` object; raise ProfileError naming the bad key.

    Accepted keys: `levels` ({grade name: number or null}), `hysteresis` (0..0.5), `debounce`,
    `resolve_after`, `count` (positive integers), `window_s`, `period_s`, `share`,
    `max_wind_age_s`, `max_radius_age_s` (positive numbers), `epsilon`, `min_load_t` (>= 0),
    `enabled` (bool), `source` (text).
    """
    unknown = set(ov) - OVERRIDE_KEYS - {"source"}
    if unknown:
        raise ProfileError(where, f"unknown override keys {sorted(unknown)}")
    levels = ov.get("levels") or {}
    if not isinstance(levels, Mapping):
        raise ProfileError(where, "levels must map grade names to numbers")
    for name, value in levels.items():
        if name not in GRADE_NAMES:
            raise ProfileError(where, f"unknown grade {name!r}")
        if value is not None:
            as_number(value, where, f"levels.{name}")
    if "hysteresis" in ov:
        as_number(ov["hysteresis"], where, "hysteresis", lo=0.0, hi=0.5)
    for key in ("debounce", "resolve_after"):
        if key in ov:
            as_count(ov[key], where, key)
    if "enabled" in ov and not isinstance(ov["enabled"], bool):
        raise ProfileError(where, "enabled must be true or false")
    check_options({k: v for k, v in ov.items() if k in PROFILE_OPTION_KEYS}, where)


def as_mapping(raw: object, where: str) -> Mapping[str, Any]:
    """`raw` if it is a mapping, else ProfileError."""
    if not isinstance(raw, Mapping):
        raise ProfileError(where, "expected a mapping")
    return cast(Mapping[str, Any], raw)


def as_number(
    raw: object, where: str, name: str, lo: float = -MAX_MAGNITUDE, hi: float = MAX_MAGNITUDE
) -> float:
    """`raw` as a float if it is a finite number in [lo, hi] (not a bool), else ProfileError."""
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        # a 400-digit int passes isinstance but overflows every float conversion
        or (isinstance(raw, int) and raw.bit_length() > 64)
        or not math.isfinite(raw)
    ):
        raise ProfileError(where, f"{name} must be a finite number, got {show(raw)}")
    if not lo <= float(raw) <= hi:
        raise ProfileError(where, f"{name} must be in [{lo:g}, {hi:g}], got {show(raw)}")
    return float(raw)


def as_count(raw: object, where: str, name: str) -> int:
    """`raw` if it is an int in [1, MAX_COUNT] (not a bool), else ProfileError."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_COUNT:
        raise ProfileError(
            where, f"{name} must be a positive integer up to {MAX_COUNT}, got {show(raw)}"
        )
    return raw


def show(raw: object) -> str:
    """A refused value for an error message, cut short (it may be huge or deeply nested)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw.bit_length() > 64:
        return f"a {raw.bit_length()}-bit integer"
    if isinstance(raw, str | int | float | bool) or raw is None:
        text = repr(raw)
    else:
        text = f"a {type(raw).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def hashable(value: object) -> object | None:
    """`value` (registry data: mappings, lists, scalars) as a hashable key, types kept apart
    (True, 1 and 1.0 resolve differently); None if it holds something else."""
    if isinstance(value, Mapping):
        items = [(k, hashable(v)) for k, v in value.items()]
        if any(v is None for _, v in items):
            return None
        return ("map", tuple(sorted(items, key=lambda kv: str(kv[0]))))
    if isinstance(value, list | tuple):
        seq = [hashable(v) for v in value]
        return None if any(v is None for v in seq) else ("seq", tuple(seq))
    if value is None or isinstance(value, str | int | float | bool):
        return (type(value).__name__, value)
    return None


def int_or(raw: object, default: int) -> int:
    """`raw` if it is an int (not a bool), else `default`."""
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else default


def check_ascending(values: Sequence[float], where: str) -> None:
    """ProfileError unless `values` (thresholds signed by direction) strictly ascend."""
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ProfileError(where, f"thresholds must be strictly ascending by grade: {values}")


MAX_CURVE_RADIUS_M = 1000.0
"""Largest radius of a rated load curve, m (no source: tower cranes reach under 100 m; the
engine lays curves end to end on a 1e6 m stride, so a radius must stay far below that)."""
MAX_CURVE_LOAD_T = 10_000.0
"""Largest rated load of a curve point, t (no source: a bound against garbage)."""


def parse_curve(raw: object, where: str) -> tuple[tuple[float, float], ...]:
    """A crane's rated load curve from the work parameter, '<radius m>:<rated load t>,...'.

    Example: '2.5:8,16:8,30:4.1,50:2.3' (8 t up to 16 m, then falling with the radius).

    Raises:
        ProfileError: not that format, radii not strictly increasing within
            [0, MAX_CURVE_RADIUS_M], or a load not in (0, MAX_CURVE_LOAD_T].
    """
    if not isinstance(raw, str):
        raise ProfileError(where, f"rated curve must be text 'radius:load,...', got {show(raw)}")
    try:
        points = tuple(
            (float(r), float(load))
            for r, load in (p.split(":") for p in raw.replace(" ", "").split(","))
        )
    except ValueError:
        raise ProfileError(
            where, f"rated curve must be 'radius:load,...', got {show(raw)}"
        ) from None
    radii = [r for r, _ in points]
    if any(b <= a for a, b in itertools.pairwise(radii)) or any(
        not (0.0 <= r <= MAX_CURVE_RADIUS_M and 0.0 < load <= MAX_CURVE_LOAD_T)
        for r, load in points
    ):
        raise ProfileError(
            where,
            f"rated curve needs increasing radii in [0, {MAX_CURVE_RADIUS_M:g}] m and loads in "
            f"(0, {MAX_CURVE_LOAD_T:g}] t: {show(raw)}",
        )
    return points
