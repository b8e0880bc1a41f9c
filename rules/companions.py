"""Cross-series lookups: the readings one rule needs from another series, and rate references.

- `Companion`: the newest reading of a companion series at a host reading's time, from the batch
  or carried from earlier batches: the wind of a crane's work (crane in wind), the radius of
  the crane itself (rated load curve).
- `CheckpointRing`: per rate series the checkpoints a rate is taken against (the first reading
  of each quarter window), the newest `RING` of them carried between batches.

Both hold mutable state (carried readings, checkpoints) that a restart rebuilds by replay and
that `adopt` takes over from an engine being replaced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from rules import kernels as k
from rules.kinds import CraneWindOptions, RatedCurveOptions
from rules.measures import US_PER_S, CurveStack, rate_per_day
from rules.state import NEVER
from rules.tables import Group, Tables

RING = 16
"""Rate checkpoints kept per series: one per quarter window over 3 windows, and spare."""
_FOREVER = np.iinfo(np.int64).max
_POSITIONS = np.arange(RING)[None, :]

_I = NDArray[np.int64]
_F = NDArray[np.float64]


class Sources(NamedTuple):
    """The rows of a batch that are companion readings of a host rule.

    `rows` are indices into the sorted columns `t`, `v`, and `sx` the series of every row;
    `base` and `span` turn (group, time) into one sortable key, `group * span + (time - base)`.
    """

    rows: _I
    sx: _I
    t: _I
    v: _F
    base: int
    span: int


def group_order(sources: Sequence[Group], groups: Iterable[Group]) -> tuple[list[Group], bool]:
    """Number companion groups (the wind of works, the radius of devices) in the order of
    their first companion series, the groups without one last.

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


class Companion:
    """The newest reading of companion series: per group, the wind of a work ('wind', work
    id) or the radius of a crane ('radius', device id), looked up for both at once.

    Args:
        group_of_series: per series (in engine order), the group it is the companion series
            of, else None.
        host_groups: the group of every host rule.

    Attributes:
        groups: the group ids in number order.
        source_of: (n,) per series the group number it is a companion of (-1: none).
        carry_t, carry_v: per group number, the newest companion reading so far (NEVER, NaN).
    """

    def __init__(
        self, group_of_series: Sequence[Group | None], host_groups: Iterable[Group]
    ) -> None:
        companions = [g for g in group_of_series if g is not None]
        self.groups, self.presorted = group_order(companions, host_groups)
        number = {g: i for i, g in enumerate(self.groups)}
        self.number: Mapping[Group, int] = number
        self.source_of = np.array(
            [-1 if g is None else number[g] for g in group_of_series], dtype=np.int64
        )
        self.carry_t = np.full(len(self.groups), NEVER, dtype=np.int64)
        self.carry_v = np.full(len(self.groups), np.nan)

    def newest(self, host_group: _I, host_t: _I, sources: Sources) -> tuple[_F, _I]:
        """For each host row, the newest companion reading of its group at or before its time,
        from this batch or carried from earlier ones; the carry advances to each group's newest.

        Args:
            host_group, host_t: per host row, its group number and time.
            sources: the batch's rows that may be companions, and the time key.

        Returns:
            (companion value, companion time) per host row; time NEVER when there is none.
        """
        carry_t, carry_v = self.carry_t, self.carry_v
        src_rows = sources.rows
        if src_rows.shape[0] == 0:
            return carry_v.take(host_group), carry_t.take(host_group)
        group = self.source_of.take(sources.sx.take(src_rows))
        src_t, src_v = sources.t.take(src_rows), sources.v.take(src_rows)
        base, span = sources.base, sources.span
        key = group * span + (src_t - base)
        if not self.presorted:
            order = key.argsort(kind="stable")
            key, group, src_t, src_v = key[order], group[order], src_t[order], src_v[order]
        j = key.searchsorted(host_group * span + (host_t - base), side="right") - 1
        jc = np.maximum(j, 0)
        have = (j >= 0) & (group.take(jc) == host_group)  # a reading at the same instant counts
        out_v = np.where(have, src_v.take(jc), carry_v.take(host_group))
        out_t = np.where(have, src_t.take(jc), carry_t.take(host_group))
        newer = k.segment_ends(k.segment_starts(group)) & (src_t > carry_t[group])
        carry_t[group[newer]] = src_t[newer]
        carry_v[group[newer]] = src_v[newer]
        return out_v, out_t

    def adopt(self, old: Companion) -> None:
        """Take over the carried readings of the groups an engine being replaced also had."""
        for i, g in enumerate(self.groups):
            j = old.number.get(g)
            if j is not None:
                self.carry_t[i], self.carry_v[i] = old.carry_t[j], old.carry_v[j]


