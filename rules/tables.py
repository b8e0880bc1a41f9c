"""Resolved rules compiled into read-only arrays: one row per *slot* (a series and one rule).

Slots are numbered by rule kind (in `rules.kinds.KINDS` order) and then by series, so that rows
of a batch sorted by (series, time) within one kind are sorted by slot as well. Per slot the
tables hold the thresholds, the direction, hysteresis, debounce and each kind's options as
columns; per series, which slot each kind has; per device, its offline limit. Nothing here
changes after the engine is built (`rules.state` holds what does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rules.kinds import (
    KIND_ORDER,
    LATE_KINDS,
    ConsecutiveOptions,
    CraneWindOptions,
    DeviationOptions,
    RatedCurveOptions,
    RateOptions,
    RatioOptions,
    StuckOptions,
    share_of,
)
from rules.measures import S_PER_DAY, US_PER_S
from rules.messages import Subject
from rules.profiles import Profile
from rules.resolve import ResolvedRule
from rules.types import Grade, SeriesInfo

AFFINE_KINDS: tuple[str, ...] = LATE_KINDS
"""Kinds whose measure is `(value - offset) * scale` (`rules.measures.scaled_change`), graded
together in one pass: the kinds that grade a reading on its own."""

_I = NDArray[np.int64]
_F = NDArray[np.float64]
_B = NDArray[np.bool_]

RATE_SERIES = "rate series"
"""`Tables.ranges` key of the series with a rate or 3-in-a-row rule (they have a rate)."""
COMPANION = "companion"
"""`Tables.ranges` key of the series that are the companion (wind, radius) of another's rule."""
_SELECTED = ("jump", "stuck", "crane_wind", "rated_curve")
"""The kinds whose rows a batch looks up by series (the others come with another step's)."""
_GROUPING = ("jump", "stuck", "rate", "crane_wind", "rated_curve", COMPANION)
"""What the engine order keeps together, most important first (`rate`: a rate series)."""
Group = tuple[str, int]
"""A companion group: ('wind', work id) or ('radius', device id)."""


@dataclass(frozen=True, slots=True)
class Slot:
    """One (series, rule) pair: the unit of alert state.

    Attributes:
        series_id: the series.
        sx: its index in the engine's series (sorted by id).
        rule: the resolved rule.
        subject: what its messages talk about.
    """

    series_id: int
    sx: int
    rule: ResolvedRule
    subject: Subject


def _frozen(a: NDArray[Any]) -> NDArray[Any]:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, slots=True, eq=False)
class Tables:
    """The compiled rules of an engine's series (p slots, n series, d devices).

    Series are in *engine order* (their index, sx): grouped by the kinds of their rules, so
    that after a batch is sorted by series each kind's rows are a few contiguous ranges
    (`ranges`), and by id within a group. Slots are numbered by kind, then by series id.

    Attributes:
        series: the watched series, in engine order.
        by_id: the same, by id.
        slots: every slot, numbered by kind then series id.
        slot_of: per kind, per series: its slot of that kind, or -1.
        ranges: per kind a batch looks up by series (and `RATE_SERIES`, `COMPANION`), the
            series that have it as ranges of engine order, each a pair of positions in
            `range_edges`.
        range_edges: (e,) every end of those ranges, ascending (a batch finds them all in
            its sorted series with one search).
        companion_group: per series, the companion group it is the companion series of.
        present: per kind, whether any series has it.
        slot_index: (series id, rule id) -> slot.
        slots_by_sx: per series index, its slots in slot order.
        thr_raw: (p, 4) thresholds BLUE..RED in the measure's unit (NaN: unused), times the
            share of a consecutive rule (it fires over that share of its limit).
        thr_both: (p, 8) signed so that larger is worse, unused levels filled from the level
            above (so that the number reached is the grade; +inf when none), then the same
            less hysteresis: what `kernels.grade_pair` compares with.
        thr_up0, thr_hold0: (p,) the first signed threshold, and less hysteresis.
        thr_up3: (p,) the top signed threshold (crane and wind: the stop-lifting wind).
        thr_top: (p,) the signed threshold of the slot's own top grade.
        direction: (p,) +1 or -1.
        level: (p,) the slot's top grade (one-level rules grade this or normal).
        machine: (p, 3) per slot the readings to set a grade (debounce) and to reset it
            (resolve_after), and the longest run kept (the larger): one gather a batch.
        offset, scale, magnitude: (p,) the affine measure `(value - offset) * scale`, its
            magnitude where set (`rules.measures.scaled_change`); a cumulative slot's offset
            is its baseline and lives in `rules.state`.
        count, epsilon, period_us: (p,) stuck and consecutive options.
        is_affine: (p,) the slot is of an affine kind (`AFFINE_KINDS`).
        slot_sx: (p,) the series index of each slot.
        lvl_cols: (w, n) per series its affine slots as columns (-1: none).
        rate_of: (n,) per series its rate series index (a rate or consecutive rule), or -1.
        rate_slot: (r,) per rate series its rate rule's slot, or -1 (a consecutive rule only).
        consecutive_slot: (r,) per rate series its 3-in-a-row rule's slot, or -1.
        rate_window_us: (r,) per rate series its window, µs, a multiple of 4.
        series_dev: (n,) per series its device index.
        dev_ids: (d,) device ids, ascending; dev_rep: each one's first series.
        dev_silence_us: (d,) silence that makes a device offline, µs.
        dev_periods: sampling periods of that silence; dev_grade: the offline grade.
    """

    series: Sequence[SeriesInfo]
    by_id: Sequence[SeriesInfo]
    slots: Sequence[Slot]
    slot_of: Mapping[str, _I]
    ranges: Mapping[str, tuple[tuple[int, int], ...]]
    range_edges: _I
    companion_group: Sequence[Group | None]
    present: Mapping[str, bool]
    slot_index: Mapping[tuple[int, str], int]
    slots_by_sx: Mapping[int, tuple[int, ...]]
    thr_raw: _F
    thr_both: _F
    thr_up0: _F
    thr_hold0: _F
    thr_up3: _F
    thr_top: _F
    direction: _F
    level: _I
    machine: _I
    offset: _F
    scale: _F
    magnitude: _B
    count: _I
    epsilon: _F
    period_us: _I
    is_affine: _B
    slot_sx: _I
    lvl_cols: _I
    rate_of: _I
    rate_slot: _I
    consecutive_slot: _I
    rate_window_us: _I
    series_dev: _I
    dev_ids: Sequence[int]
    dev_rep: Sequence[SeriesInfo]
    dev_silence_us: _F
    dev_periods: Sequence[float]
    dev_grade: Sequence[Grade]


