"""The rule engine: batch evaluation, the alert state machine, offline devices, restarts.

`Engine` is built from the registry's series, the default profiles and the override rows. It
resolves every (series, rule) pair into a *slot* (`rules.tables`) and keeps the alert state of
each in numpy arrays (`rules.state`). `evaluate` grades a whole batch with array operations,
kind by kind (`rules.grading`), and runs the state machine over all graded rows at once; Python
runs once per transition, never per reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rules import kernels as k
from rules.companions import CheckpointRing, build_companions
from rules.grading import Graded, Grader
from rules.kernels import all_true as _all
from rules.kernels import any_true as _any
from rules.kinds import ConsecutiveOptions, RateOptions
from rules.measures import S_PER_DAY, US_PER_S, step_change
from rules.profiles import Profile, load_profiles
from rules.resolve import ResolvedRule, resolve_series
from rules.state import NEVER, State
from rules.tables import RATE_SERIES, compile_tables
from rules.transitions import OFFLINE_RULE, Explainer, Row, build
from rules.types import Batch, Grade, Override, SeriesInfo, Transition

_I = NDArray[np.int64]
_F = NDArray[np.float64]


class Engine:
    """Graded alerts for a set of series, evaluated batch by batch.

    Args:
        series: the series to watch (an ingest worker's partition of sites).
        profiles: default profiles by hazard kind; default `load_profiles()`.
        overrides: rows of the `thresholds` table for these series and their works.
        catalogue: hazard kinds for metric names and units; default the shipped catalogue.
        isolated: works the caller already knows to be unusable (their registry rows could
            not be read), work id -> reason: left out like works whose rules do not resolve.

    Registry content never makes construction fail: a work with an unknown hazard kind or
    metric, or a design value or override its rules cannot use, is left out and listed in
    `isolated`; the other works are graded as usual. Dated baselines of cumulative rules are
    given afterwards (`set_baseline`); a series without one takes its first evaluated reading.
    """

    def __init__(
        self,
        series: Sequence[SeriesInfo],
        profiles: Mapping[str, Profile] | None = None,
        overrides: Iterable[Override] = (),
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
        graded = sorted(
            (s for s in usable if s.work_id not in self.isolated), key=lambda s: s.series_id
        )
        self._tables = tables = compile_tables(graded, resolution.rules, profiles, catalogue)
        sids = np.array([s.series_id for s in tables.series], dtype=np.int64)  # engine order
        self._sid_to_sx = np.full(int(sids.max()) + 2 if len(graded) else 1, -1, dtype=np.int64)
        self._sid_to_sx[sids] = np.arange(len(graded))
        self._state = State(tables)
        self._companion, hosts = build_companions(tables)
        self._ring = CheckpointRing(tables.rate_window_us)
        self._grader = Grader(tables, self._state, self._companion, hosts)
        self._explain = Explainer(tables)

    def _sx(self, series_id: int) -> int:
        if 0 <= series_id < self._sid_to_sx.shape[0]:
            return int(self._sid_to_sx[series_id])
        return -1

    def _rules(self, series_id: int) -> list[ResolvedRule]:
        slots = self._tables.slots
        return [slots[i].rule for i in self._tables.slots_by_sx.get(self._sx(series_id), ())]

    # --- public surface ----------------------------------------------------------------------

    @property
    def series(self) -> Sequence[SeriesInfo]:
        """The watched series, by id."""
        return self._tables.by_id

    def rules_of(self, series_id: int) -> list[ResolvedRule]:
        """The effective (resolved) rules of one series."""
        return self._rules(series_id)

    def history_us(self, series_id: int) -> int:
        """How far back before a series' newest reading a replay must start, µs (see
        `replay`): the longest time window any of its rules looks back over."""
        sx = self._sx(series_id)
        span = 0.0
        for rule in self._rules(series_id):
            opts = rule.options
            if isinstance(opts, ConsecutiveOptions):
                period, count = opts.period_s, float(opts.count)
            elif isinstance(opts, RateOptions):
                # counted with the consecutive rule's defaults, as before the kind table
                period, count = S_PER_DAY, 1.0
            else:
                continue
            window = opts.window_s
            span = max(span, 3.25 * window, (2 * count + 2) * period + 3.25 * window)
        hosts, slot_of = self._grader.hosts, self._tables.slot_of
        companion = self._companion
        group = companion.source_of[sx]
        kind = companion.groups[group][0] if group >= 0 else ""
        if kind == "wind" or slot_of["crane_wind"][sx] >= 0:
            span = max(span, hosts.max_wind_age_us / US_PER_S)
        if kind == "radius" or slot_of["rated_curve"][sx] >= 0:
            span = max(span, hosts.max_radius_age_us / US_PER_S)
        return int(span * US_PER_S)

    def history_readings(self, series_id: int) -> int:
        """How many of a series' newest readings a replay must include at least."""
        caps = [
            max(r.debounce, r.resolve_after, int(getattr(r.options, "count", 1)))
            for r in self._rules(series_id)
        ]
        return max(caps, default=1) + 2

    def set_baseline(self, series_id: int, value: float, valid_from_us: int) -> None:
        """Add a dated baseline (re-baselining): readings from `valid_from_us` use `value`.

        Raises:
            KeyError: the engine does not watch `series_id`.
        """
        sx = self._sx(series_id)
        if sx < 0:
            raise KeyError(series_id)
        self._state.set_baseline(sx, value, valid_from_us)

    def baseline(self, series_id: int, time_us: int) -> float:
        """The baseline in force for a series at `time_us` (NaN if none)."""
        return self._state.baseline(self._sx(series_id), time_us)

    def forget_grades(self, series_ids: Iterable[int]) -> None:
        """Set the alert grade of every rule of these series to normal, keeping runs and history.

        At a load the database's open alerts are the truth, not a replay: a replay regrades
        stored readings, and some were never graded (stored while their work was isolated).
        Call after `replay` and before `restore_alert`; a reading over a limit then opens the
        alert it should have, at once if its debounce run is complete.
        """
        by_sx = self._tables.slots_by_sx
        self._state.forget_grades(i for sid in series_ids for i in by_sx.get(self._sx(sid), ()))

    def restore_alert(self, series_id: int, rule: str, grade: Grade) -> bool:
        """Set the grade of an open alert read back from the database (at restart).

        Returns:
            False if the engine has no such rule for the series (the rule was removed or
            disabled, or its design value is gone): the caller should close that alert.
        """
        if rule == OFFLINE_RULE:
            sx = self._sx(series_id)
            if sx < 0:
                return False
            self._state.dev_grade[self._tables.series_dev[sx]] = int(grade)
            return True
        i = self._tables.slot_index.get((series_id, rule))
        if i is None:
            return False
        self._state.restore_grade(i, grade)
        return True

    def open_alerts(self) -> dict[tuple[int, str], Grade]:
        """The open alerts: (series id, rule) -> grade."""
        slots, state = self._tables.slots, self._state
        out = {
            (slots[i].series_id, slots[i].rule.rule): Grade(int(state.grade[i]))
            for i in np.flatnonzero(state.grade).tolist()
        }
        for d in np.flatnonzero(state.dev_grade).tolist():
            out[(self._tables.dev_rep[d].series_id, OFFLINE_RULE)] = Grade(int(state.dev_grade[d]))
        return out

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
        pairs = []
        for sx, info in enumerate(self._tables.series):
            ox = old._sx(info.series_id)
            if ox >= 0 and old._tables.series[ox] == info:
                pairs.append((sx, ox))
        self._state.adopt(old._state, pairs)
        rate_of, old_rate_of = self._tables.rate_of, old._tables.rate_of
        self._ring.adopt(
            old._ring,
            [
                (rate_of[sx], old_rate_of[ox])
                for sx, ox in pairs
                if min(rate_of[sx], old_rate_of[ox]) >= 0
            ],
        )
        self._companion.adopt(old._companion)
        return {self._tables.series[sx].series_id for sx, _ in pairs}

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
        tables, state = self._tables, self._state
        never = state.dev_last_t == NEVER
        state.dev_last_t[never] = now_us
        silent = (now_us - state.dev_last_t > tables.dev_silence_us) & (state.dev_grade == 0)
        rows = []
        for d in np.flatnonzero(silent).tolist():
            state.dev_grade[d] = int(tables.dev_grade[d])
            silent_s = (now_us - int(state.dev_last_t[d])) / US_PER_S
            rows.append(self._explain.offline(d, now_us, silent_s))
        return build(rows)

    # --- evaluation --------------------------------------------------------------------------

    def _evaluate(self, batch: Batch, now_us: int | None, emit: bool) -> list[Transition]:
        """Grade a batch: sort it, grade its late rows apart, then every kind in table order
        (sensor faults first: a jump keeps its reading out of the structural rules), run the
        state machine, and note each series' and device's newest reading."""
        state, tables, grader, explain = self._state, self._tables, self._grader, self._explain
        sx, t, v, watermark = self._sorted(batch)
        if sx.shape[0] == 0:
            return []
        late = t < watermark
        rows: list[Row] = []
        if _any(late):
            if emit:
                held, t_late = state.grade, t[late]
                rows += [
                    explain.late(s, int(held[s]), Grade(g), n, int(t_late[r]), m)
                    for s, n, g, r, m in grader.late(sx[late], t_late, v[late])
                ]
            fresh = ~late
            sx, t, v = sx[fresh], t[fresh], v[fresh]
        if sx.shape[0] == 0:
            return build(rows)
        # Quiet slots (normal, no partial debounce, nothing over a hold threshold in this
        # batch) cannot change state: their rows are dropped before the state machine. A
        # replay steps everything, so that run lengths are exact.
        grader.skip_quiet = emit
        starts = k.segment_starts(sx)
        first = starts.nonzero()[0]
        # the change from each reading's predecessor, shared by the jump and stuck rules
        step = step_change(v, first, state.last_v.take(sx.take(first)))
        if state.n_need_initial:
            rows += self._initial_baselines(sx, t, v, first, emit)
        grader.begin(sx)
        suspect = np.zeros(sx.shape[0], dtype=np.bool_)
        if tables.present["jump"]:
            grader.jump(*grader.select("jump", sx), step, suspect)
        if tables.present["stuck"]:
            r, slot = grader.select("stuck", sx)
            if r.shape[0]:
                grader.stuck(r, slot, v, step, starts)
        # the rows that are not suspect (None: every row)
        good = None
        if _any(suspect):
            good = (~suspect).nonzero()[0]
            grader.exclude(suspect)
        grader.affine(sx, t, v, good, sx if good is None else sx.take(good))
        r = grader.rows_of(RATE_SERIES)
        if r.shape[0]:
            # a series' rate rule and 3-in-a-row rule share its rate
            ri = tables.rate_of.take(sx.take(r))
            rate = self._ring.rates(ri, t.take(r), v.take(r))
            slot = tables.rate_slot.take(ri)
            has = (slot >= 0).nonzero()[0]
            if has.shape[0]:
                grader.levels(slot.take(has), r.take(has), rate.take(has))
            slot = tables.consecutive_slot.take(ri)
            has = (slot >= 0).nonzero()[0]
            if has.shape[0]:
                grader.consecutive(slot.take(has), r.take(has), t, rate.take(has))
        if tables.present["crane_wind"] or tables.present["rated_curve"]:
            grader.cranes(sx, t, v)
        graded = grader.graded()
        if graded is not None:
            rows += self._step(graded, t, emit)
        ends = k.segment_ends(starts).nonzero()[0]
        last_sx, last_t = sx[ends], t[ends]
        state.last_t[last_sx] = last_t
        state.last_v[last_sx] = v[ends]
        dev = tables.series_dev[last_sx]
        np.maximum.at(state.dev_last_t, dev, last_t)
        if emit and now_us is not None and _any(state.dev_grade):
            rows += self._back_online(np.unique(dev), now_us)
        return build(rows)

    def _sorted(self, batch: Batch) -> tuple[_I, _I, _F, _I]:
        """Known series, finite values, sorted by (series, time), first of duplicates kept,
        and each row's series watermark (newest time graded before)."""
        sid = np.asarray(batch.series_id, dtype=np.int64)
        t = np.asarray(batch.time_us, dtype=np.int64)
        v = np.asarray(batch.value, dtype=np.float64)
        table = self._sid_to_sx
        if sid.shape[0] and np.minimum.reduce(sid) >= 0 and np.maximum.reduce(sid) < table.shape[0]:
            sx = table.take(sid)  # the usual batch: no id outside the table
            finite = np.isfinite(v)
            if np.minimum.reduce(sx) < 0 or not _all(finite):
                ok = (sx >= 0) & finite
                sx, t, v = sx[ok], t[ok], v[ok]
        else:
            inside = (sid >= 0) & (sid < table.shape[0])
            sx = table[np.where(inside, sid, 0)]
            ok = inside & (sx >= 0) & np.isfinite(v)
            sx, t, v = sx[ok], t[ok], v[ok]
        if sx.shape[0] == 0:
            return sx, t, v, sx
        order, sx, t, dup = k.sort_rows(sx, t, len(self._tables.series))
        v = v.take(order)
        watermark = self._state.last_t.take(sx)
        # a repeated (series, time), or a redelivery of the newest reading already graded
        dup = t == watermark if dup is None else dup | (t == watermark)
        if _any(dup):
            keep = ~dup
            sx, t, v, watermark = sx[keep], t[keep], v[keep], watermark[keep]
        return sx, t, v, watermark

    def _initial_baselines(self, sx: _I, t: _I, v: _F, first: _I, emit: bool) -> list[Row]:
        """A cumulative series without any baseline takes its first reading as the initial
        one; a `baseline` transition per series asks the store to keep it as a dated record
        (so that a restart uses the same baseline even if older readings arrive later)."""
        rows = first[self._state.need_initial[sx[first]]]
        if rows.shape[0] == 0:
            return []
        self._state.take_initial(sx[rows], t[rows], v[rows])
        if not emit:
            return []
        slots = self._tables.slot_of["cumulative"].take(sx.take(rows))
        order = slots.argsort()  # in slot order, as every transition
        return [
            self._explain.baseline(int(slots[j]), int(t[rows[j]]), float(v[rows[j]]))
            for j in order.tolist()
        ]

    def _step(self, graded: Graded, t: _I, emit: bool) -> list[Row]:
        """Run the state machine over the graded rows of all kinds; store the new state."""
        tables, state = self._tables, self._state
        slot, rows, g_up, g_hold, measure = graded
        if slot.shape[0] == 0:
            return []
        starts = k.segment_starts(slot)
        machine = tables.machine.take(slot, axis=0).T  # debounce, resolve, cap
        grade, before, runs = k.alert_grades(
            g_up,
            g_hold,
            starts,
            state.grade.take(slot),
            state.runs.take(slot, axis=0),
            machine[0],
            machine[1],
            machine[2],
        )
        ends = k.segment_ends(starts).nonzero()[0]
        last = slot[ends]
        state.grade[last] = grade[ends]
        runs = runs.take(ends, axis=1).T
        state.runs[last] = runs
        state.busy[last] = (grade[ends] > 0) | (runs[:, 0] > 0)
        state.note_busy(last)
        if not emit:
            return []
        changed = (grade != before).nonzero()[0]
        changed = changed[np.lexsort((t[rows[changed]], slot[changed]))]
        return self._explain.levels(
            slot[changed].tolist(),
            before[changed].tolist(),
            grade[changed].tolist(),
            t[rows[changed]].tolist(),
            measure[changed].tolist(),
        )

    def _back_online(self, dev: _I, now_us: int) -> list[Row]:
        """Resolve the offline alerts of devices heard again (within their silence limit)."""
        tables, state = self._tables, self._state
        back = dev[
            (state.dev_grade[dev] > 0)
            & (now_us - state.dev_last_t[dev] <= tables.dev_silence_us[dev])
        ]
        out = []
        for d in back.tolist():
            out.append(self._explain.online(d, int(state.dev_grade[d]), int(state.dev_last_t[d])))
            state.dev_grade[d] = 0
        return out