class CheckpointRing:
    """Rate references: per rate series the newest `RING` checkpoints and the last quarter
    window seen.

    The reference of a reading at t is the newest checkpoint (first reading of each window/4
    slot) at or before t - window and not before t - 3 window; the span is thus between the
    window and 3 windows. Checkpoints come from this batch or from the ring.

    A ring holds its entries in time order, padded in front with NEVER and followed by two
    FOREVER sentinels. A series' reference moves once a quarter window while its readings
    come every few minutes, so each rate series keeps a cursor: the position of the entry
    its last lookup found (the target times of a series only grow). A reading looks one and
    two entries past it; only one whose target passed two entries counts its ring again. The
    entry at each cursor and the time of the next are kept apart (`at_t`, `at_v`, `next_t`),
    so that a reading whose target has not reached the next entry reads no ring at all.
    Pushing new checkpoints moves the entries, and the cursors, towards the front.

    Args:
        window_us: (r,) per rate series its window, µs, a multiple of 4.
    """

    def __init__(self, window_us: _I) -> None:
        r = window_us.shape[0]
        self.window_us = window_us
        # one window for every series (the usual case): scalars instead of gathers
        self._window = int(window_us[0]) if r and (window_us == window_us[0]).all() else None
        self.last_slot = np.full(r, -1, dtype=np.int64)
        self.ring_t = np.full((r, RING + 2), NEVER, dtype=np.int64)
        self.ring_t[:, RING:] = _FOREVER
        self.ring_v = np.full((r, RING + 2), np.nan)
        # every entry of an empty ring (NEVER) is before any target: the cursor is at the last
        self.cursor = np.full(r, RING - 1, dtype=np.int64)
        # the entry at the cursor and the time of the next, per series: what most readings need
        self.at_t = np.full(r, NEVER, dtype=np.int64)
        self.at_v = np.full(r, np.nan)
        self.next_t = np.full(r, _FOREVER, dtype=np.int64)

    def rates(self, ri: _I, tt: _I, vv: _F) -> _F:
        """Rate per day of each row against its reference (NaN if none); advances the ring.

        Args:
            ri, tt, vv: rate series index, time and value of the rows, sorted by series and
                time, every row newer than its series' checkpoints.
        """
        window = self.window_us.take(ri) if self._window is None else self._window
        shortest = self._window if self._window is not None else int(self.window_us.min())
        seg = k.segment_starts(ri)
        heads = seg.nonzero()[0]
        ends = k.segment_ends(seg)
        slotn = tt // (window // 4)
        is_ck = slotn != k.previous(slotn, heads, self.last_slot.take(ri.take(heads)))
        target = tt - window
        oldest = target - 2 * window
        ck = is_ck.nonzero()[0]
        ref_t, ref_v = self._lookup(ri, target, ends)
        # a batch in which a series spans a whole window can hold newer references itself
        if (
            ck.shape[0]
            and int(np.maximum.reduce(tt)) - int(np.minimum.reduce(tt)) >= shortest
            and int(np.maximum.reduce(tt[ends] - tt.take(heads))) >= shortest
        ):
            rank = seg.cumsum() - 1
            base = int(np.minimum.reduce(oldest))
            span = int(np.maximum.reduce(tt)) - base + 1
            ck_key = rank[ck] * span + (tt[ck] - base)
            j = ck_key.searchsorted(rank * span + (target - base), side="right") - 1
            ref = ck[np.maximum(j, 0)]
            in_batch = (j >= 0) & (rank[ref] == rank) & (tt[ref] >= oldest)
            ref_t = np.where(in_batch, tt[ref], ref_t)
            ref_v = np.where(in_batch, vv[ref], ref_v)
        # no reference (NEVER, or older than 3 windows): the reading's own time, so no rate
        rate = rate_per_day(vv, tt, ref_v, np.where(ref_t >= oldest, ref_t, tt))
        self.last_slot[ri[ends]] = slotn[ends]
        if ck.shape[0]:
            self._push(ri, ck, tt, vv)
        return rate

    def _lookup(self, ri: _I, target: _I, ends: NDArray[np.bool_]) -> tuple[_I, _F]:
        """Per row, the newest ring entry at or before `target` (NEVER, NaN if none); the
        cursors move to what the last row of each series found (`ends`)."""
        ref_t, ref_v = self.at_t.take(ri), self.at_v.take(ri)
        moved = (target >= self.next_t.take(ri)).nonzero()[0]
        if moved.shape[0] == 0:  # every target before the entry after its cursor
            return ref_t, ref_v
        # the rows whose target reached the next entry, or further
        width = RING + 2
        r = ri.take(moved)
        tm = target.take(moved)
        base = r * width
        at = self.cursor.take(r) + 1
        flat_t = self.ring_t.reshape(-1)
        far = (flat_t.take(base + at + 1) <= tm).nonzero()[0]  # position RING + 1: sentinel
        if far.shape[0]:
            # the target passed two entries or more: count the ring's entries before it
            rows = self.ring_t.take(r.take(far), axis=0)[:, :RING]
            at[far] = k.count_true(rows <= tm.take(far)[:, None]) - 1
        ref_t[moved] = flat_t.take(base + at)
        ref_v[moved] = self.ring_v.reshape(-1).take(base + at)
        # the cursor of a series moves to what its last row found (rows are in time order)
        last = ends.take(moved).nonzero()[0]
        self._point(r.take(last), at.take(last))
        return ref_t, ref_v

    def _point(self, r: _I, at: _I) -> None:
        """Put the cursors of rate series `r` at ring positions `at` (-1: before the first)."""
        width = RING + 2
        self.cursor[r] = at
        flat = r * width + at
        self.at_t[r] = np.where(at >= 0, self.ring_t.reshape(-1).take(flat), NEVER)
        self.at_v[r] = self.ring_v.reshape(-1).take(flat)  # (at -1: any value, not found)
        self.next_t[r] = self.ring_t.reshape(-1).take(flat + 1)

    def _push(self, ri: _I, ck: _I, tt: _I, vv: _F) -> None:
        """Append the new checkpoints `ck` (rows) to their series' rings, keeping the newest
        `RING`; only series with new checkpoints are touched. An entry pushed out of a ring
        has 16 newer checkpoints in 16 later quarter windows, so it is over 3 windows older
        than any later reading: its cursor stops at -1 (before the first entry)."""
        ck_ri = ri.take(ck)
        if (ck_ri[1:] > ck_ri[:-1]).all():
            # the usual batch: one new checkpoint per series, each ring moves up by one
            series_r, new_t = ck_ri, tt.take(ck)
            for ring, new in ((self.ring_t, new_t), (self.ring_v, vv.take(ck))):
                rows = ring.take(series_r, axis=0)  # whole rows: contiguous, sentinels kept
                rows[:, : RING - 1] = rows[:, 1:RING]
                rows[:, RING - 1] = new
                ring[series_r] = rows
            # each cursor moves with its entry; one at the newest entry now has a next one,
            # one pushed out (from 0) stops at -1, where the old second entry comes next
            cur = self.cursor.take(series_r)
            self.cursor[series_r] = np.maximum(cur - 1, -1)
            self.next_t[series_r] = np.where(cur == RING - 1, new_t, self.next_t.take(series_r))
            out = (cur == 0).nonzero()[0]
            if out.shape[0]:
                self.at_t[series_r[out]], self.at_v[series_r[out]] = NEVER, np.nan
            return
        else:
            heads = k.segment_starts(ck_ri).nonzero()[0]
            series_r = ck_ri.take(heads)
            counts = np.empty_like(heads)
            counts[:-1] = heads[1:] - heads[:-1]
            counts[-1] = ck.shape[0] - heads[-1]
            # new ring position j takes concat(old ring, new checkpoints)[j + n_new]
            src = _POSITIONS + counts[:, None]
            from_ring = src < RING
            old = np.minimum(src, RING - 1)
            new = ck.take(np.minimum(np.maximum(heads[:, None] + src - RING, 0), ck.shape[0] - 1))
            rows = series_r[:, None]
            for ring, col in ((self.ring_t, tt), (self.ring_v, vv)):
                ring[series_r, :RING] = np.where(from_ring, ring[rows, old], col.take(new))
            self._point(series_r, np.maximum(self.cursor.take(series_r) - counts, -1))

    def adopt(self, old: CheckpointRing, pairs: Iterable[tuple[int, int]]) -> None:
        """Take over the checkpoints of rate series (here, there) with the same window."""
        for ri, ori in pairs:
            if self.window_us[ri] == old.window_us[ori]:
                self.ring_t[ri], self.ring_v[ri] = old.ring_t[ori], old.ring_v[ori]
                self.last_slot[ri], self.cursor[ri] = old.last_slot[ori], old.cursor[ori]
                self.at_t[ri], self.at_v[ri] = old.at_t[ori], old.at_v[ori]
                self.next_t[ri] = old.next_t[ori]