def compile_tables(
    series: Sequence[SeriesInfo],
    resolved: Mapping[int, list[ResolvedRule]],
    profiles: Mapping[str, Profile],
    catalogue: Mapping[str, Any],
) -> Tables:
    """Compile the resolved rules of `series` (sorted by id) into `Tables`.

    Args:
        series: the series to grade, sorted by id.
        resolved: their rules, by series id (`rules.resolve.resolve_series`).
        profiles: the profiles by hazard kind (for the offline rule of each device).
        catalogue: hazard kinds, for metric names and units.
    """
    by_id = list(series)
    groups = dict(zip((s.series_id for s in by_id), _companions(by_id, resolved), strict=True))
    series = sorted(by_id, key=lambda s: (_grouping(resolved, groups, s), s.series_id))
    sx_of = {s.series_id: sx for sx, s in enumerate(series)}
    per_kind: dict[str, list[Slot]] = {kind: [] for kind in KIND_ORDER}
    for s in by_id:
        metric = catalogue[s.hazard_kind].metrics[s.metric]
        subject = Subject(metric.name_zh, metric.name_en, metric.unit, s.device_code)
        for rule in resolved.get(s.series_id, []):
            per_kind[rule.kind].append(Slot(s.series_id, sx_of[s.series_id], rule, subject))
    slots = [slot for kind in KIND_ORDER for slot in per_kind[kind]]
    n, p = len(series), len(slots)
    slot_of: dict[str, _I] = {}
    start = 0
    for kind in KIND_ORDER:
        table = np.full(n, -1, dtype=np.int64)
        for i, slot in enumerate(per_kind[kind]):
            table[slot.sx] = start + i
        slot_of[kind] = _frozen(table)
        start += len(per_kind[kind])
    rules = [slot.rule for slot in slots]
    opts = [r.options for r in rules]
    raw = np.array(
        [np.array(r.thresholds) * share_of(r.options) for r in rules], dtype=np.float64
    ).reshape(p, 4)
    direction = np.array([r.direction for r in rules], dtype=np.float64).reshape(p, 1)
    hyst = np.array([r.hysteresis for r in rules], dtype=np.float64).reshape(p, 1)
    # An unused level takes the threshold of the next used level above it, so that the
    # number of thresholds reached is the grade (yellow at 0.9 and red at 1.0, blue and
    # orange unused: 0.95 reaches blue and yellow -> YELLOW).
    signed = raw * direction
    for col in (2, 1, 0):
        signed[:, col] = np.where(np.isnan(signed[:, col]), signed[:, col + 1], signed[:, col])
    signed = np.where(np.isnan(signed), np.inf, signed)
    finite = np.isfinite(signed)
    hold = np.where(finite, signed - hyst * np.abs(np.where(finite, signed, 0.0)), np.inf)
    level = np.array([int(r.top_grade()) for r in rules], dtype=np.int64)
    debounce = np.array([r.debounce for r in rules], dtype=np.int64)
    resolve = np.array([r.resolve_after for r in rules], dtype=np.int64)
    # measure = (value - offset) * scale: offset 0 / scale 1 for absolute, 1 / design for
    # ratio, nominal and 1 / nominal for deviation (a cumulative slot's offset: rules.state)
    offset = [o.nominal if isinstance(o, DeviationOptions) else 0.0 for o in opts]
    divisor = [
        o.design
        if isinstance(o, RatioOptions)
        else o.nominal
        if isinstance(o, DeviationOptions)
        else 1.0
        for o in opts
    ]
    magnitude = [bool(getattr(o, "abs", False)) for o in opts]
    counts = [o.count if isinstance(o, StuckOptions | ConsecutiveOptions) else 1 for o in opts]
    periods = [o.period_s if isinstance(o, ConsecutiveOptions) else S_PER_DAY for o in opts]
    rate_of, rate_window = _rate_series(n, per_kind)
    companion_group = [groups[s.series_id] for s in series]
    members: dict[str, _B] = {kind: slot_of[kind] >= 0 for kind in _SELECTED}
    members[RATE_SERIES] = rate_of >= 0
    members[COMPANION] = np.array([g is not None for g in companion_group], dtype=np.bool_)
    ranges, edges = _ranges(members)
    lvl_cols = _level_table(n, slot_of)
    by_sx: dict[int, list[int]] = {}
    for i, slot in enumerate(slots):
        by_sx.setdefault(slot.sx, []).append(i)
    devices = _devices(series, by_id, profiles)
    return Tables(
        series=series,
        by_id=by_id,
        slots=slots,
        slot_of=slot_of,
        ranges=ranges,
        range_edges=_frozen(edges),
        companion_group=companion_group,
        present={kind: bool((slot_of[kind] >= 0).any()) for kind in KIND_ORDER},
        slot_index={(s.series_id, s.rule.rule): i for i, s in enumerate(slots)},
        slots_by_sx={sx: tuple(v) for sx, v in by_sx.items()},
        thr_raw=_frozen(raw),
        thr_both=_frozen(np.hstack((signed, hold))),
        thr_up0=_frozen(signed[:, 0]),
        thr_hold0=_frozen(hold[:, 0]),
        thr_up3=_frozen(signed[:, 3]),
        thr_top=_frozen(signed[np.arange(p), level - 1]),
        direction=_frozen(direction[:, 0]),
        level=_frozen(level),
        machine=_frozen(np.stack((debounce, resolve, np.maximum(debounce, resolve)), axis=1)),
        offset=_frozen(np.array(offset, dtype=np.float64)),
        scale=_frozen(1.0 / np.array(divisor, dtype=np.float64)),
        magnitude=_frozen(np.array(magnitude, dtype=np.bool_)),
        count=_frozen(np.array(counts, dtype=np.int64)),
        epsilon=_frozen(
            np.array([o.epsilon if isinstance(o, StuckOptions) else 0.0 for o in opts])
        ),
        period_us=_frozen(np.array([int(x * US_PER_S) for x in periods], dtype=np.int64)),
        is_affine=_frozen(np.array([r.kind in AFFINE_KINDS for r in rules], dtype=np.bool_)),
        slot_sx=_frozen(np.array([slot.sx for slot in slots], dtype=np.int64)),
        lvl_cols=lvl_cols,
        rate_of=rate_of,
        rate_slot=_frozen(slot_of["rate"][np.flatnonzero(rate_of >= 0)]),
        consecutive_slot=_frozen(slot_of["consecutive"][np.flatnonzero(rate_of >= 0)]),
        rate_window_us=rate_window,
        **devices,
    )


