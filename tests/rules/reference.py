"""The scalar reference: the rule engine's semantics, one reading at a time, in plain Python.

A test-support module: the property test checks the vectorised engine against it, and
`bench/rules_bench.py` times it. Its public name is `Reference` (built from an engine, it
grades batches like `Engine.evaluate`, offline alerts aside). It shares nothing with the
engine but the resolved rules (`Engine.rules_of`), the kind table (`rules.kinds`) and the
message functions; its measures are written out here, not taken from `rules.measures`, and
the state machine is written as the recursion
`grade = max(min(g_up over the last debounce readings), min(grade_prev, max(g_hold over the last
resolve_after readings)))`, not as the engine's flip-flops.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hazmon.catalogue import catalogue
from rules import Batch, Engine, Grade, ResolvedRule, Transition
from rules.kinds import KIND_ORDER, LATE_KINDS, SENSOR_KINDS
from rules.messages import Subject, baseline_message, late_message, level_message
from rules.types import Action

__all__ = ["Reference"]

NEVER = -(2**63)
US = 1_000_000
DAY_S = 86_400.0


def _opt(rule: ResolvedRule, name: str, default: Any = None) -> Any:
    """An option of a rule, or `default` if its kind has no such option."""
    return getattr(rule.options, name, default)


@dataclass
class RefSlot:
    """One (series, rule) of the reference with its state."""

    series_id: int
    rule: ResolvedRule
    subject: Subject
    up: list[float]  # signed thresholds BLUE..RED, unused levels filled from above
    hold: list[float]
    grade: int = 0
    ups: deque[int] = field(default_factory=deque)
    holds: deque[int] = field(default_factory=deque)
    run: int = 0  # stuck / consecutive
    period: int | None = None  # consecutive: period of the last reading


@dataclass
class RefSeries:
    """Per-series history of the reference."""

    last_t: int = NEVER
    last_v: float = math.nan
    baselines: list[tuple[int, float]] = field(default_factory=list)
    checkpoints: list[tuple[int, float]] = field(default_factory=list)
    last_slot: int | None = None


class Reference:
    """Per-reading evaluation with the engine's rules (taken from `engine.rules_of`)."""

    def __init__(self, engine: Engine) -> None:
        self.info = {s.series_id: s for s in engine.series}
        self.series = {sid: RefSeries() for sid in self.info}
        subject_of = {sid: _subject(engine, sid) for sid in self.info}
        self.slots: list[RefSlot] = []
        for kind in KIND_ORDER:
            for sid in sorted(self.info):
                for rule in engine.rules_of(sid):
                    if rule.kind == kind:
                        up, hold = _thresholds(rule)
                        self.slots.append(RefSlot(sid, rule, subject_of[sid], up, hold))
        self.wind: dict[int, tuple[int, float]] = {}
        self.baselines_made: list[Transition] = []
        self.radius: dict[int, tuple[int, float]] = {}
        self.curve_hosts = [
            (i, s) for i, s in enumerate(self.slots) if s.rule.kind == "rated_curve"
        ]
        self.hosts = [(i, s) for i, s in enumerate(self.slots) if s.rule.kind == "crane_wind"]
        self.by_series: dict[int, dict[str, list[tuple[int, RefSlot]]]] = {}
        for i, slot in enumerate(self.slots):
            kinds = self.by_series.setdefault(slot.series_id, {})
            kinds.setdefault(slot.rule.kind, []).append((i, slot))

    # -- one batch --------------------------------------------------------------------------

    def evaluate(self, batch: Batch) -> list[Transition]:
        """Grade one batch like `Engine.evaluate` (offline alerts are not modelled)."""
        rows = [
            (int(s), int(t), float(v), i)
            for i, (s, t, v) in enumerate(
                zip(batch.series_id, batch.time_us, batch.value, strict=True)
            )
            if int(s) in self.info and math.isfinite(float(v))
        ]
        rows.sort(key=lambda r: (r[0], r[1], r[3]))
        fresh: list[tuple[int, int, float]] = []
        late: list[tuple[int, int, float]] = []
        prev: tuple[int, int] | None = None
        for sid, t, v, _ in rows:
            before = self.series[sid].last_t
            if (sid, t) == prev or t == before:
                continue
            prev = (sid, t)
            (late if t < before else fresh).append((sid, t, v))
        out = self._late(late)
        per_slot: dict[int, list[tuple[int, int, int, float]]] = {}
        by_sid: dict[int, list[tuple[int, int, float]]] = {}
        for r in fresh:
            by_sid.setdefault(r[0], []).append(r)
        suspect: set[tuple[int, int]] = set()
        self.baselines_made = []
        for sid in sorted(by_sid):
            suspect |= self._series_rows(sid, by_sid[sid], per_slot)
        out += self.baselines_made
        self._wind_rows(by_sid, suspect, per_slot)
        self._curve_rows(by_sid, suspect, per_slot)
        for i in sorted(per_slot):
            out += self._machine(self.slots[i], per_slot[i])
        for sid, mine in by_sid.items():
            self.series[sid].last_t = mine[-1][1]
            self.series[sid].last_v = mine[-1][2]
        return out

    def _slots_of(self, sid: int, kind: str) -> list[tuple[int, RefSlot]]:
        return self.by_series.get(sid, {}).get(kind, [])

    def _series_rows(
        self,
        sid: int,
        rows: list[tuple[int, int, float]],
        per_slot: dict[int, list[tuple[int, int, int, float]]],
    ) -> set[tuple[int, int]]:
        """Grade one series' fresh rows for every kind but the crane-and-wind combination;
        return its rows flagged as jumps (suspect)."""
        st = self.series[sid]
        cumulative = self._slots_of(sid, "cumulative")
        if cumulative and not st.baselines:
            t0, v0 = rows[0][1], rows[0][2]
            st.baselines.append((t0, v0))
            slot = cumulative[0][1]
            zh, en = baseline_message(slot.subject, v0)
            self.baselines_made.append(
                Transition(
                    sid,
                    slot.rule.rule,
                    "baseline",
                    Grade.NORMAL,
                    Grade.NORMAL,
                    t0,
                    v0,
                    math.nan,
                    zh,
                    en,
                )
            )
        prev_v = st.last_v
        good: list[tuple[int, float]] = []
        suspects: set[tuple[int, int]] = set()
        for _, t, v in rows:
            suspect = False
            for i, slot in self._slots_of(sid, "jump"):
                d = abs(v - prev_v)
                hit = d >= slot.up[0]
                suspect = suspect or hit
                g = slot.rule.top_grade() if hit else 0
                per_slot.setdefault(i, []).append((t, g, g, d))
            for i, slot in self._slots_of(sid, "stuck"):
                need = max(int(_opt(slot.rule, "count", 1)) - 1, 1)
                same = abs(v - prev_v) <= float(_opt(slot.rule, "epsilon", 0.0))
                slot.run = min(slot.run + 1, need) if same else 0
                g = slot.rule.top_grade() if slot.run >= need else 0
                per_slot.setdefault(i, []).append((t, g, g, v))
            prev_v = v
            if suspect:
                suspects.add((sid, t))
            else:
                good.append((t, v))
        for kind in LATE_KINDS:
            for i, slot in self._slots_of(sid, kind):
                for t, v in good:
                    m = self._measure(slot, sid, t, v)
                    if not math.isnan(m):
                        per_slot.setdefault(i, []).append((t, *self._grades(slot, m), m))
        rates = self._rates(sid, good)
        for i, slot in self._slots_of(sid, "rate"):
            for (t, _), r in zip(good, rates, strict=True):
                if not math.isnan(r):
                    per_slot.setdefault(i, []).append((t, *self._grades(slot, r), r))
        for i, slot in self._slots_of(sid, "consecutive"):
            count = int(_opt(slot.rule, "count"))
            period_us = int(float(_opt(slot.rule, "period_s", DAY_S)) * US)
            for (t, _), r in zip(good, rates, strict=True):
                p = t // period_us
                last, slot.period = slot.period, p
                if last == p:
                    continue
                over = r > slot.up[slot.rule.top_grade() - 1]  # NaN: not over
                if last is not None and p - last > 2:
                    slot.run = 0
                slot.run = min(slot.run + 1, count) if over else 0
                g = slot.rule.top_grade() if slot.run >= count else 0
                per_slot.setdefault(i, []).append((t, g, g, 0.0 if math.isnan(r) else r))
        return suspects

    def _rates(self, sid: int, good: list[tuple[int, float]]) -> list[float]:
        st = self.series[sid]
        kinds = [s for _, s in self._slots_of(sid, "rate") + self._slots_of(sid, "consecutive")]
        if not kinds:
            return [math.nan] * len(good)
        window = int(float(_opt(kinds[0].rule, "window_s", DAY_S)) * US)
        window = max(window - window % 4, 4)
        out = []
        for t, v in good:
            ref = [c for c in st.checkpoints if t - 3 * window <= c[0] <= t - window]
            if ref:
                rt, rv = ref[-1]
                out.append(abs(v - rv) / ((t - rt) / (DAY_S * US)))
            else:
                out.append(math.nan)
            slot_n = t // (window // 4)
            if slot_n != st.last_slot:
                st.checkpoints.append((t, v))
            st.last_slot = slot_n
        return out

    def _wind_rows(
        self,
        by_sid: dict[int, list[tuple[int, int, float]]],
        suspect: set[tuple[int, int]],
        per_slot: dict[int, list[tuple[int, int, int, float]]],
    ) -> None:
        """Crane lifting in wind: each load reading against the newest wind reading."""
        hosts = self.hosts
        winds_of: dict[int, list[tuple[int, float]]] = {}
        for _, slot in hosts:
            work = self.info[slot.series_id].work_id
            if work in winds_of:
                continue
            metric = _opt(slot.rule, "wind_metric")
            winds_of[work] = sorted(
                (t, v)
                for sid, rows in by_sid.items()
                if self.info[sid].work_id == work and self.info[sid].metric == metric
                for _, t, v in rows
                if (sid, t) not in suspect
            )
        for i, slot in hosts:
            work = self.info[slot.series_id].work_id
            winds = winds_of[work]
            for sid, t, v in by_sid.get(slot.series_id, []):
                if (sid, t) in suspect:
                    continue
                known = [w for w in winds if w[0] <= t]
                wt, wv = known[-1] if known else self.wind.get(work, (NEVER, math.nan))
                fresh_wind = t - wt <= float(_opt(slot.rule, "max_wind_age_s")) * US
                hit = v >= float(_opt(slot.rule, "min_load_t")) and fresh_wind and wv >= slot.up[3]
                g = slot.rule.top_grade() if hit else 0
                per_slot.setdefault(i, []).append((t, g, g, wv if fresh_wind else 0.0))
        for work, winds in winds_of.items():
            if winds and winds[-1][0] > self.wind.get(work, (NEVER, 0.0))[0]:
                self.wind[work] = winds[-1]

    def _curve_rows(
        self,
        by_sid: dict[int, list[tuple[int, int, float]]],
        suspect: set[tuple[int, int]],
        per_slot: dict[int, list[tuple[int, int, int, float]]],
    ) -> None:
        """Load against the rated load curve at the newest radius reading of the device."""
        for i, slot in self.curve_hosts:
            dev = self.info[slot.series_id].device_id
            metric = _opt(slot.rule, "radius_metric")
            radii = sorted(
                (t, v)
                for sid, rows in by_sid.items()
                if self.info[sid].device_id == dev and self.info[sid].metric == metric
                for _, t, v in rows
                if (sid, t) not in suspect
            )
            curve = _opt(slot.rule, "curve")
            for sid, t, v in by_sid.get(slot.series_id, []):
                if (sid, t) in suspect:
                    continue
                known = [r for r in radii if r[0] <= t]
                rt, rv = known[-1] if known else self.radius.get(dev, (NEVER, math.nan))
                if t - rt > float(_opt(slot.rule, "max_radius_age_s")) * US:
                    continue
                rated = float(np.interp(rv, [c[0] for c in curve], [c[1] for c in curve]))
                m = v / rated
                if not math.isnan(m):
                    per_slot.setdefault(i, []).append((t, *self._grades(slot, m), m))
            if radii and radii[-1][0] > self.radius.get(dev, (NEVER, 0.0))[0]:
                self.radius[dev] = radii[-1]

    def _measure(self, slot: RefSlot, sid: int, t: int, v: float) -> float:
        rule = slot.rule
        # ratio: value / design; deviation: (value - nominal) / nominal
        offset = float(_opt(rule, "nominal", 0.0))
        scale = float(_opt(rule, "design", _opt(rule, "nominal", 1.0)))
        if rule.kind == "cumulative":
            valid = [b for b in self.series[sid].baselines if b[0] <= t]
            offset = valid[-1][1] if valid else math.nan
        m = (v - offset) * (1.0 / scale)
        return abs(m) if _opt(rule, "abs", False) else m

    @staticmethod
    def _grades(slot: RefSlot, m: float) -> tuple[int, int]:
        signed = m * slot.rule.direction
        return sum(signed >= x for x in slot.up), sum(signed >= x for x in slot.hold)

    def _machine(self, slot: RefSlot, rows: list[tuple[int, int, int, float]]) -> list[Transition]:
        out = []
        for t, g_up, g_hold, m in rows:
            slot.ups.append(g_up)
            slot.holds.append(g_hold)
            while len(slot.ups) > slot.rule.debounce:
                slot.ups.popleft()
            while len(slot.holds) > slot.rule.resolve_after:
                slot.holds.popleft()
            up = min(slot.ups) if len(slot.ups) == slot.rule.debounce else 0
            hold = max(slot.holds) if len(slot.holds) == slot.rule.resolve_after else 4
            grade = max(up, min(slot.grade, hold))
            if grade != slot.grade:
                out.append(self._transition(slot, slot.grade, grade, t, m))
                slot.grade = grade
        return out

    def _transition(self, slot: RefSlot, g_from: int, g_to: int, t: int, m: float) -> Transition:
        rule = slot.rule
        action: Action
        if g_to == 0:
            action = "resolve"
        elif g_from == 0:
            action = "suspect" if rule.kind in SENSOR_KINDS else "open"
        else:
            action = "escalate" if g_to > g_from else "deescalate"
        raw = _raw(rule)
        thr = raw[(g_to if g_to > g_from else g_from) - 1]
        zh, en = level_message(action, rule, slot.subject, Grade(g_from), Grade(g_to), m, thr)
        return Transition(
            slot.series_id, rule.rule, action, Grade(g_from), Grade(g_to), t, m, thr, zh, en
        )

    def _late(self, late: list[tuple[int, int, float]]) -> list[Transition]:
        out: list[Transition] = []
        if not late:
            return out
        for kind in LATE_KINDS:
            for slot in (s for s in self.slots if s.rule.kind == kind):
                hits = []
                for sid, t, v in late:
                    if sid == slot.series_id:
                        m = self._measure(slot, sid, t, v)
                        g = self._grades(slot, m)[0] if not math.isnan(m) else 0
                        if g:
                            hits.append((m * slot.rule.direction, t, m, g))
                if hits:
                    worst = max(hits, key=lambda h: h[0])  # first of equal maxima
                    worst = next(h for h in hits if h[0] == worst[0])
                    _, t, m, g = worst
                    thr = _raw(slot.rule)[g - 1]
                    zh, en = late_message(slot.rule, slot.subject, Grade(g), len(hits), m, thr)
                    out.append(
                        Transition(
                            slot.series_id,
                            slot.rule.rule,
                            "late",
                            Grade(slot.grade),
                            Grade(g),
                            t,
                            m,
                            thr,
                            zh,
                            en,
                        )
                    )
        return out


def _subject(engine: Engine, sid: int) -> Subject:
    info = next(s for s in engine.series if s.series_id == sid)
    metric = catalogue()[info.hazard_kind].metrics[info.metric]
    return Subject(metric.name_zh, metric.name_en, metric.unit, info.device_code)


def _raw(rule: ResolvedRule) -> list[float]:
    share = float(_opt(rule, "share", 1.0))
    return [x * share for x in rule.thresholds]


def _thresholds(rule: ResolvedRule) -> tuple[list[float], list[float]]:
    signed = [x * rule.direction if not math.isnan(x) else math.nan for x in _raw(rule)]
    for i in (2, 1, 0):
        if math.isnan(signed[i]):
            signed[i] = signed[i + 1]
    up = [math.inf if math.isnan(x) else x for x in signed]
    hold = [x - rule.hysteresis * abs(x) if math.isfinite(x) else math.inf for x in up]
    return up, hold