class Hosts(NamedTuple):
    """Per slot, what a crane-and-wind or rated-curve rule needs of its companions (p slots).

    Attributes:
        group: the companion group number of each host slot (-1: other slots).
        min_load_t: load from which the crane counts as lifting, t (+inf: other slots).
        max_age_us: oldest companion reading in force, µs (0: other slots).
        curve_of: a rated-curve slot's curve in `curves` (-1: other slots).
        curves: every rated-curve slot's load chart, in slot order.
        max_wind_age_us, max_radius_age_us: the longest of the wind and of the radius ages.
    """

    group: _I
    min_load_t: _F
    max_age_us: _I
    curve_of: _I
    curves: CurveStack
    max_wind_age_us: int
    max_radius_age_us: int


def build_companions(tables: Tables) -> tuple[Companion, Hosts]:
    """The companion lookup of `tables`' crane rules, and the per-slot host columns."""
    series, slots, p = tables.series, tables.slots, len(tables.slots)
    hosts_of: list[Group] = []
    for slot in slots:
        s = series[slot.sx]
        if isinstance(slot.rule.options, CraneWindOptions):
            hosts_of.append(("wind", s.work_id))
        elif isinstance(slot.rule.options, RatedCurveOptions):
            hosts_of.append(("radius", s.device_id))
    companion = Companion(tables.companion_group, hosts_of)
    group = np.full(p, -1, dtype=np.int64)
    min_load = np.full(p, np.inf)
    age = np.zeros(p, dtype=np.int64)
    curve_of = np.full(p, -1, dtype=np.int64)
    charts: list[tuple[tuple[float, float], ...]] = []
    ages = {"wind": [0], "radius": [0]}
    for i, slot in enumerate(slots):
        opts, s = slot.rule.options, series[slot.sx]
        if isinstance(opts, CraneWindOptions):
            group[i] = companion.number[("wind", s.work_id)]
            min_load[i] = opts.min_load_t
            age[i] = int(opts.max_wind_age_s * US_PER_S)
            ages["wind"].append(int(age[i]))
        elif isinstance(opts, RatedCurveOptions):
            group[i] = companion.number[("radius", s.device_id)]
            curve_of[i] = len(charts)
            age[i] = int(opts.max_radius_age_s * US_PER_S)
            ages["radius"].append(int(age[i]))
            charts.append(opts.curve)
    hosts = Hosts(
        group,
        min_load,
        age,
        curve_of,
        CurveStack.of(charts),
        max(ages["wind"]),
        max(ages["radius"]),
    )
    return companion, hosts
