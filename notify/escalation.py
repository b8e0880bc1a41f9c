"""Reminders and the escalation ladder for alerts nobody acknowledges; pure, no I/O.

**Levels.** A subscription's level on the ladder comes from its scope: one with a site is that
site's own (`site`, e.g. the project team's group); otherwise its GB/T 2260 region prefix says it,
6 digits a county (`county`, 区县), 4 a city (`city`, 地市), 2 a province (`province`, 省), empty
all of China (`national`, above the ladder: never escalated to). A subscription covers a site
when it is that site's, or when its prefix starts the site's six-digit region code.

**Reminders** (Alertmanager's `repeat_interval`, kept for alerts a person has to act on): an open
alert (not acknowledged, not resolved) at or above a subscription's `repeat_min_grade` (red by
default, 3 adds orange) is told again to every subscription that was told about it, once its
last message to that subscription was delivered `repeat_interval_s` ago (30 min by default) and
nothing about it is still waiting to go there. Acknowledging the alert stops them.

**Escalation.** A red alert still open (unacknowledged) goes one level up the ladder when
nobody acknowledged it within `escalate_after_s` of it turning red, or of its last escalation:

1. the alert's current level is the highest level of the subscriptions told about it so far,
   directly or by an earlier escalation;
2. its delay is the shortest `escalate_after_s` of the subscriptions told at that level (NULL on
   all of them: the ladder stops there; nobody told at all: `DEFAULT_ESCALATE_AFTER_S`);
3. "next level up" is the nearest level above the current one (site → county → city →
   province) with at least one enabled subscription covering the site, escalation-only ones
   included; levels without one are skipped, and past the province there is none.

Each step is recorded once per (alert, level) (`alert_escalations`) and told to every
subscription of its level. Defaults: 1 h, after the 《生产安全事故报告和调查处理条例》(国务院令第493号)
第九条, which gives an accident's report one hour to reach the county authorities, and 第十条,
which escalates it level by level; hazmon applies that rhythm to a red alert nobody takes (no
standard sets a number for alerts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from hazmon.vocabulary import Grade
from notify.notification import LadderLevel

DEFAULT_ESCALATE_AFTER_S = 3600
"""The delay of the first step when no subscription was told the alert (the column default)."""
ESCALATE_GRADE = Grade.RED
"""Only red alerts escalate (issue 12)."""


class Level(IntEnum):
    """The escalation ladder, lowest first."""

    SITE = 0
    COUNTY = 1
    CITY = 2
    PROVINCE = 3
    NATIONAL = 4

    @property
    def code(self) -> LadderLevel:
        """The level as `alert_escalations.level` stores it (NATIONAL has none: never a step)."""
        if self is Level.NATIONAL:
            raise ValueError("the national level is above the ladder")
        return _CODES[self]


_CODES: dict[Level, LadderLevel] = {
    Level.SITE: "site",
    Level.COUNTY: "county",
    Level.CITY: "city",
    Level.PROVINCE: "province",
}
_PREFIX_CHARS = {Level.COUNTY: 6, Level.CITY: 4, Level.PROVINCE: 2}


def level_of(site_id: int | None, region_code: str) -> Level:
    """The level of a subscription with this scope."""
    if site_id is not None:
        return Level.SITE
    return {6: Level.COUNTY, 4: Level.CITY, 2: Level.PROVINCE, 0: Level.NATIONAL}[len(region_code)]


def scope_code(level: Level, site_region: str) -> str:
    """The region code a level of the ladder means for a site in `site_region` (the site's
    own code for the site level)."""
    return site_region[: _PREFIX_CHARS[level]] if level in _PREFIX_CHARS else site_region


@dataclass(frozen=True, slots=True)
class Watcher:
    """An enabled subscription, as reminders and escalations see it.

    Attributes:
        repeat_interval_s: reminder interval, s; None: no reminders.
        repeat_min_grade: the lowest grade reminded (3 orange or 4 red).
        escalate_after_s: delay before escalating past it, s; None: never.
    """

    id: int
    site_id: int | None
    region_code: str
    repeat_interval_s: int | None = 1800
    repeat_min_grade: int = 4
    escalate_after_s: int | None = DEFAULT_ESCALATE_AFTER_S

    @property
    def level(self) -> Level:
        return level_of(self.site_id, self.region_code)

    def covers(self, site_id: int, site_region: str) -> bool:
        """Whether this subscription's scope holds the site."""
        if self.site_id is not None:
            return self.site_id == site_id
        return site_region.startswith(self.region_code)