def _level_table(n: int, slot_of: Mapping[str, _I]) -> _I:
    """Affine slots of each series as columns of one table, graded in a single pass;
    transposed, so that the slots of a batch's rows come out column by column."""
    cols: list[list[int]] = [[] for _ in range(n)]
    for kind in AFFINE_KINDS:
        table = slot_of[kind]
        for x in np.flatnonzero(table >= 0).tolist():
            cols[x].append(int(table[x]))
    width = max((len(c) for c in cols), default=0)
    lvl = np.full((n, width), -1, dtype=np.int64)
    for sx, c in enumerate(cols):
        lvl[sx, : len(c)] = c
    return _frozen(lvl.T)


def _rate_series(n: int, per_kind: Mapping[str, list[Slot]]) -> tuple[_I, _I]:
    """Rate windows per series that has a rate or consecutive rule (they share it: the rate
    rule's window if it has one)."""
    window: dict[int, float] = {}
    for slot in per_kind["rate"] + per_kind["consecutive"]:
        assert isinstance(slot.rule.options, RateOptions | ConsecutiveOptions)
        window.setdefault(slot.sx, slot.rule.options.window_s)
    rate_of = np.full(n, -1, dtype=np.int64)
    sxs = sorted(window)
    rate_of[sxs] = np.arange(len(sxs))
    us = np.array([int(window[x] * US_PER_S) for x in sxs], dtype=np.int64)
    # a multiple of 4: checkpoints are taken once per quarter window
    return _frozen(rate_of), _frozen(np.maximum(us - us % 4, 4))


