"""Transitions: what changed, as the rows the engine returns, with their explanation.

The engine notes each change as a `Row` (plain values) and `build` makes the `Transition`s of a
batch at once: the one place they are made. `Explainer` writes the rows of each kind of change
with the wording of `rules.messages`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from rules.kinds import SENSOR_KINDS
from rules.measures import US_PER_S
from rules.messages import (
    Subject,
    baseline_message,
    late_message,
    level_message,
    level_template,
    offline_message,
    online_message,
    written,
)
from rules.tables import Tables
from rules.types import Action, Grade, Transition

OFFLINE_RULE = "offline"
"""The rule id of offline alerts (one per device, on its first series)."""
_GRADES = tuple(Grade)

Row = tuple[int, str, Action, Grade, Grade, int, float, float, str, str]
"""A transition before it is built: series id, rule, action, grade from, grade to, time µs,
value, threshold, Chinese and English message."""


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
        for series_id, rule, action, grade_from, grade_to, time_us, value, threshold, zh, en in rows
    ]


_Change = tuple[str, Action, Grade, Grade, float, list[str], list[str], float, str]
"""What a change of a slot between two grades always says: rule, action, grades, threshold,
the message template in Chinese and English, and how the measure is written (factor, unit;
see `messages.written`). Empty templates: the texts cannot be templated (`level_template`)."""


class Explainer:
    """The rows of the changes of an engine's slots and devices (see `Row`).

    A slot changes between a few pairs of grades, again and again, and slots of the same
    resolved rule on the same metric say the same: what such a change says but for its
    reading is kept once per wording and pair of grades, so that a transition costs a
    formatted number and two joins. (The slots keep their rules alive, so `id` is a key.)
    """

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self._series_id = [s.series_id for s in tables.slots]
        self._wording = [-1] * len(tables.slots)  # per slot its wording number, once known
        self._wordings: dict[tuple[int, str, str, str], int] = {}
        self._changes: dict[int, _Change] = {}

    def _wording_of(self, slot: int) -> int:
        """Number the texts a slot's messages are made of: its resolved rule (shared by the
        series of works with the same parameters, `resolve_series`) and its metric's names."""
        s = self.tables.slots[slot]
        key = (id(s.rule), s.subject.name_zh, s.subject.name_en, s.subject.unit)
        number = self._wordings.setdefault(key, len(self._wordings))
        self._wording[slot] = number
        return number

    def _change(self, slot: int, key: int, g_from: int, g_to: int) -> _Change:
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
        template = level_template(action, s.rule, s.subject, before, after, threshold)
        zh, en = template if template is not None else ([], [])
        factor, unit = written(s.rule, s.subject)
        change = (s.rule.rule, action, before, after, threshold, zh, en, factor, unit)
        self._changes[key] = change
        return change

    def levels(
        self,
        slot: Sequence[int],
        g_from: Sequence[int],
        g_to: Sequence[int],
        time_us: Sequence[int],
        value: Sequence[float],
    ) -> list[Row]:
        """Changes of slots' alert grades, each at a reading whose measure is `value`."""
        changes, wording, sids, out = self._changes, self._wording, self._series_id, []
        for i, a, b, t, v in zip(slot, g_from, g_to, time_us, value, strict=True):
            w = wording[i]
            key = (w if w >= 0 else self._wording_of(i)) * 25 + a * 5 + b
            change = changes.get(key) or self._change(i, key, a, b)
            rule, action, before, after, thr, zh, en, factor, unit = change
            if zh:
                x = v * factor
                # messages.number, inlined: the one formatting a transition needs
                q = (f"{x:.0f}" if abs(x) >= 1000 else f"{x:.4g}") + unit
                out.append(
                    (sids[i], rule, action, before, after, t, v, thr, q.join(zh), q.join(en))
                )
            else:
                s = self.tables.slots[i]
                texts = level_message(action, s.rule, s.subject, before, after, v, thr)
                out.append((sids[i], rule, action, before, after, t, v, thr, *texts))
        return out

    def late(
        self, slot: int, held: int, grade: Grade, count: int, time_us: int, value: float
    ) -> Row:
        """`count` late readings of a slot reached `grade`, the worst at `time_us` with measure
        `value`; `held` is the slot's grade now."""
        s = self.tables.slots[slot]
        thr = float(self.tables.thr_raw[slot, grade - 1])
        texts = late_message(s.rule, s.subject, grade, count, value, thr)
        return (s.series_id, s.rule.rule, "late", _GRADES[held], grade, time_us, value, thr, *texts)

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
            *texts,
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
            *texts,
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
            *texts,
        )
