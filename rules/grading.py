"""Grading a sorted batch, kind by kind: rows in, graded rows for the state machine out.

Each step takes the rows of a batch sorted by (series, time), computes its kind's measure with
`rules.measures` and grades it: the number of thresholds reached (`g_up`) and reached less
hysteresis (`g_hold`). Rows of slots that are quiet (normal, no debounce under way, no row
near a threshold) cannot change state and are dropped here, unless the engine replays.

A batch makes a few hundred numpy calls on a few thousand rows: call overhead counts, so the
steps use array methods (`mask.nonzero()[0]`, `a.take(i)`) rather than the module functions
that wrap them in Python (`np.flatnonzero`, `np.take`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from rules import kernels as k
from rules import measures as ms
from rules.companions import Companion, Hosts, Sources
from rules.kernels import any_true as _any
from rules.state import NO_PERIOD, State
from rules.tables import COMPANION, Tables

_I = NDArray[np.int64]
_F = NDArray[np.float64]
_B = NDArray[np.bool_]


_NO_I, _NO_F, _NO_B = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.bool_)


def _joined(parts: list[Any], width: int) -> tuple[Any, ...]:
    """The columns of `parts` (tuples of `width` arrays) each joined into one array."""
    if len(parts) == 1:
        return tuple(parts[0])
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(width))


class Graded(NamedTuple):
    """Rows of one rule kind graded for the state machine, each slot's rows together and in
    time order: the slot, the row (index into the sorted batch), the raw grades against the
    thresholds and against the thresholds less hysteresis, and the measure."""

    slot: _I
    rows: _I
    g_up: _I
    g_hold: _I
    measure: _F


class Grader:
    """The grading steps of one engine, over its tables and state.

    Attributes:
        skip_quiet: drop the rows of quiet slots (off during a replay, so runs stay exact).
    """

    def __init__(self, tables: Tables, state: State, companion: Companion, hosts: Hosts) -> None:
        self.tables, self.state = tables, state
        self.companion, self.hosts = companion, hosts
        self.skip_quiet = True
        self._level: list[tuple[_I, _I, _F]] = []
        self._single: list[tuple[_I, _I, _F, _B]] = []

    def begin(self, sx: _I) -> None:
        """Find where the series of each kind lie in this batch's rows (sorted by series)."""
        self._edge = sx.searchsorted(self.tables.range_edges).tolist()
        self._suspect: _B | None = None

    def exclude(self, suspect: _B) -> None:
        """Leave the `suspect` rows out of the rows of every later step."""
        self._suspect = suspect

    def rows_of(self, key: str) -> _I:
        """The batch's rows of the series that have `key` (a kind, `RATE_SERIES`,
        `COMPANION`): a few contiguous ranges of rows, as the series are grouped by kind."""
        edge = self._edge
        parts = [
            np.arange(edge[a], edge[b]) for a, b in self.tables.ranges[key] if edge[b] > edge[a]
        ]
        rows = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else _NO_I
        if self._suspect is not None:
            rows = rows[~self._suspect.take(rows)]
        return rows

    def select(self, kind: str, sx: _I) -> tuple[_I, _I]:
        """Rows (indices into the sorted batch) whose series has a `kind` rule, and its slot."""
        rows = self.rows_of(kind)
        return rows, self.tables.slot_of[kind].take(sx.take(rows))

    def affine(self, sx: _I, t: _I, v: _F, good: _I | None, sx_good: _I) -> None:
        """Grade the affine level rules (absolute, ratio, deviation, cumulative) of the rows
        `good` (None: every row; their series `sx_good`) in one pass.

        Only the rows of series that may change state are graded: a series with a busy
        affine slot (`State.watch`), or with a reading outside its value band (`State.bands`)
        or older than its newest baseline. The others' slots are quiet and would be dropped.
        """
        state = self.state
        if self.skip_quiet:
            vg = v if good is None else v.take(good)
            band = state.band.take(sx_good, axis=0)
            near = (vg <= band[:, 0]) | (vg >= band[:, 1])
            flag = state.watch.copy()
            flag[sx_good[near]] = True
            if state.base_from_max > int(np.minimum.reduce(t)):
                tg = t if good is None else t.take(good)
                flag[sx_good[tg < state.base_from.take(sx_good)]] = True
            pick = flag.take(sx_good).nonzero()[0]
            sx_good = sx_good.take(pick)
            good = pick if good is None else good.take(pick)
        elif good is None:
            good = np.arange(sx_good.shape[0])
        rows, slot = self.level_pairs(sx_good, good)
        if rows.shape[0]:
            self.levels(slot, rows, self.measure(slot, rows, sx, t, v))

    def level_pairs(self, sx_among: _I, among: _I) -> tuple[_I, _I]:
        """(row, slot) pairs of the affine rules of the rows `among` (their series
        `sx_among`): one run per column of the level table, so each slot's rows stay
        contiguous and in time order."""
        cols_table = self.tables.lvl_cols
        # take, not fancy indexing: several times faster over two axes, and faster on large
        # one-dimensional gathers too
        cols = cols_table.take(sx_among, axis=1).reshape(-1)
        pos = (cols >= 0).nonzero()[0]
        return among.take(pos % among.shape[0]) if pos.shape[0] else pos, cols.take(pos)

    def keep(self, slot: _I, hot: _B) -> _I:
        """Indices of the rows of slots that are busy or have a hot row in this batch (all
        their rows: a quiet slot's rows cannot change its state)."""
        busy = self.state.busy
        hot_slots = slot[hot]
        if hot_slots.shape[0] == 0:
            return busy[slot].nonzero()[0]
        # mark the hot slots busy for one lookup, then put back what was there
        was = busy[hot_slots]
        busy[hot_slots] = True
        keep = busy[slot].nonzero()[0]
        busy[hot_slots] = was
        return keep

    def levels(self, slot: _I, rows: _I, m: _F) -> None:
        """Add rows of a level rule and their measure (NaN: not graded) to the batch's grading."""
        self._level.append((slot, rows, m))

    def single(self, slot: _I, rows: _I, m: _F, hit: _B) -> None:
        """Add rows of a one-level rule (sensor fault, consecutive, combination), whether each
        hits, and the measure to show, to the batch's grading."""
        if self.skip_quiet and not _any(hit):
            # the usual case: only busy slots' rows can change anything
            keep = self.state.busy.take(slot).nonzero()[0]
            if keep.shape[0] == 0:
                return
            slot, rows, m, hit = slot.take(keep), rows.take(keep), m.take(keep), hit.take(keep)
        self._single.append((slot, rows, m, hit))

    def graded(self) -> Graded | None:
        """Grade the rows added by the steps of this batch, all kinds at once: a level rule's
        measure against its thresholds and less hysteresis, a one-level rule hit or normal.
        Rows of quiet slots are dropped (not during a replay), and NaN measures."""
        tables = self.tables
        lv, one = self._level, self._single
        self._level, self._single = [], []
        if not lv and not one:
            return None
        ls, lr, lm = _joined(lv, 3) if lv else (_NO_I, _NO_I, _NO_F)
        ss, sr, sm, sh = _joined(one, 4) if one else (_NO_I, _NO_I, _NO_F, _NO_B)
        signed = lm * tables.direction.take(ls)
        n_level = ls.shape[0]
        if self.skip_quiet:
            hot = signed >= tables.thr_hold0.take(ls)  # NaN: not hot
            if one:
                keep = self.keep(np.concatenate((ls, ss)), np.concatenate((hot, sh)))
                split = int(keep.searchsorted(n_level))
                kl, ks = keep[:split], keep[split:] - n_level
            else:
                kl, ks = self.keep(ls, hot), _NO_I
        else:
            kl, ks = np.arange(n_level), np.arange(ss.shape[0])
        kl = kl[~np.isnan(lm.take(kl))]
        ls = ls.take(kl)
        g_up, g_hold = k.grade_pair(signed.take(kl), tables.thr_both.take(ls, axis=0))
        if not one:
            return Graded(ls, lr.take(kl), g_up, g_hold, lm.take(kl))
        ss = ss.take(ks)
        g = np.where(sh.take(ks), tables.level.take(ss), 0)
        return Graded(
            np.concatenate((ls, ss)),
            np.concatenate((lr.take(kl), sr.take(ks))),
            np.concatenate((g_up, g)),
            np.concatenate((g_hold, g)),
            np.concatenate((lm.take(kl), sm.take(ks))),
        )

    def measure(self, slot: _I, rows: _I, sx: _I, t: _I, v: _F) -> _F:
        """The affine measure of level rules at `rows` of the columns (NaN: cannot be graded).

        A cumulative reading older than its series' newest baseline (a late reading, or one
        before a dated re-baselining) is measured against the baseline in force at its time.
        """
        tables, state = self.tables, self.state
        tt = t.take(rows)
        magnitude = tables.magnitude[slot]
        m = ms.scaled_change(
            v.take(rows), state.offset.take(slot), tables.scale.take(slot), magnitude
        )
        old = (tt < state.offset_from_t.take(slot)).nonzero()[0]
        if old.shape[0]:
            r = rows[old]
            m[old] = ms.scaled_change(
                v[r], state.baseline_at(sx[r], tt[old]), tables.scale[slot[old]], magnitude[old]
            )
        return m

    def jump(self, rows: _I, slot: _I, step: _F, suspect: _B) -> None:
        """Impossible steps: the step itself graded, and its rows marked `suspect`."""
        jump = step.take(rows)
        hit = ms.jumps(jump, self.tables.thr_up0.take(slot))
        suspect[rows[hit]] = True
        self.single(slot, rows, jump, hit)

    def stuck(self, rows: _I, slot: _I, v: _F, step: _F, starts: _B) -> None:
        """Stuck sensor: `count` equal readings in a row (within `epsilon`); `step` is each
        reading's change from its predecessor."""
        tables, state = self.tables, self.state
        epsilon = tables.epsilon.take(slot)
        mine = step.take(rows)
        if not _any(mine <= epsilon):  # the usual batch: every run of equal readings broken
            state.aux_run[slot] = 0
            self.single(slot, rows, v.take(rows), np.zeros(rows.shape[0], dtype=np.bool_))
            return
        seg = starts.take(rows)
        need = np.maximum(tables.count[slot] - 1, 1)
        run = ms.stuck_runs(mine, epsilon, seg, state.aux_run[slot], need)
        ends = k.segment_ends(seg)
        state.aux_run[slot[ends]] = run[ends]
        self.single(slot, rows, v[rows], run >= need)

    def consecutive(self, slot: _I, rows: _I, t: _I, rate: _F) -> None:
        """GB 50497-2019 table 8.0.4 note 2: the rate over `share` of the limit in `count`
        consecutive periods. A period's reading is its first; one empty period is tolerated,
        a longer gap restarts the count. `rate` is each row's rate."""
        tables, state = self.tables, self.state
        period, tt = tables.period_us.take(slot), t.take(rows)
        aux = state.aux_period.take(slot)
        # A row in the period of its slot's last reading changes nothing: only the rows from
        # the first of a new period on are stepped (a suffix of each slot's rows). (An
        # unseen period's product overflows; it is the test after the or that counts.)
        new = ((tt >= (aux + 1) * period) | (aux == NO_PERIOD)).nonzero()[0]
        if new.shape[0] == 0:
            return
        slot, rows, rate = slot.take(new), rows.take(new), rate.take(new)
        pslot = tt.take(new) // period.take(new)
        seg = k.segment_starts(slot)
        heads = seg.nonzero()[0]
        prev = k.previous(pslot, heads, state.aux_period.take(slot.take(heads)))
        first_of_period = pslot != prev
        ends = k.segment_ends(seg)
        state.aux_period[slot[ends]] = pslot[ends]
        keep = first_of_period.nonzero()[0]
        slot, rows, pslot, prev = slot[keep], rows[keep], pslot[keep], prev[keep]
        m = rate[keep]
        if rows.shape[0] == 0:
            return
        over = m > tables.thr_top[slot]
        if not _any(over):  # the usual batch: every run of periods over the share is broken
            state.aux_run[slot] = 0
            self.single(slot, rows, np.nan_to_num(m), over)
            return
        seg = k.segment_starts(slot)
        gap = pslot - prev > 2
        restart = seg | gap
        first = k.first_index(restart)
        # the carried run continues only into a slot's first stretch; a gap starts from zero
        carry = np.where(gap, 0, state.aux_run[slot])[first]
        run = k.run_lengths(over, first, carry, tables.count[slot])
        ends = k.segment_ends(seg)
        state.aux_run[slot[ends]] = run[ends]
        self.single(slot, rows, np.nan_to_num(m), run >= tables.count[slot])

    def cranes(self, sx: _I, t: _I, v: _F) -> None:
        """The rules with a companion series, looked up together: a crane lifting (load at
        least `min_load_t`) while the newest wind reading of its work, at most
        `max_wind_age_s` old, is at or over the stop-lifting limit; the load as a share of the
        rated load at the newest radius of the same device, at most `max_radius_age_s` old,
        on the work's load chart (linear between its points, flat beyond its ends; no fresh
        radius: not graded)."""
        tables, hosts = self.tables, self.hosts
        w_rows, w_slot = self.select("crane_wind", sx)
        c_rows, c_slot = self.select("rated_curve", sx)
        rows, slot = np.concatenate((w_rows, c_rows)), np.concatenate((w_slot, c_slot))
        base = int(np.minimum.reduce(t)) - 1
        span = int(np.maximum.reduce(t)) - base + 1
        sources = Sources(self.rows_of(COMPANION), sx, t, v, base, span)
        host_t = t.take(rows)
        c_v, c_t = self.companion.newest(hosts.group.take(slot), host_t, sources)
        fresh = ms.in_force(host_t, c_t, hosts.max_age_us.take(slot))  # NEVER: not in force
        load = v.take(rows)
        n = w_rows.shape[0]
        if n:
            w_v, w_fresh, w = c_v[:n], fresh[:n], w_slot
            hit = ms.lifting_in_wind(
                load[:n], w_v, hosts.min_load_t.take(w), tables.thr_up3.take(w), w_fresh
            )
            self.single(w, w_rows, np.where(w_fresh, w_v, 0.0), hit)
        if c_rows.shape[0]:
            rated = hosts.curves.rated_load(c_v[n:], hosts.curve_of.take(c_slot))
            self.levels(c_slot, c_rows, np.where(fresh[n:], load[n:] / rated, np.nan))

    def late(self, sx: _I, t: _I, v: _F) -> list[tuple[int, int, int, int, float]]:
        """Grade late readings (older than their series' newest graded one) on their own, by
        the late-gradable kinds: per slot whose late readings reached a grade, (slot, how many
        did, the worst one's grade, its row, its measure)."""
        tables = self.tables
        rows, slot = self.level_pairs(sx, np.arange(sx.shape[0]))
        if rows.shape[0] == 0:
            return []
        m = self.measure(slot, rows, sx, t, v)
        g, _ = k.grade_pair(m * tables.direction[slot], tables.thr_both.take(slot, axis=0))
        hit = (g > 0).nonzero()[0]
        out = []
        for s in np.unique(slot[hit]).tolist():
            mine = hit[slot[hit] == s]
            worst = int(mine[np.argmax(m[mine] * tables.direction[s])])
            out.append((s, int(mine.shape[0]), int(g[worst]), int(rows[worst]), float(m[worst])))
        return out