def _companions(
    series: Sequence[SeriesInfo], resolved: Mapping[int, list[ResolvedRule]]
) -> list[Group | None]:
    """Per series, the companion group it serves: the wind metric of a work with a crane and
    wind rule, the radius metric of a device with a rated curve rule."""
    wanted: dict[Group, str] = {}  # group -> the metric of its companion series
    for s in series:
        for rule in resolved.get(s.series_id, []):
            if isinstance(rule.options, CraneWindOptions):
                wanted[("wind", s.work_id)] = rule.options.wind_metric
            elif isinstance(rule.options, RatedCurveOptions):
                wanted[("radius", s.device_id)] = rule.options.radius_metric
    out: list[Group | None] = []
    for s in series:
        groups = [
            g for g in (("wind", s.work_id), ("radius", s.device_id)) if wanted.get(g) == s.metric
        ]
        out.append(groups[0] if groups else None)
    return out


def _grouping(
    resolved: Mapping[int, list[ResolvedRule]], groups: Mapping[int, Group | None], s: SeriesInfo
) -> tuple[bool, ...]:
    """A series' place in engine order: which of `_GROUPING` it has (having them first)."""
    kinds: set[str] = {r.kind for r in resolved.get(s.series_id, [])}
    if groups[s.series_id] is not None:
        kinds.add(COMPANION)
    if "consecutive" in kinds or "rate" in kinds:
        kinds.add("rate")  # a rate series
    return tuple(kind not in kinds for kind in _GROUPING)


def _ranges(
    members: Mapping[str, _B],
) -> tuple[dict[str, tuple[tuple[int, int], ...]], _I]:
    """Per key, the runs of its series in engine order, as pairs of positions in the edges."""
    runs: dict[str, list[tuple[int, int]]] = {}
    for key, mask in members.items():
        padded = np.concatenate(([False], mask, [False]))
        change = np.flatnonzero(padded[1:] != padded[:-1])
        runs[key] = list(zip(change[0::2].tolist(), change[1::2].tolist(), strict=True))
    edges = sorted({e for pairs in runs.values() for pair in pairs for e in pair})
    at = {e: i for i, e in enumerate(edges)}
    ranges = {key: tuple((at[a], at[b]) for a, b in pairs) for key, pairs in runs.items()}
    return ranges, np.array(edges, dtype=np.int64)


def _devices(
    series: Sequence[SeriesInfo], by_id: Sequence[SeriesInfo], profiles: Mapping[str, Profile]
) -> dict[str, Any]:
    """Per device: its index for each series, its first series (by id), its offline rule."""
    first: dict[int, SeriesInfo] = {}
    for s in by_id:
        first.setdefault(s.device_id, s)
    dev_ids = sorted(first)
    index = {d: i for i, d in enumerate(dev_ids)}
    rep = [first[d] for d in dev_ids]
    offline = [profiles[s.hazard_kind].offline for s in rep]
    return {
        "series_dev": _frozen(np.array([index[s.device_id] for s in series], dtype=np.int64)),
        "dev_ids": dev_ids,
        "dev_rep": rep,
        "dev_silence_us": _frozen(
            np.array(
                [
                    max(o.periods * s.sampling_period_s, o.min_silence_s) * US_PER_S
                    for o, s in zip(offline, rep, strict=True)
                ],
                dtype=np.float64,
            )
        ),
        "dev_periods": [o.periods for o in offline],
        "dev_grade": [o.grade for o in offline],
    }