@dataclass(frozen=True, slots=True)
class Told:
    """What one subscription has had about one alert.

    Attributes:
        last_delivered_s: when its last message about the alert was delivered, epoch s.
        pending: whether something about the alert is still on its way there.
        reminders: reminders queued so far.
    """

    last_delivered_s: float | None
    pending: bool
    reminders: int = 0


@dataclass(frozen=True, slots=True)
class Watched:
    """An open alert at orange or red, with who was told about it and its escalations.

    Attributes:
        red_since_s: when it last turned red, epoch s (None: not red now).
        told: by subscription id.
        escalated: the levels it went to, with when, epoch s.
    """

    alert_id: int
    grade: Grade
    site_id: int
    site_region: str
    red_since_s: float | None
    told: Mapping[int, Told] = field(default_factory=dict)
    escalated: Mapping[Level, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reminder:
    """Remind one subscription of one alert; `number` counts its reminders from 1."""

    alert_id: int
    subscription_id: int
    number: int


@dataclass(frozen=True, slots=True)
class Step:
    """One escalation: the alert goes to the subscriptions of `level`.

    Attributes:
        region_code: the level's region for the site (`scope_code`).
        after_s: how long it had been unacknowledged at this level's turn, s.
        subscription_ids: who gets it.
    """

    alert_id: int
    level: Level
    region_code: str
    after_s: int
    subscription_ids: tuple[int, ...]

    @property
    def reason(self) -> str:
        minutes = round(self.after_s / 60)
        return (
            f"红色预警 {minutes} 分钟内无人确认 / red alert not acknowledged within {minutes} min"
        )


@dataclass(frozen=True, slots=True)
class WatchPlan:
    """What one look at the open alerts decided."""

    reminders: tuple[Reminder, ...] = ()
    steps: tuple[Step, ...] = ()


def plan_watch(alerts: Sequence[Watched], watchers: Sequence[Watcher], now_s: float) -> WatchPlan:
    """The reminders and escalation steps due now.

    Args:
        alerts: the open (unacknowledged) alerts at orange or red.
        watchers: every enabled subscription.
        now_s: the time, epoch s.
    """
    by_id = {w.id: w for w in watchers}
    reminders: list[Reminder] = []
    steps: list[Step] = []
    for alert in alerts:
        for sub_id, told in sorted(alert.told.items()):
            watcher = by_id.get(sub_id)
            if watcher is not None and _reminder_due(alert, watcher, told, now_s):
                reminders.append(Reminder(alert.alert_id, sub_id, told.reminders + 1))
        step = next_step(alert, watchers, now_s)
        if step is not None:
            steps.append(step)
    return WatchPlan(tuple(reminders), tuple(steps))


def _reminder_due(alert: Watched, watcher: Watcher, told: Told, now_s: float) -> bool:
    if watcher.repeat_interval_s is None or alert.grade < watcher.repeat_min_grade:
        return False
    if told.pending or told.last_delivered_s is None:
        return False  # not yet told, or told again already: wait for it to arrive
    return now_s - told.last_delivered_s >= watcher.repeat_interval_s


def next_step(alert: Watched, watchers: Sequence[Watcher], now_s: float) -> Step | None:
    """The escalation of `alert` due now, if any (the module docstring has the rules)."""
    if alert.grade != ESCALATE_GRADE or alert.red_since_s is None:
        return None
    by_id = {w.id: w for w in watchers}
    told = [by_id[i] for i in alert.told if i in by_id]
    levels_told = [w.level for w in told if w.level < Level.NATIONAL]
    current = max([*levels_told, *alert.escalated], default=None)
    if current is None:
        after_s: int | None = DEFAULT_ESCALATE_AFTER_S
    else:
        afters = [
            w.escalate_after_s
            for w in told
            if w.level == current and w.escalate_after_s is not None
        ]
        after_s = min(afters, default=None)
    if after_s is None:
        return None
    since_s = max([alert.red_since_s, *alert.escalated.values()])
    if now_s - since_s < after_s:
        return None
    start = Level.SITE if current is None else Level(current + 1)
    for level in (lv for lv in Level if start <= lv <= Level.PROVINCE):
        targets = tuple(
            sorted(
                w.id
                for w in watchers
                if w.level == level and w.covers(alert.site_id, alert.site_region)
            )
        )
        if targets:
            return Step(
                alert.alert_id, level, scope_code(level, alert.site_region), after_s, targets
            )
    return None
