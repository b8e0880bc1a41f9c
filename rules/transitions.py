"""Transitions: what changed, as the rows the engine returns, with their explanation.

The engine notes each change as a `Row` (plain values) and `build` makes the `Transition`s of a
batch at once: the one place they are made. `Explainer` writes the rows of each kind of change
with the wording of `rules.messages`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from rules.kinds import SENSOR_KINDS
from rules.measures import US_PER_S
from rules.messages import (
    Subject,
    baseline_message,
    late_message,
    level_message,
    offline_message,
    online_message,
)
from rules.tables import Tables
from rules.types import Action, Grade, Transition

OFFLINE_RULE = "offline"
"""The rule id of offline alerts (one per device, on its first series)."""
_GRADES = tuple(Grade)

Row = tuple[int, str, Action, Grade, Grade, int, float, float, tuple[str, str]]
"""A transition before it is built: series id, rule, action, grade from, grade to, time µs,
value, threshold, (Chinese, English) message."""


def build(rows: Iterable[Row]) -> list[Transition]:
    """The transitions of `rows`, in order."""
    return [
        Transition(
            series_id=series_id,
            rule=rule,
            action=action,
            grade_from=grade_from,
            grade_to=grade_to,
            time_us=time_us,
            value=value,
            threshold=threshold,
            message_zh=zh,
            message_en=en,
        )
        for series_id, rule, action, grade_from, grade_to, time_us, value, threshold, (
            zh,
            en,
        ) in rows
    ]


class Explainer:
    """The rows of the changes of an engine's slots and devices (see `Row`)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def level(self, slot: int, g_from: int, g_to: int, time_us: int, value: float) -> Row:
        """A change of a slot's alert grade at a reading whose measure is `value`."""
        s = self.tables.slots[slot]
        action: Action
        if g_to == 0:
            action = "resolve"
        elif g_from == 0:
            action = "suspect" if s.rule.kind in SENSOR_KINDS else "open"
        else:
            action = "escalate" if g_to > g_from else "deescalate"
        # The threshold crossed: the new grade's going up, the left grade's going down.
        threshold = float(self.tables.thr_raw[slot, (g_to if g_to > g_from else g_from) - 1])
        before, after = _GRADES[g_from], _GRADES[g_to]
        texts = level_message(action, s.rule, s.subject, before, after, value, threshold)
        return (s.series_id, s.rule.rule, action, before, after, time_us, value, threshold, texts)

    def late(
        self, slot: int, held: int, grade: Grade, count: int, time_us: int, value: float
    ) -> Row:
        """`count` late readings of a slot reached `grade`, the worst at `time_us` with measure
        `value`; `held` is the slot's grade now."""
        s = self.tables.slots[slot]
        thr = float(self.tables.thr_raw[slot, grade - 1])
        texts = late_message(s.rule, s.subject, grade, count, value, thr)
        return (s.series_id, s.rule.rule, "late", _GRADES[held], grade, time_us, value, thr, texts)

    def baseline(self, slot: int, time_us: int, value: float) -> Row:
        """A cumulative slot took the reading (`time_us`, `value`) as its initial baseline."""
        s = self.tables.slots[slot]
        texts = baseline_message(s.subject, value)
        normal = Grade.NORMAL
        return (
            s.series_id,
            s.rule.rule,
            "baseline",
            normal,
            normal,
            time_us,
            value,
            math.nan,
            texts,
        )

    def offline(self, device: int, now_us: int, silent_s: float) -> Row:
        """A device silent for `silent_s` seconds at `now_us` goes offline."""
        tables = self.tables
        rep, grade = tables.dev_rep[device], tables.dev_grade[device]
        texts = offline_message(
            Subject("", "", "", rep.device_code), grade, silent_s, tables.dev_periods[device]
        )
        limit_s = float(tables.dev_silence_us[device]) / US_PER_S
        return (
            rep.series_id,
            OFFLINE_RULE,
            "open",
            Grade.NORMAL,
            grade,
            now_us,
            silent_s,
            limit_s,
            texts,
        )

    def online(self, device: int, g_from: int, time_us: int) -> Row:
        """An offline device reported again, at `time_us`."""
        tables = self.tables
        rep = tables.dev_rep[device]
        texts = online_message(Subject("", "", "", rep.device_code))
        limit_s = float(tables.dev_silence_us[device]) / US_PER_S
        return (
            rep.series_id,
            OFFLINE_RULE,
            "resolve",
            _GRADES[g_from],
            Grade.NORMAL,
            time_us,
            0.0,
            limit_s,
            texts,
        )
