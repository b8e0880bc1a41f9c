"""The rule engine: effective thresholds as dense arrays, batch evaluation, alert state.

`Engine` is built from the registry's series, the default profiles and the override rows. It
resolves every (series, rule) pair into a *slot* and keeps, per slot, the thresholds and the
alert state (grade and run lengths) in numpy arrays. `evaluate` grades a whole batch with array
operations; Python runs once per transition, never per reading. Slots are numbered by rule kind
and then by series, so rows sorted by (series, time) within each kind are sorted by slot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from rules import kernels as k
from rules.messages import (
    Subject,
    baseline_message,
    late_message,
    level_message,
    offline_message,
    online_message,
)
from rules.profiles import (
    DAY_S,
    SENSOR_KINDS,
    Profile,
    ResolvedRule,
    RuleKind,
    load_profiles,
    resolve_series,
)
from rules.types import Action, Batch, Grade, Override, SeriesInfo, Transition

KIND_ORDER: tuple[RuleKind, ...] = (
    "jump",
    "stuck",
    "absolute",
    "ratio",
    "deviation",
    "cumulative",
    "rate",
    "consecutive",
    "crane_wind",
    "rated_curve",
)
"""Evaluation order of rule kinds; also the order of slot numbers."""
LATE_KINDS: tuple[RuleKind, ...] = ("absolute", "ratio", "deviation", "cumulative")
"""Kinds that grade a late reading on its own (the others need the readings around it)."""
LEVEL_ORDER: tuple[RuleKind, ...] = (*LATE_KINDS, "rate")
"""Kinds compared with graded thresholds, evaluated together in one pass."""
OFFLINE_RULE = "offline"
US = 1_000_000
NEVER = np.iinfo(np.int64).min
_TIME_BITS = 42  # a batch spanning up to 2**42 µs (50 days) sorts on one int64 key
_GRADES = tuple(Grade)
_CURVE_STRIDE = 1e6  # radii (m) of one curve sit in [i * 1e6, i * 1e6 + 1e6)
_RING = 16  # rate checkpoints kept per series: one per window/4 over 3 windows, and spare


class _Graded(NamedTuple):
    """Rows of one rule kind graded for the state machine, each slot's rows together and in
    time order: the slot, the row (index into the sorted batch), the raw grades against the
    thresholds and against the thresholds less hysteresis, and the measure."""

    slot: NDArray[np.int64]
    rows: NDArray[np.int64]
    g_up: NDArray[np.int64]
    g_hold: NDArray[np.int64]
    measure: NDArray[np.float64]


class _Sources(NamedTuple):
    """The rows of a batch that may be companion readings (wind, radius) of a host rule.

    `rows` are indices into the sorted columns `t`, `v` and `sx` their series; `base` and
    `span` turn (group, time) into one sortable key, `group * span + (time - base)`.
    """

    sx: NDArray[np.int64]
    rows: NDArray[np.int64]
    t: NDArray[np.int64]
    v: NDArray[np.float64]
    base: int
    span: int


def _group_order(sources: Sequence[int], groups: Iterable[int]) -> tuple[list[int], bool]:
    """Number companion groups (works for wind, devices for radius) in the order of their
    first companion series, the groups without one last.

    With at most one companion series per group, a batch's companion rows, sorted by series
    and time, are then sorted by group and time as well, and need no sort of their own.

    Args:
        sources: the group of each companion series, in series order.
        groups: every group that has a host rule.

    Returns:
        The groups in number order, and whether no group has two companion series.
    """
    order = list(dict.fromkeys(sources))
    single = len(order) == len(sources)
    order += sorted(set(groups) - set(order))
    return order, single


@dataclass(frozen=True, slots=True)
class Baseline:
    """A dated baseline of a cumulative rule: `value` applies to readings from `valid_from_us`."""

    series_id: int
    value: float
    valid_from_us: int


@dataclass(frozen=True, slots=True)
class _Slot:
    """One (series, rule) pair: the unit of alert state."""

    series_id: int
    sx: int
    rule: ResolvedRule
    subject: Subject


class Engine:
    """Graded alerts for a set of series, evaluated batch by batch.

    Args:
        series: the series to watch (an ingest worker's partition of sites).
        profiles: default profiles by hazard kind; default `load_profiles()`.
        overrides: rows of the `thresholds` table for these series and their works.
        baselines: dated baselines of cumulative rules; a series without one takes its first
            evaluated reading as the initial baseline.
        catalogue: hazard kinds for metric names and units; default the shipped catalogue.
        isolated: works the caller already knows to be unusable (their registry rows could
            not be read), work id -> reason: left out like works whose rules do not resolve.

    Registry content never makes construction fail: a work with an unknown hazard kind or
    metric, or a design value or override its rules cannot use, is left out and listed in
    `isolated`; the other works are graded as usual.
    """

    def __init__(
        self,
        series: Sequence[SeriesInfo],
        profiles: Mapping[str, Profile] | None = None,
        overrides: Iterable[Override] = (),
        baselines: Iterable[Baseline] = (),
        catalogue: Mapping[str, Any] | None = None,
        isolated: Mapping[int, str] | None = None,
    ) -> None:
        if catalogue is None:
            from hazmon.catalogue import catalogue as shipped

            catalogue = shipped()
        if profiles is None:
            profiles = load_profiles(catalogue=catalogue)
        known_bad = dict(isolated or {})
        usable = [s for s in series if s.work_id not in known_bad]
        resolution = resolve_series(usable, profiles, catalogue, list(overrides))
        self.warnings: list[str] = resolution.notes
        self.isolated: Mapping[int, str] = {**known_bad, **resolution.isolated}
        """Works left out (their readings are not graded), work id -> reason: those whose
        rules cannot be resolved, and those the caller could not read (`isolated`)."""
        self._series = sorted(
            (s for s in usable if s.work_id not in self.isolated),
            key=lambda s: s.series_id,
        )
        n = len(self._series)
        sids = np.array([s.series_id for s in self._series], dtype=np.int64)
        self._sid_to_sx = np.full(int(sids.max()) + 2 if n else 1, -1, dtype=np.int64)
        self._sid_to_sx[sids] = np.arange(n)
        self._last_t = np.full(n, NEVER, dtype=np.int64)
        self._last_v = np.full(n, np.nan)
        self._build_devices(profiles)
        self._build_slots(catalogue, resolution.rules)
        self._build_baselines(baselines)

    # --- construction ------------------------------------------------------------------------

    def _build_devices(self, profiles: Mapping[str, Profile]) -> None:
        first: dict[int, int] = {}
        for sx, s in enumerate(self._series):
            first.setdefault(s.device_id, sx)
        dev_ids = sorted(first)
        self._dev_index = {d: i for i, d in enumerate(dev_ids)}
        self._series_dev = np.array(
            [self._dev_index[s.device_id] for s in self._series], dtype=np.int64
        )
        self._dev_rep = [self._series[first[d]] for d in dev_ids]
        offline = [profiles[s.hazard_kind].offline for s in self._dev_rep]
        self._dev_silence_us = np.array(
            [
                max(o.periods * s.sampling_period_s, o.min_silence_s) * US
                for o, s in zip(offline, self._dev_rep, strict=True)
            ],
            dtype=np.float64,
        )
        self._dev_periods = [o.periods for o in offline]
        self._dev_offline_grade = [o.grade for o in offline]
        self._dev_last_t = np.full(len(dev_ids), NEVER, dtype=np.int64)
        self._dev_grade = np.zeros(len(dev_ids), dtype=np.int64)

    def _build_slots(
        self, catalogue: Mapping[str, Any], resolved: Mapping[int, list[ResolvedRule]]
    ) -> None:
        per_kind: dict[str, list[_Slot]] = {kind: [] for kind in KIND_ORDER}
        for sx, s in enumerate(self._series):
            metric = catalogue[s.hazard_kind].metrics[s.metric]
            subject = Subject(metric.name_zh, metric.name_en, metric.unit, s.device_code)
            for rule in resolved.get(s.series_id, []):
                per_kind[rule.kind].append(_Slot(s.series_id, sx, rule, subject))
        self._slots: list[_Slot] = [slot for kind in KIND_ORDER for slot in per_kind[kind]]
        p = len(self._slots)
        n = len(self._series)
        self._slot_of: dict[str, NDArray[np.int64]] = {}
        start = 0
        for kind in KIND_ORDER:
            table = np.full(n, -1, dtype=np.int64)
            for i, slot in enumerate(per_kind[kind]):
                table[slot.sx] = start + i
            self._slot_of[kind] = table
            start += len(per_kind[kind])
        rules = [slot.rule for slot in self._slots]
        # a consecutive rule fires over `share` of its limit: store that as its threshold
        raw = np.array(
            [np.array(r.thresholds) * float(r.options.get("share", 1.0)) for r in rules],
            dtype=np.float64,
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
        self._thr_raw = raw
        self._thr_up = signed
        self._thr_hold = np.where(
            finite, signed - hyst * np.abs(np.where(finite, signed, 0.0)), np.inf
        )
        self._direction = direction[:, 0]
        # measure = (value - offset) * scale, its magnitude when `abs`: offset 0 / scale 1 for
        # absolute, 1 / design for ratio, nominal and 1 / nominal for deviation. A cumulative
        # slot's offset is its series' newest baseline, valid from `_offset_from_t` (kept in
        # step by `_sync_baselines`); other slots' offsets hold at any time (NEVER).
        self._offset = np.array([float(r.options.get("offset", 0.0)) for r in rules])
        self._scale = np.array([1.0 / float(r.options.get("scale", 1.0)) for r in rules])
        self._abs = np.array(
            [
                bool(r.options.get("abs", r.kind in ("cumulative", "rate", "deviation")))
                for r in rules
            ],
            dtype=np.bool_,
        )
        self._offset_from_t = np.full(p, NEVER, dtype=np.int64)
        self._count = np.array([int(r.options.get("count", 1)) for r in rules], dtype=np.int64)
        self._epsilon = np.array([float(r.options.get("epsilon", 0.0)) for r in rules])
        self._debounce = np.array([r.debounce for r in rules], dtype=np.int64)
        self._resolve = np.array([r.resolve_after for r in rules], dtype=np.int64)
        self._cap = np.maximum(self._debounce, self._resolve)
        self._thr_both = np.ascontiguousarray(np.hstack((self._thr_up, self._thr_hold)))
        self._grade = np.zeros(p, dtype=np.int64)
        self._busy = np.zeros(p, dtype=np.bool_)  # grade > 0 or a debounce under way
        self._skip_quiet = True
        # runs of readings at or over each grade (debounce), then under each less hysteresis
        self._runs = np.zeros((p, 8), dtype=np.int64)
        self._level = np.array([int(r.top_grade()) for r in rules], dtype=np.int64)
        self._aux_run = np.zeros(p, dtype=np.int64)  # stuck, consecutive: run carried
        self._aux_slot = np.full(p, -(1 << 40), dtype=np.int64)  # consecutive: last period
        self._period_us = np.array(
            [int(float(r.options.get("period_s", DAY_S)) * US) for r in rules], dtype=np.int64
        )
        self._build_rates(per_kind)
        self._build_wind(per_kind)
        self._build_curves(per_kind)
        self._slot_index = {(s.series_id, s.rule.rule): i for i, s in enumerate(self._slots)}
        self._slots_by_sx: dict[int, list[_Slot]] = {}
        for slot in self._slots:
            self._slots_by_sx.setdefault(slot.sx, []).append(slot)
        self._build_level_table()

    def _build_level_table(self) -> None:
        """Level rules of each series as columns of one table, graded in a single pass."""
        n = len(self._series)
        cols: list[list[int]] = [[] for _ in range(n)]
        for kind in LEVEL_ORDER:
            table = self._slot_of[kind]
            for x in np.flatnonzero(table >= 0).tolist():
                cols[x].append(int(table[x]))
        width = max((len(c) for c in cols), default=0)
        self._lvl = np.full((n, width), -1, dtype=np.int64)
        for sx, c in enumerate(cols):
            self._lvl[sx, : len(c)] = c
        # transposed, so that the slots of a batch's rows come out column by column
        self._lvl_cols = np.ascontiguousarray(self._lvl.T)
        self._thr_hold0 = np.ascontiguousarray(self._thr_hold[:, 0])
        # per slot: the first and the top threshold, and the one of its own (top) grade
        self._thr_up0 = np.ascontiguousarray(self._thr_up[:, 0])
        self._thr_up3 = np.ascontiguousarray(self._thr_up[:, 3])
        self._thr_top = self._thr_up[np.arange(len(self._slots)), self._level - 1]
        kinds = [s.rule.kind for s in self._slots]
        self._is_rate = np.array([k_ == "rate" for k_ in kinds], dtype=np.bool_)
        self._present = {kind: bool((self._slot_of[kind] >= 0).any()) for kind in KIND_ORDER}

    def _build_rates(self, per_kind: Mapping[str, list[_Slot]]) -> None:
        """Rate windows per series that has a rate or consecutive rule (they share it)."""
        window: dict[int, float] = {}
        for slot in per_kind["rate"] + per_kind["consecutive"]:
            window.setdefault(slot.sx, float(slot.rule.options.get("window_s", DAY_S)))
        n = len(self._series)
        self._rate_of = np.full(n, -1, dtype=np.int64)
        sxs = sorted(window)
        self._rate_of[sxs] = np.arange(len(sxs))
        self._rate_window = np.array([int(window[x] * US) for x in sxs], dtype=np.int64)
        self._rate_window = np.maximum(self._rate_window - self._rate_window % 4, 4)
        self._rate_last_slot = np.full(len(sxs), -1, dtype=np.int64)
        self._ring_t = np.full((len(sxs), _RING), NEVER, dtype=np.int64)
        self._ring_v = np.full((len(sxs), _RING), np.nan)

    def _build_wind(self, per_kind: Mapping[str, list[_Slot]]) -> None:
        """Crane-and-wind combinations: each host slot's work, and each work's wind series."""
        hosts = per_kind["crane_wind"]
        wind_metric = {self._series[h.sx].work_id: h.rule.options["wind_metric"] for h in hosts}
        works, self._wind_presorted = _group_order(
            [s.work_id for s in self._series if wind_metric.get(s.work_id) == s.metric],
            wind_metric,
        )
        wx = {w: i for i, w in enumerate(works)}
        p = len(self._slots)
        self._wind_work = np.full(p, -1, dtype=np.int64)
        self._min_load = np.full(p, np.inf)
        self._max_wind_age_us = np.zeros(p, dtype=np.int64)
        base = int(self._slot_of["crane_wind"].max(initial=-1)) - len(hosts) + 1
        for i, h in enumerate(hosts):
            self._wind_work[base + i] = wx[self._series[h.sx].work_id]
            self._min_load[base + i] = float(h.rule.options["min_load_t"])
            self._max_wind_age_us[base + i] = int(float(h.rule.options["max_wind_age_s"]) * US)
        self._wind_source = np.full(len(self._series), -1, dtype=np.int64)
        for sx, s in enumerate(self._series):
            if wind_metric.get(s.work_id) == s.metric:
                self._wind_source[sx] = wx[s.work_id]
        self._wind_works = works
        self._wind_t = np.full(len(works), NEVER, dtype=np.int64)
        self._wind_v = np.full(len(works), np.nan)

    def _build_curves(self, per_kind: Mapping[str, list[_Slot]]) -> None:
        """Rated load curves: per host slot its curve and device, per device its radius series.

        All curves are laid end to end in one array keyed `curve index * 1e6 + radius`, so one
        `np.interp` interpolates every row on its own curve (its radius clipped to the curve).
        """
        hosts = per_kind["rated_curve"]
        radius_metric = {
            self._series[h.sx].device_id: h.rule.options["radius_metric"] for h in hosts
        }
        devices, self._radius_presorted = _group_order(
            [s.device_id for s in self._series if radius_metric.get(s.device_id) == s.metric],
            radius_metric,
        )
        gx = {d: i for i, d in enumerate(devices)}
        p = len(self._slots)
        self._curve_of = np.full(p, -1, dtype=np.int64)
        self._radius_group = np.full(p, -1, dtype=np.int64)
        self._max_radius_age_us = np.zeros(p, dtype=np.int64)
        keys: list[float] = []
        loads: list[float] = []
        self._curve_r_min = np.zeros(len(hosts))
        self._curve_r_max = np.zeros(len(hosts))
        base = int(self._slot_of["rated_curve"].max(initial=-1)) - len(hosts) + 1
        for i, h in enumerate(hosts):
            slot = base + i
            self._curve_of[slot] = i
            self._radius_group[slot] = gx[self._series[h.sx].device_id]
            self._max_radius_age_us[slot] = int(float(h.rule.options["max_radius_age_s"]) * US)
            curve = h.rule.options["curve"]
            self._curve_r_min[i], self._curve_r_max[i] = curve[0][0], curve[-1][0]
            for radius, load in curve:
                keys.append(i * _CURVE_STRIDE + radius)
                loads.append(load)
        self._curve_key = np.array(keys, dtype=np.float64)
        self._curve_load = np.array(loads, dtype=np.float64)
        self._radius_source = np.full(len(self._series), -1, dtype=np.int64)
        for sx, s in enumerate(self._series):
            if radius_metric.get(s.device_id) == s.metric:
                self._radius_source[sx] = gx[s.device_id]
        self._radius_devices = devices
        self._radius_t = np.full(len(devices), NEVER, dtype=np.int64)
        self._radius_v = np.full(len(devices), np.nan)

    def _build_baselines(self, baselines: Iterable[Baseline]) -> None:
        per: dict[int, list[tuple[int, float]]] = {}
        for b in baselines:
            sx = self._sx(b.series_id)
            if sx >= 0:
                per.setdefault(sx, []).append((b.valid_from_us, b.value))
        width = max((len(v) for v in per.values()), default=1)
        n = len(self._series)
        self._base_t = np.full((n, width), np.iinfo(np.int64).max, dtype=np.int64)
        self._base_v = np.full((n, width), np.nan)
        self._base_now_t = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        self._base_now_v = np.full(n, np.nan)
        self._need_initial_mask = self._slot_of["cumulative"] >= 0
        self._need_initial = int(self._need_initial_mask.sum())
        for sx, items in per.items():
            items.sort()
            self._base_now_t[sx], self._base_now_v[sx] = items[-1]
            if self._need_initial_mask[sx]:
                self._need_initial_mask[sx] = False
                self._need_initial -= 1
            self._base_t[sx, : len(items)] = [t for t, _ in items]
            self._base_v[sx, : len(items)] = [v for _, v in items]
        self._sync_baselines(np.arange(n))

    def _sync_baselines(self, sx: NDArray[np.int64]) -> None:
        """Copy the newest baseline of series `sx` into their cumulative slots' offsets."""
        slot = self._slot_of["cumulative"][sx]
        has = slot >= 0
        slot, sx = slot[has], sx[has]
        self._offset[slot] = self._base_now_v[sx]
        self._offset_from_t[slot] = self._base_now_t[sx]

    def _sx(self, series_id: int) -> int:
        if 0 <= series_id < self._sid_to_sx.shape[0]:
            return int(self._sid_to_sx[series_id])
        return -1

    # --- public surface ----------------------------------------------------------------------

    @property
    def series(self) -> Sequence[SeriesInfo]:
        """The watched series, by id."""
        return self._series

    def rules_of(self, series_id: int) -> list[ResolvedRule]:
        """The effective (resolved) rules of one series."""
        return [s.rule for s in self._slots_by_sx.get(self._sx(series_id), [])]

    def history_us(self, series_id: int) -> int:
        """How far back before a series' newest reading a replay must start, µs (see
        `replay`): the longest time window any of its rules looks back over."""
        sx = self._sx(series_id)
        span = 0.0
        for s in self._slots_by_sx.get(sx, []):
            if s.rule.kind in ("rate", "consecutive"):
                window = float(s.rule.options.get("window_s", DAY_S))
                period = float(s.rule.options.get("period_s", DAY_S))
                count = float(s.rule.options.get("count", 1))
                span = max(span, 3.25 * window, (2 * count + 2) * period + 3.25 * window)
        if self._wind_source[sx] >= 0 or self._slot_of["crane_wind"][sx] >= 0:
            span = max(span, float(self._max_wind_age_us.max(initial=0)) / US)
        if self._radius_source[sx] >= 0 or self._slot_of["rated_curve"][sx] >= 0:
            span = max(span, float(self._max_radius_age_us.max(initial=0)) / US)
        return int(span * US)

    def history_readings(self, series_id: int) -> int:
        """How many of a series' newest readings a replay must include at least."""
        sx = self._sx(series_id)
        caps = [
            int(max(s.rule.debounce, s.rule.resolve_after, s.rule.options.get("count", 1)))
            for s in self._slots_by_sx.get(sx, [])
        ]
        return max(caps, default=1) + 2

    def set_baseline(self, series_id: int, value: float, valid_from_us: int) -> None:
        """Add a dated baseline (re-baselining): readings from `valid_from_us` use `value`."""
        sx = self._sx(series_id)
        if sx < 0:
            raise KeyError(series_id)
        row = list(zip(self._base_t[sx].tolist(), self._base_v[sx].tolist(), strict=True))
        row = [(t, v) for t, v in row if not math.isnan(v)] + [(valid_from_us, value)]
        row.sort()
        if len(row) > self._base_t.shape[1]:
            pad = len(row) - self._base_t.shape[1]
            self._base_t = np.pad(
                self._base_t, ((0, 0), (0, pad)), constant_values=np.iinfo(np.int64).max
            )
            self._base_v = np.pad(self._base_v, ((0, 0), (0, pad)), constant_values=np.nan)
        self._base_t[sx, : len(row)] = [t for t, _ in row]
        self._base_v[sx, : len(row)] = [v for _, v in row]
        self._base_now_t[sx], self._base_now_v[sx] = row[-1]
        self._sync_baselines(np.array([sx], dtype=np.int64))
        if self._need_initial_mask[sx]:
            self._need_initial_mask[sx] = False
            self._need_initial -= 1

    def baseline(self, series_id: int, time_us: int) -> float:
        """The baseline in force for a series at `time_us` (NaN if none)."""
        sx = self._sx(series_id)
        t = self._base_t[sx]
        i = int(np.count_nonzero(t <= time_us)) - 1
        return float(self._base_v[sx, i]) if i >= 0 else math.nan

    def forget_grades(self, series_ids: Iterable[int]) -> None:
        """Set the alert grade of every rule of these series to normal, keeping runs and history.

        At a load the database's open alerts are the truth, not a replay: a replay regrades
        stored readings, and some were never graded (stored while their work was isolated).
        Call after `replay` and before `restore_alert`; a reading over a limit then opens the
        alert it should have, at once if its debounce run is complete.
        """
        for series_id in series_ids:
            for slot in self._slots_by_sx.get(self._sx(series_id), []):
                i = self._slot_index[(series_id, slot.rule.rule)]
                self._grade[i] = 0
                self._busy[i] = bool(self._runs[i, 0])

    def restore_alert(self, series_id: int, rule: str, grade: Grade) -> bool:
        """Set the grade of an open alert read back from the database (at restart).

        Returns:
            False if the engine has no such rule for the series (the rule was removed or
            disabled, or its design value is gone): the caller should close that alert.
        """
        sx = self._sx(series_id)
        if rule == OFFLINE_RULE:
            if sx < 0:
                return False
            self._dev_grade[self._series_dev[sx]] = int(grade)
            return True
        i = self._slot_index.get((series_id, rule))
        if i is None:
            return False
        self._grade[i] = int(grade)
        self._busy[i] = bool(grade) or bool(self._runs[i, 0])
        return True

    def open_alerts(self) -> dict[tuple[int, str], Grade]:
        """The open alerts: (series id, rule) -> grade."""
        out = {
            (self._slots[i].series_id, self._slots[i].rule.rule): Grade(int(self._grade[i]))
            for i in np.flatnonzero(self._grade)
        }
        for d in np.flatnonzero(self._dev_grade):
            out[(self._dev_rep[d].series_id, OFFLINE_RULE)] = Grade(int(self._dev_grade[d]))
        return out

    def suspect_series(self) -> set[int]:
        """Series with an open sensor-fault alert (their readings are suspect)."""
        return {
            self._slots[i].series_id
            for i in np.flatnonzero(self._grade)
            if self._slots[i].rule.kind in SENSOR_KINDS
        }

    def adopt(self, old: Engine) -> set[int]:
        """Take over the state of the series an engine being replaced also watched.

        When the registry changes the ingest builds a new engine; the series it shares with the
        old one (same series, device, work and parameters) keep their history - newest reading,
        rate checkpoints, runs of every rule they still have, the newest wind and radius -
        instead of replaying it from the database. Run lengths of a rule whose thresholds were
        changed carry over as they were.

        Returns:
            The ids of the series taken over (the others need `replay`).
        """
        adopted: set[int] = set()
        for sx, info in enumerate(self._series):
            ox = old._sx(info.series_id)
            if ox < 0 or old._series[ox] != info:
                continue
            adopted.add(info.series_id)
            self._last_t[sx], self._last_v[sx] = old._last_t[ox], old._last_v[ox]
            ri, ori = self._rate_of[sx], old._rate_of[ox]
            if ri >= 0 and ori >= 0 and self._rate_window[ri] == old._rate_window[ori]:
                self._ring_t[ri], self._ring_v[ri] = old._ring_t[ori], old._ring_v[ori]
                self._rate_last_slot[ri] = old._rate_last_slot[ori]
            for slot in self._slots_by_sx.get(sx, []):
                i = self._slot_index[(info.series_id, slot.rule.rule)]
                j = old._slot_index.get((info.series_id, slot.rule.rule))
                if j is None or old._slots[j].rule.kind != slot.rule.kind:
                    continue
                self._grade[i], self._busy[i] = old._grade[j], old._busy[j]
                self._runs[i] = old._runs[j]
                self._aux_run[i], self._aux_slot[i] = old._aux_run[j], old._aux_slot[j]
        for d, rep in enumerate(self._dev_rep):
            od = old._dev_index.get(rep.device_id)
            if od is not None:
                self._dev_last_t[d], self._dev_grade[d] = old._dev_last_t[od], old._dev_grade[od]
        for mine, theirs in (
            (
                (self._wind_works, self._wind_t, self._wind_v),
                (old._wind_works, old._wind_t, old._wind_v),
            ),
            (
                (self._radius_devices, self._radius_t, self._radius_v),
                (old._radius_devices, old._radius_t, old._radius_v),
            ),
        ):
            index = {g: i for i, g in enumerate(theirs[0])}
            for i, g in enumerate(mine[0]):
                if g in index:
                    mine[1][i], mine[2][i] = theirs[1][index[g]], theirs[2][index[g]]
        return adopted

    def replay(self, batch: Batch) -> None:
        """Rebuild run lengths and per-series history from stored readings, emitting nothing.

        Used at restart: feed the newest readings of each series (see `history_us` and
        `history_readings`) in time order, then `restore_alert` the open alerts. Every slot is
        stepped (no quiet-slot shortcut), so runs are exact.
        """
        self._evaluate(batch, now_us=None, emit=False)

    def evaluate(self, batch: Batch, now_us: int) -> list[Transition]:
        """Grade a batch of readings and return the alert transitions it causes.

        Args:
            batch: readings in any order; duplicates of a (series, time) keep the first row;
                unknown series and NaN/Inf values are ignored.
            now_us: the evaluation time, epoch µs (for offline alerts of devices heard again).

        Returns:
            Transitions in order of slot and reading time; offline resolutions last.
        """
        return self._evaluate(batch, now_us=now_us, emit=True)

    def tick(self, now_us: int) -> list[Transition]:
        """Open offline alerts for devices silent longer than their limit.

        A device never heard since the engine was built is timed from the first tick.

        Args:
            now_us: current time, epoch µs.
        """
        never = self._dev_last_t == NEVER
        self._dev_last_t[never] = now_us
        silent = (now_us - self._dev_last_t > self._dev_silence_us) & (self._dev_grade == 0)
        out: list[Transition] = []
        for d in np.flatnonzero(silent):
            grade = self._dev_offline_grade[d]
            self._dev_grade[d] = int(grade)
            rep = self._dev_rep[d]
            subject = Subject("", "", "", rep.device_code)
            silent_s = (now_us - int(self._dev_last_t[d])) / US
            zh, en = offline_message(subject, grade, silent_s, self._dev_periods[d])
            out.append(
                Transition(
                    rep.series_id,
                    OFFLINE_RULE,
                    "open",
                    Grade.NORMAL,
                    grade,
                    now_us,
                    silent_s,
                    float(self._dev_silence_us[d]) / US,
                    zh,
                    en,
                )
            )
        return out

    # --- evaluation --------------------------------------------------------------------------
    # A batch makes a few hundred numpy calls on a few thousand rows: call overhead counts, so
    # the evaluation uses array methods (`mask.nonzero()[0]`, `a.take(i)`) rather than the
    # module functions that wrap them in Python (`np.flatnonzero`, `np.take`).

    def _evaluate(self, batch: Batch, now_us: int | None, emit: bool) -> list[Transition]:
        sx, t, v, watermark = self._sorted(batch)
        if sx.shape[0] == 0:
            return []
        late = t < watermark
        out: list[Transition] = []
        if late.any():
            if emit:
                out += self._late(sx[late], t[late], v[late])
            fresh = ~late
            sx, t, v = sx[fresh], t[fresh], v[fresh]
        if sx.shape[0] == 0:
            return out
        # Quiet slots (normal, no partial debounce, nothing over a hold threshold in this
        # batch) cannot change state: their rows are dropped before the state machine. A
        # replay steps everything, so that run lengths are exact.
        self._skip_quiet = emit
        starts = k.segment_starts(sx)
        # the change from each reading's predecessor, shared by the jump and stuck rules
        change = np.abs(v - k.previous(v, starts, self._last_v[sx]))
        out += self._set_initial_baselines(sx, t, v, starts, emit)
        parts: list[_Graded] = []
        suspect = np.zeros(sx.shape[0], dtype=np.bool_)
        if self._present["jump"]:
            rows, slot = self._select("jump", sx)
            jump = change[rows]
            hit = jump >= self._thr_up0[slot]
            suspect[rows[hit]] = True
            parts.append(self._single(slot, rows, jump, hit))
        if self._present["stuck"]:
            rows, slot = self._select("stuck", sx)
            if rows.shape[0]:
                parts.append(self._stuck(rows, slot, v, change, starts))
        if suspect.any():
            good = (~suspect).nonzero()[0]
            sx_good = sx[good]
        else:
            good, sx_good = np.arange(sx.shape[0]), sx
        rate = self._rates(t, v, good, sx_good)
        rows, slot = self._level_pairs(sx_good, good)
        if rows.shape[0]:
            m = self._measure(slot, rows, sx, t, v)
            if rate is not None:
                m = np.where(self._is_rate[slot], rate[rows], m)
            parts.append(self._levels(slot, rows, m))
        if self._present["consecutive"] and rate is not None:
            rows, slot = self._select("consecutive", sx_good, good)
            if rows.shape[0]:
                parts.append(self._consecutive(slot, rows, t, rate))
        if self._present["crane_wind"] or self._present["rated_curve"]:
            base = int(t.min()) - 1
            sources = _Sources(sx_good, good, t, v, base, int(t.max()) - base + 1)
            if self._present["crane_wind"]:
                rows, slot = self._select("crane_wind", sx_good, good)
                parts.append(self._crane_wind(slot, rows, t, v, sources))
            if self._present["rated_curve"]:
                rows, slot = self._select("rated_curve", sx_good, good)
                parts.append(self._rated_curve(slot, rows, t, v, sources))
        if parts:
            out += self._step(parts, t, emit)
        ends = k.segment_ends(starts).nonzero()[0]
        last_sx, last_t = sx[ends], t[ends]
        self._last_t[last_sx] = last_t
        self._last_v[last_sx] = v[ends]
        dev = self._series_dev[last_sx]
        np.maximum.at(self._dev_last_t, dev, last_t)
        if emit and now_us is not None and self._dev_grade.any():
            out += self._back_online(np.unique(dev), now_us)
        return out

    def _level_pairs(
        self, sx_among: NDArray[np.int64], among: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(row, slot) pairs of the level rules of the rows `among` (their series `sx_among`):
        one run per column of the level table, so each slot's rows stay contiguous and in time
        order."""
        # take, not fancy indexing: several times faster over two axes, and faster on large
        # one-dimensional gathers too
        cols = self._lvl_cols.take(sx_among, axis=1).reshape(-1)
        pos = (cols >= 0).nonzero()[0]
        return np.tile(among, self._lvl_cols.shape[0]).take(pos), cols.take(pos)

    def _sorted(
        self, batch: Batch
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.int64]]:
        """Known series, finite values, sorted by (series, time), first of duplicates kept.

        Returns the columns and each row's series watermark (newest time graded before).
        """
        sid = np.asarray(batch.series_id, dtype=np.int64)
        t = np.asarray(batch.time_us, dtype=np.int64)
        v = np.asarray(batch.value, dtype=np.float64)
        if sid.shape[0] and sid.min() >= 0 and sid.max() < self._sid_to_sx.shape[0]:
            sx = self._sid_to_sx[sid]  # the usual batch: no id outside the table
            ok = (sx >= 0) & np.isfinite(v)
        else:
            inside = (sid >= 0) & (sid < self._sid_to_sx.shape[0])
            sx = self._sid_to_sx[np.where(inside, sid, 0)]
            ok = inside & (sx >= 0) & np.isfinite(v)
        if not ok.all():
            sx, t, v = sx[ok], t[ok], v[ok]
        if sx.shape[0] == 0:
            return sx, t, v, sx
        # Radix-sort on the series (stable: duplicates keep batch order); a device's readings
        # usually arrive in time order, so a full sort is needed only when they did not.
        order = k.stable_order(sx, len(self._series))
        sx, t, v = sx.take(order), t.take(order), v.take(order)
        same = sx[1:] == sx[:-1]
        backwards = t[1:] < t[:-1]
        if (same & backwards).any():
            # grouped by series already, so the stable (merge) sort has little to do
            t0 = int(t.min())
            if int(t.max()) - t0 < (1 << _TIME_BITS) and len(self._series) < (1 << 20):
                order = np.argsort((sx << _TIME_BITS) | (t - t0), kind="stable")
            else:
                order = np.lexsort((t, sx))
            sx, t, v = sx[order], t[order], v[order]
            same = sx[1:] == sx[:-1]
        watermark = self._last_t[sx]
        # a repeated (series, time), or a redelivery of the newest reading already graded
        dup = t == watermark
        dup[1:] |= same & (t[1:] == t[:-1])
        if dup.any():
            keep = ~dup
            sx, t, v, watermark = sx[keep], t[keep], v[keep], watermark[keep]
        return sx, t, v, watermark

    def _select(
        self, kind: str, sx: NDArray[np.int64], among: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Rows (indices into the sorted batch) whose series has a `kind` rule, and its slot.

        Args:
            sx: the series of the rows to look at: every row's, or those of `among`.
            among: the rows to look at (default all).
        """
        slot = self._slot_of[kind][sx]
        rows = (slot >= 0).nonzero()[0]
        return (rows if among is None else among[rows]), slot[rows]

    def _levels(
        self, slot: NDArray[np.int64], rows: NDArray[np.int64], m: NDArray[np.float64]
    ) -> _Graded:
        """Grade a level rule's measure against its thresholds (NaN measures are skipped)."""
        signed = m * self._direction.take(slot)
        if self._skip_quiet:
            keep = self._keep(slot, signed >= self._thr_hold0.take(slot))  # NaN: not hot
            keep = keep[~np.isnan(m[keep])]
        else:
            keep = (~np.isnan(m)).nonzero()[0]
        slot, rows, m, signed = slot[keep], rows[keep], m[keep], signed[keep]
        g_up, g_hold = k.grade_pair(signed, self._thr_both.take(slot, axis=0))
        return _Graded(slot, rows, g_up, g_hold, m)

    def _keep(self, slot: NDArray[np.int64], hot: NDArray[np.bool_]) -> NDArray[np.int64]:
        """Indices of the rows of slots that are busy or have a hot row in this batch (all
        their rows: a quiet slot's rows cannot change its state)."""
        hot_slots = slot[hot]
        if hot_slots.shape[0] == 0:
            return self._busy[slot].nonzero()[0]
        # mark the hot slots busy for one lookup, then put back what was there
        was = self._busy[hot_slots]
        self._busy[hot_slots] = True
        keep = self._busy[slot].nonzero()[0]
        self._busy[hot_slots] = was
        return keep

    def _single(
        self,
        slot: NDArray[np.int64],
        rows: NDArray[np.int64],
        m: NDArray[np.float64],
        hit: NDArray[np.bool_],
    ) -> _Graded:
        """Grade a one-level rule (sensor fault, consecutive, combination): hit or normal."""
        if self._skip_quiet:
            keep = self._keep(slot, hit)
            slot, rows, m, hit = slot[keep], rows[keep], m[keep], hit[keep]
        g = np.where(hit, self._level[slot], 0)
        return _Graded(slot, rows, g, g, m)

    def _measure(
        self,
        slot: NDArray[np.int64],
        rows: NDArray[np.int64],
        sx: NDArray[np.int64],
        t: NDArray[np.int64],
        v: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """The graded quantity of a level rule at `rows` of the columns, unsigned (NaN: cannot
        be graded)."""
        tt = t.take(rows)
        m: NDArray[np.float64] = (v.take(rows) - self._offset.take(slot)) * self._scale.take(slot)
        np.absolute(m, out=m, where=self._abs[slot])
        # a cumulative reading older than its series' newest baseline (a late reading, or one
        # before a dated re-baselining) is measured against the baseline in force at its time
        old = (tt < self._offset_from_t.take(slot)).nonzero()[0]
        if old.shape[0]:
            r, s = rows[old], slot[old]
            m_old = (v[r] - self._baseline_at(sx[r], tt[old])) * self._scale[s]
            m[old] = np.where(self._abs[s], np.abs(m_old), m_old)
        return m

    def _baseline_at(self, sx: NDArray[np.int64], t: NDArray[np.int64]) -> NDArray[np.float64]:
        """The baseline in force at each row's time (NaN before the first)."""
        valid = self._base_t[sx] <= t[:, None]
        i = np.count_nonzero(valid, axis=1) - 1
        return np.where(i >= 0, self._base_v[sx, np.maximum(i, 0)], np.nan)

    def _set_initial_baselines(
        self,
        sx: NDArray[np.int64],
        t: NDArray[np.int64],
        v: NDArray[np.float64],
        starts: NDArray[np.bool_],
        emit: bool,
    ) -> list[Transition]:
        """A cumulative series without any baseline takes its first reading as the initial
        one; a `baseline` transition per series asks the store to keep it as a dated record
        (so that a restart uses the same baseline even if older readings arrive later)."""
        if not self._need_initial:
            return []
        first = starts.nonzero()[0]
        rows = first[self._need_initial_mask[sx[first]]]
        if rows.shape[0] == 0:
            return []
        # these series have no baseline at all: column 0 of their rows is free
        x = sx[rows]
        self._base_t[x, 0] = self._base_now_t[x] = t[rows]
        self._base_v[x, 0] = self._base_now_v[x] = v[rows]
        self._sync_baselines(x)
        self._need_initial_mask[x] = False
        self._need_initial -= int(rows.shape[0])
        if not emit:
            return []
        out = []
        for i in rows.tolist():
            slot = self._slots[int(self._slot_of["cumulative"][sx[i]])]
            zh, en = baseline_message(slot.subject, float(v[i]))
            out.append(
                Transition(
                    slot.series_id,
                    slot.rule.rule,
                    "baseline",
                    Grade.NORMAL,
                    Grade.NORMAL,
                    int(t[i]),
                    float(v[i]),
                    math.nan,
                    zh,
                    en,
                )
            )
        return out

    def _stuck(
        self,
        rows: NDArray[np.int64],
        slot: NDArray[np.int64],
        v: NDArray[np.float64],
        change: NDArray[np.float64],
        starts: NDArray[np.bool_],
    ) -> _Graded:
        """Stuck sensor: `count` equal readings in a row (within `epsilon`); `change` is each
        reading's change from its predecessor."""
        same = change[rows] <= self._epsilon[slot]
        if not same.any():  # the usual batch: every run of equal readings is broken
            self._aux_run[slot] = 0
            return self._single(slot, rows, v[rows], same)
        seg = starts[rows]
        need = np.maximum(self._count[slot] - 1, 1)
        run = k.run_lengths(same, k.first_index(seg), self._aux_run[slot], need)
        ends = k.segment_ends(seg)
        self._aux_run[slot[ends]] = run[ends]
        return self._single(slot, rows, v[rows], run >= need)

    def _rates(
        self,
        t: NDArray[np.int64],
        v: NDArray[np.float64],
        good: NDArray[np.int64],
        sx_good: NDArray[np.int64],
    ) -> NDArray[np.float64] | None:
        """Rate of change per day over each rate series' window, for every row (NaN if none).

        Only the rows `good` (their series `sx_good`) are graded and advance the checkpoints.

        The reference of a reading at t is the newest *checkpoint* (first reading of each
        window/4 slot) at or before t - window and not before t - 3 window; the span is thus
        between the window and 3 windows. Checkpoints come from this batch or from a ring of
        the last `_RING` checkpoints per series carried between batches.
        """
        if self._rate_window.shape[0] == 0:
            return None
        rate = np.full(t.shape[0], np.nan)
        ri = self._rate_of[sx_good]
        pos = (ri >= 0).nonzero()[0]
        rows, ri = good[pos], ri[pos]
        if rows.shape[0] == 0:
            return rate
        tt, vv = t[rows], v[rows]
        window = self._rate_window[ri]
        seg = k.segment_starts(ri)
        slotn = tt // (window // 4)
        is_ck = slotn != k.previous(slotn, seg, self._rate_last_slot[ri])
        target = tt - window
        oldest = target - 2 * window
        rank = seg.cumsum() - 1
        ck = is_ck.nonzero()[0]
        # references in the ring of checkpoints from earlier batches
        ring_t = self._ring_t.take(ri, axis=0)
        count = k.count_true(ring_t <= target[:, None]) - 1
        cand = np.maximum(count, 0)
        ref_t = ring_t.reshape(-1)[np.arange(0, ri.shape[0] * _RING, _RING) + cand]
        ref_v = self._ring_v.reshape(-1)[ri * _RING + cand]
        found = (count >= 0) & (ref_t >= oldest)
        # a batch spanning a whole window can hold newer references itself
        if ck.shape[0] and int(tt.max()) - int(tt.min()) >= int(window.min()):
            base = int(oldest.min())
            span = int(tt.max()) - base + 1
            ck_key = rank[ck] * span + (tt[ck] - base)
            j = ck_key.searchsorted(rank * span + (target - base), side="right") - 1
            ref = ck[np.maximum(j, 0)]
            in_batch = (j >= 0) & (rank[ref] == rank) & (tt[ref] >= oldest)
            ref_t = np.where(in_batch, tt[ref], ref_t)
            ref_v = np.where(in_batch, vv[ref], ref_v)
            found |= in_batch
        span_d = np.where(found, (tt - ref_t) / (DAY_S * US), 1.0)
        rate[rows] = np.where(found, np.abs(vv - ref_v) / span_d, np.nan)
        self._push_checkpoints(ri, seg, rank, ck, tt, vv, slotn)
        return rate

    def _push_checkpoints(
        self,
        ri: NDArray[np.int64],
        seg: NDArray[np.bool_],
        rank: NDArray[np.int64],
        ck: NDArray[np.int64],
        tt: NDArray[np.int64],
        vv: NDArray[np.float64],
        slotn: NDArray[np.int64],
    ) -> None:
        """Append each series' new checkpoints to its ring, keeping the newest `_RING`."""
        first = seg.nonzero()[0]
        series_r = ri[first]
        last = k.segment_ends(seg).nonzero()[0]
        self._rate_last_slot[series_r] = slotn[last]
        if ck.shape[0] == 0:
            return
        n_new = np.bincount(rank[ck], minlength=first.shape[0])
        offsets = np.cumsum(n_new) - n_new
        # new ring position j takes concat(old ring, new checkpoints)[j + n_new]
        src = np.arange(_RING)[None, :] + n_new[:, None]
        from_ring = src < _RING
        old = np.minimum(src, _RING - 1)
        new = ck[np.clip(offsets[:, None] + src - _RING, 0, ck.shape[0] - 1)]
        rows = series_r[:, None]
        self._ring_t[series_r] = np.where(from_ring, self._ring_t[rows, old], tt[new])
        self._ring_v[series_r] = np.where(from_ring, self._ring_v[rows, old], vv[new])

    def _consecutive(
        self,
        slot: NDArray[np.int64],
        rows: NDArray[np.int64],
        t: NDArray[np.int64],
        rate: NDArray[np.float64],
    ) -> _Graded:
        """GB 50497-2019 table 8.0.4 note 2: the rate over `share` of the limit in `count`
        consecutive periods. A period's reading is its first; one empty period is tolerated,
        a longer gap restarts the count."""
        period = self._period_us[slot]
        pslot = t[rows] // period
        seg = k.segment_starts(slot)
        prev = k.previous(pslot, seg, self._aux_slot[slot])
        first_of_period = pslot != prev
        ends = k.segment_ends(seg)
        self._aux_slot[slot[ends]] = pslot[ends]
        keep = first_of_period.nonzero()[0]
        slot, rows, pslot, prev = slot[keep], rows[keep], pslot[keep], prev[keep]
        m = rate[rows]
        if rows.shape[0] == 0:
            return self._single(slot, rows, m, np.zeros(0, dtype=np.bool_))
        over = m > self._thr_top[slot]
        if not over.any():  # the usual batch: every run of periods over the share is broken
            self._aux_run[slot] = 0
            return self._single(slot, rows, np.nan_to_num(m), over)
        seg = k.segment_starts(slot)
        gap = pslot - prev > 2
        restart = seg | gap
        first = k.first_index(restart)
        # the carried run continues only into a slot's first stretch; a gap starts from zero
        carry = np.where(gap, 0, self._aux_run[slot])[first]
        run = k.run_lengths(over, first, carry, self._count[slot])
        ends = k.segment_ends(seg)
        self._aux_run[slot[ends]] = run[ends]
        return self._single(slot, rows, np.nan_to_num(m), run >= self._count[slot])

    def _crane_wind(
        self,
        slot: NDArray[np.int64],
        rows: NDArray[np.int64],
        t: NDArray[np.int64],
        v: NDArray[np.float64],
        sources: _Sources,
    ) -> _Graded:
        """A crane lifting (load at least `min_load_t`) while the newest wind reading of its
        work, at most `max_wind_age_s` old, is at or over the stop-lifting limit."""
        host_t = t[rows]
        w_v, w_t = self._newest(
            self._wind_work[slot],
            host_t,
            self._wind_source,
            self._wind_presorted,
            sources,
            self._wind_t,
            self._wind_v,
        )
        fresh_wind = w_t >= host_t - self._max_wind_age_us[slot]  # NEVER: not fresh
        lifting = v[rows] >= self._min_load[slot]
        hit = lifting & fresh_wind & (w_v >= self._thr_up3[slot])
        return self._single(slot, rows, np.where(fresh_wind, w_v, 0.0), hit)

    def _rated_curve(
        self,
        slot: NDArray[np.int64],
        rows: NDArray[np.int64],
        t: NDArray[np.int64],
        v: NDArray[np.float64],
        sources: _Sources,
    ) -> _Graded:
        """Load as a share of the rated load at the crane's current radius: the newest radius
        reading of the same device, at most `max_radius_age_s` old, on the work's rated load
        curve (linear between its points, flat beyond its ends). No fresh radius: not graded."""
        host_t = t[rows]
        r_v, r_t = self._newest(
            self._radius_group[slot],
            host_t,
            self._radius_source,
            self._radius_presorted,
            sources,
            self._radius_t,
            self._radius_v,
        )
        ci = self._curve_of[slot]
        # clipped to its own curve, a radius never interpolates towards a neighbouring curve
        radius = np.minimum(np.maximum(r_v, self._curve_r_min[ci]), self._curve_r_max[ci])
        key = ci * _CURVE_STRIDE + radius
        rated = np.interp(key, self._curve_key, self._curve_load)
        fresh = r_t >= host_t - self._max_radius_age_us[slot]  # NEVER: not fresh
        return self._levels(slot, rows, np.where(fresh, v[rows] / rated, np.nan))

    def _newest(
        self,
        host_group: NDArray[np.int64],
        host_t: NDArray[np.int64],
        source_of: NDArray[np.int64],
        presorted: bool,
        sources: _Sources,
        carry_t: NDArray[np.int64],
        carry_v: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """For each host row, the newest companion reading of its group (the wind of a work,
        the radius of a crane) at or before its time, from this batch or carried from earlier
        ones; the carry is advanced to each group's newest reading.

        Args:
            host_group, host_t: per host row, its group and time.
            source_of: per series, the group it is a companion of (-1: none).
            presorted: at most one companion series per group, groups numbered in series
                order: the batch's companion rows are already sorted by group and time.
            sources: the batch's rows that may be companions, and the time key.
            carry_t, carry_v: per group, the newest companion reading of earlier batches.

        Returns:
            (companion value, companion time) per host row; time NEVER when there is none.
        """
        group = source_of[sources.sx]
        pos = (group >= 0).nonzero()[0]
        if pos.shape[0] == 0:
            return carry_v[host_group], carry_t[host_group]
        group, src_rows = group[pos], sources.rows[pos]
        src_t, src_v = sources.t[src_rows], sources.v[src_rows]
        base, span = sources.base, sources.span
        key = group * span + (src_t - base)
        if not presorted:
            order = key.argsort(kind="stable")
            key, group, src_t, src_v = key[order], group[order], src_t[order], src_v[order]
        j = key.searchsorted(host_group * span + (host_t - base), side="right") - 1
        jc = np.maximum(j, 0)
        have = (j >= 0) & (group[jc] == host_group)  # a reading at the same instant counts
        out_v = np.where(have, src_v[jc], carry_v[host_group])
        out_t = np.where(have, src_t[jc], carry_t[host_group])
        newer = k.segment_ends(k.segment_starts(group)) & (src_t > carry_t[group])
        carry_t[group[newer]] = src_t[newer]
        carry_v[group[newer]] = src_v[newer]
        return out_v, out_t

    def _step(self, parts: list[_Graded], t: NDArray[np.int64], emit: bool) -> list[Transition]:
        """Run the state machine over the graded rows of all kinds; store the new state."""
        slot, rows, g_up, g_hold, measure = (
            np.concatenate(column) for column in zip(*parts, strict=True)
        )
        if slot.shape[0] == 0:
            return []
        starts = k.segment_starts(slot)
        grade, before, runs = k.alert_grades(
            g_up,
            g_hold,
            starts,
            self._grade[slot],
            self._runs.take(slot, axis=0),
            self._debounce[slot],
            self._resolve[slot],
            self._cap[slot],
        )
        ends = k.segment_ends(starts).nonzero()[0]
        last = slot[ends]
        self._grade[last] = grade[ends]
        runs = runs.take(ends, axis=0)
        self._runs[last] = runs
        self._busy[last] = (grade[ends] > 0) | (runs[:, 0] > 0)
        if not emit:
            return []
        changed = (grade != before).nonzero()[0]
        changed = changed[np.lexsort((t[rows[changed]], slot[changed]))]
        return [
            self._transition(*args)
            for args in zip(
                slot[changed].tolist(),
                before[changed].tolist(),
                grade[changed].tolist(),
                t[rows[changed]].tolist(),
                measure[changed].tolist(),
                strict=True,
            )
        ]

    def _transition(
        self, slot: int, g_from: int, g_to: int, time_us: int, value: float
    ) -> Transition:
        s = self._slots[slot]
        action: Action
        if g_to == 0:
            action = "resolve"
        elif g_from == 0:
            action = "suspect" if s.rule.kind in SENSOR_KINDS else "open"
        else:
            action = "escalate" if g_to > g_from else "deescalate"
        # The threshold crossed: the new grade's going up, the left grade's going down.
        threshold = s.rule.thresholds[(g_to if g_to > g_from else g_from) - 1]
        threshold *= float(s.rule.options.get("share", 1.0))
        before, after = _GRADES[g_from], _GRADES[g_to]
        zh, en = level_message(action, s.rule, s.subject, before, after, value, threshold)
        return Transition(
            s.series_id, s.rule.rule, action, before, after, time_us, value, threshold, zh, en
        )

    def _late(
        self, sx: NDArray[np.int64], t: NDArray[np.int64], v: NDArray[np.float64]
    ) -> list[Transition]:
        """One `late` transition per slot whose late readings reached a grade."""
        out: list[Transition] = []
        rows, slot = self._level_pairs(sx, np.arange(sx.shape[0]))
        keep = ~self._is_rate[slot]
        rows, slot = rows[keep], slot[keep]
        if rows.shape[0]:
            m = self._measure(slot, rows, sx, t, v)
            g, _ = k.grade_pair(m * self._direction[slot], self._thr_both.take(slot, axis=0))
            hit = (g > 0).nonzero()[0]
            for s_id in np.unique(slot[hit]):
                mine = hit[slot[hit] == s_id]
                worst = mine[np.argmax(m[mine] * self._direction[s_id])]
                grade = Grade(int(g[worst]))
                s = self._slots[int(s_id)]
                thr = float(self._thr_raw[s_id, grade - 1])
                zh, en = late_message(
                    s.rule, s.subject, grade, int(mine.shape[0]), float(m[worst]), thr
                )
                out.append(
                    Transition(
                        s.series_id,
                        s.rule.rule,
                        "late",
                        Grade(int(self._grade[s_id])),
                        grade,
                        int(t[rows[worst]]),
                        float(m[worst]),
                        thr,
                        zh,
                        en,
                    )
                )
        return out

    def _back_online(self, dev: NDArray[np.int64], now_us: int) -> list[Transition]:
        back = dev[
            (self._dev_grade[dev] > 0)
            & (now_us - self._dev_last_t[dev] <= self._dev_silence_us[dev])
        ]
        out: list[Transition] = []
        for d in back:
            rep = self._dev_rep[d]
            g_from = Grade(int(self._dev_grade[d]))
            self._dev_grade[d] = 0
            zh, en = online_message(Subject("", "", "", rep.device_code))
            out.append(
                Transition(
                    rep.series_id,
                    OFFLINE_RULE,
                    "resolve",
                    g_from,
                    Grade.NORMAL,
                    int(self._dev_last_t[d]),
                    0.0,
                    float(self._dev_silence_us[d]) / US,
                    zh,
                    en,
                )
            )
        return out
