"""The mutable state of an engine: per slot its alert, per series its history, per device its
liveness, and the dated baselines of cumulative rules.

Everything a restart must rebuild lives here or in `rules.companions` (rate checkpoints, the
newest wind and radius): `adopt` takes it over from an engine being replaced, `restore_alert`
and `forget_grades` align it with the alerts stored in the database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from rules.tables import Tables
from rules.types import Grade

NEVER = np.iinfo(np.int64).min
"""A time before every reading, epoch µs (no reading yet)."""
_LATEST = np.iinfo(np.int64).max
"""Valid-from time of an unused baseline column."""
NO_PERIOD = -(1 << 40)
"""A period number no reading has (consecutive: no period seen yet)."""


class State:
    """The state of the slots, series and devices of `tables`.

    Attributes (p slots, n series, d devices):
        last_t, last_v: (n,) newest graded reading of each series (NEVER, NaN: none).
        grade: (p,) the alert grade of each slot (0: none open).
        busy: (p,) grade > 0 or a debounce under way: its rows cannot be skipped.
        runs: (p, 8) runs of readings at or over each grade (debounce), then under each less
            hysteresis (resolve).
        aux_run: (p,) stuck and consecutive: the run of equal readings or periods carried.
        aux_period: (p,) consecutive: the period number of the last reading.
        offset: (p,) the affine measure's offset: the tables' one, and for a cumulative slot its
            series' newest baseline, valid from `offset_from_t`.
        base_t, base_v: (n, w) dated baselines per series, ascending (unused: +max, NaN).
        need_initial: (n,) cumulative series without any baseline: the first reading becomes it.
        base_from: (n,) valid-from time of each cumulative series' newest baseline (NEVER:
            none); base_from_max: the latest of them, epoch µs.
        band: (n, 2) a reading of the series at or under `band[:, 0]` or at or over
            `band[:, 1]` may reach a hold threshold of one of its affine rules; one strictly in
            between cannot (`bands`).
        watch: (n,) the series has a busy affine slot: its readings are graded whatever
            their value.
        dev_last_t, dev_grade: (d,) newest reading and offline grade of each device.
    """

    def __init__(self, tables: Tables) -> None:
        n, p, d = len(tables.series), len(tables.slots), len(tables.dev_ids)
        self.tables = tables
        self.last_t = np.full(n, NEVER, dtype=np.int64)
        self.last_v = np.full(n, np.nan)
        self.grade = np.zeros(p, dtype=np.int64)
        self.busy = np.zeros(p, dtype=np.bool_)
        self.runs = np.zeros((p, 8), dtype=np.int64)
        self.aux_run = np.zeros(p, dtype=np.int64)
        self.aux_period = np.full(p, NO_PERIOD, dtype=np.int64)
        self.offset = tables.offset.copy()
        self.offset_from_t = np.full(p, NEVER, dtype=np.int64)
        self.base_t = np.full((n, 1), _LATEST, dtype=np.int64)
        self.base_v = np.full((n, 1), np.nan)
        self.base_now_t = np.full(n, _LATEST, dtype=np.int64)
        self.base_now_v = np.full(n, np.nan)
        self.need_initial = tables.slot_of["cumulative"] >= 0
        self.n_need_initial = int(self.need_initial.sum())
        self.base_from = np.full(n, NEVER, dtype=np.int64)
        self.base_from_max = int(NEVER)
        self.band = np.empty((n, 2))
        self.band[:, 0], self.band[:, 1] = -np.inf, np.inf
        self.watch = np.zeros(n, dtype=np.bool_)
        self.dev_last_t = np.full(d, NEVER, dtype=np.int64)
        self.dev_grade = np.zeros(d, dtype=np.int64)
        self.sync_baselines(np.arange(n))

    # --- baselines -----------------------------------------------------------------------

    def sync_baselines(self, sx: NDArray[np.int64]) -> None:
        """Copy the newest baseline of series `sx` into their cumulative slots' offsets."""
        slot = self.tables.slot_of["cumulative"][sx]
        has = slot >= 0
        slot, cx = slot[has], sx[has]
        self.offset[slot] = self.base_now_v[cx]
        self.offset_from_t[slot] = self.base_now_t[cx]
        dated = cx[~np.isnan(self.base_now_v[cx])]
        self.base_from[dated] = self.base_now_t[dated]
        if dated.shape[0]:
            self.base_from_max = max(self.base_from_max, int(self.base_now_t[dated].max()))
        self.bands(sx)

    def bands(self, sx: NDArray[np.int64]) -> None:
        """Recompute the value bands of series `sx` from their affine slots (see `band`).

        Slot by slot, the readings that reach the hold threshold h (signed so that larger is
        worse) of `(value - offset) * scale` lie above `offset + h / scale`, below `offset -
        h / scale`, or both (a magnitude); the band is widened by a relative 1e-9 so that
        rounding never hides one. A slot it cannot bound (no baseline yet, a downward
        magnitude) gives an empty band: every reading is graded.
        """
        tables = self.tables
        slots = tables.lvl_cols[:, sx]  # (w, m): -1 where a series has fewer slots
        used = slots >= 0
        k = np.where(used, slots, 0)
        h, off = tables.thr_hold0[k], self.offset[k]
        scale, up, mag = tables.scale[k], tables.direction[k] > 0, tables.magnitude[k]
        finite = np.isfinite(h)
        reach = np.where(finite, h / scale, 0.0)
        margin = 1e-9 * (np.abs(off) + np.abs(reach)) + 1e-300
        above = np.where(finite, off + reach - margin, np.inf)
        below = np.where(finite, off - reach + margin, -np.inf)
        hi = np.where(up, above, np.inf)
        lo = np.where(up, np.where(mag, below, -np.inf), below)
        # a downward magnitude is hot near its offset, not beyond a bound; no baseline: NaN
        unbounded = (mag & ~up) | (mag & up & finite & (h <= 0)) | np.isnan(off)
        lo = np.where(used & unbounded, np.inf, np.where(used, lo, -np.inf))
        hi = np.where(used, hi, np.inf)
        self.band[sx, 0] = lo.max(axis=0, initial=-np.inf)
        self.band[sx, 1] = hi.min(axis=0, initial=np.inf)

    def note_busy(self, slots: NDArray[np.int64]) -> None:
        """Update `watch` after the state machine stepped `slots` (every slot stepped of a
        series that has busy affine slots is among them)."""
        tables = self.tables
        affine = slots[tables.is_affine[slots]]
        sx = tables.slot_sx[affine]
        self.watch[sx] = False
        self.watch[sx[self.busy[affine]]] = True

    def refresh_watch(self) -> None:
        """Recompute `watch` from every slot (after grades were set from outside)."""
        self.watch[:] = False
        busy = (self.busy & self.tables.is_affine).nonzero()[0]
        self.watch[self.tables.slot_sx[busy]] = True

    def set_baseline(self, sx: int, value: float, valid_from_us: int) -> None:
        """Add a dated baseline to series `sx`: readings from `valid_from_us` use `value`."""
        row = list(zip(self.base_t[sx].tolist(), self.base_v[sx].tolist(), strict=True))
        row = [(t, v) for t, v in row if not math.isnan(v)] + [(valid_from_us, value)]
        row.sort()
        if len(row) > self.base_t.shape[1]:
            pad = len(row) - self.base_t.shape[1]
            self.base_t = np.pad(self.base_t, ((0, 0), (0, pad)), constant_values=_LATEST)
            self.base_v = np.pad(self.base_v, ((0, 0), (0, pad)), constant_values=np.nan)
        self.base_t[sx, : len(row)] = [t for t, _ in row]
        self.base_v[sx, : len(row)] = [v for _, v in row]
        self.base_now_t[sx], self.base_now_v[sx] = row[-1]
        self.sync_baselines(np.array([sx], dtype=np.int64))
        if self.need_initial[sx]:
            self.need_initial[sx] = False
            self.n_need_initial -= 1

    def take_initial(
        self, sx: NDArray[np.int64], t: NDArray[np.int64], v: NDArray[np.float64]
    ) -> None:
        """Series `sx`, which have no baseline at all, take the readings (t, v) as their first."""
        self.base_t[sx, 0] = self.base_now_t[sx] = t
        self.base_v[sx, 0] = self.base_now_v[sx] = v
        self.sync_baselines(sx)
        self.need_initial[sx] = False
        self.n_need_initial -= int(sx.shape[0])

    def baseline(self, sx: int, time_us: int) -> float:
        """The baseline in force for series `sx` at `time_us` (NaN if none)."""
        i = int(np.count_nonzero(self.base_t[sx] <= time_us)) - 1
        return float(self.base_v[sx, i]) if i >= 0 else math.nan

    def baseline_at(self, sx: NDArray[np.int64], t: NDArray[np.int64]) -> NDArray[np.float64]:
        """The baseline in force at each row's time (NaN before the first)."""
        valid = self.base_t[sx] <= t[:, None]
        i = np.count_nonzero(valid, axis=1) - 1
        return np.where(i >= 0, self.base_v[sx, np.maximum(i, 0)], np.nan)

    # --- alerts --------------------------------------------------------------------------

    def forget_grades(self, slots: Iterable[int]) -> None:
        """Set these slots' grades to normal, keeping their runs."""
        for i in slots:
            self.grade[i] = 0
            self.busy[i] = bool(self.runs[i, 0])
        self.refresh_watch()

    def restore_grade(self, slot: int, grade: Grade) -> None:
        """Set the grade of a slot's open alert (read back from the database)."""
        self.grade[slot] = int(grade)
        self.busy[slot] = bool(grade) or bool(self.runs[slot, 0])
        if self.busy[slot] and self.tables.is_affine[slot]:
            self.watch[self.tables.slot_sx[slot]] = True

    # --- taking over -----------------------------------------------------------------------

    def adopt(self, old: State, pairs: Iterable[tuple[int, int]]) -> None:
        """Take over the state of series from an engine being replaced.

        Args:
            old: that engine's state.
            pairs: (series index here, series index there) of the series taken over.

        Newest reading, runs, grades and counters of every rule the series still has (same
        rule id and kind) carry over; run lengths of a rule whose thresholds changed carry over
        as they were. Dated baselines are not copied: the caller gives them (`set_baseline`).
        """
        mine, theirs = self.tables, old.tables
        for sx, ox in pairs:
            self.last_t[sx], self.last_v[sx] = old.last_t[ox], old.last_v[ox]
            for i in mine.slots_by_sx.get(sx, ()):
                slot = mine.slots[i]
                j = theirs.slot_index.get((slot.series_id, slot.rule.rule))
                if j is None or theirs.slots[j].rule.kind != slot.rule.kind:
                    continue
                self.grade[i], self.busy[i] = old.grade[j], old.busy[j]
                self.runs[i] = old.runs[j]
                self.aux_run[i], self.aux_period[i] = old.aux_run[j], old.aux_period[j]
        self.refresh_watch()
        index = {dev: d for d, dev in enumerate(theirs.dev_ids)}
        for d, dev in enumerate(mine.dev_ids):
            od = index.get(dev)
            if od is not None:
                self.dev_last_t[d], self.dev_grade[d] = old.dev_last_t[od], old.dev_grade[od]
