"""Reminders and the escalation ladder on their own, with a simulated clock; pure."""

from __future__ import annotations

import pytest

from hazmon.vocabulary import Grade
from notify import Level, Watched, Watcher, level_of, plan_watch
from notify.escalation import DEFAULT_ESCALATE_AFTER_S, Told, next_step, scope_code

T0 = 1_772_353_800.0
SITE_ID = 7
REGION = "420106"  # 武昌区, 武汉市, 湖北省

SITE = Watcher(1, SITE_ID, "", repeat_interval_s=1800, escalate_after_s=3600)
COUNTY = Watcher(2, None, "420106", repeat_interval_s=1800, escalate_after_s=1800)
CITY = Watcher(3, None, "4201", repeat_interval_s=1800, escalate_after_s=7200)
PROVINCE = Watcher(4, None, "42", repeat_interval_s=None, escalate_after_s=None)
NATIONAL = Watcher(5, None, "")
ELSEWHERE = Watcher(6, None, "4403")  # 深圳: covers another site


def _alert(
    grade: Grade = Grade.RED,
    told: dict[int, Told] | None = None,
    escalated: dict[Level, float] | None = None,
) -> Watched:
    return Watched(
        17,
        grade,
        SITE_ID,
        REGION,
        T0 if grade == Grade.RED else None,
        told if told is not None else {SITE.id: Told(T0, pending=False)},
        escalated or {},
    )


def test_levels_come_from_the_scope() -> None:
    assert [level_of(w.site_id, w.region_code) for w in (SITE, COUNTY, CITY, PROVINCE)] == [
        Level.SITE,
        Level.COUNTY,
        Level.CITY,
        Level.PROVINCE,
    ]
    assert NATIONAL.level is Level.NATIONAL
    assert [scope_code(lv, REGION) for lv in (Level.COUNTY, Level.CITY, Level.PROVINCE)] == [
        "420106",
        "4201",
        "42",
    ]
    assert CITY.covers(SITE_ID, REGION)
    assert not ELSEWHERE.covers(SITE_ID, REGION)
    assert not Watcher(9, 8, "").covers(SITE_ID, REGION)  # another site's own subscription


def test_a_red_alert_climbs_one_level_each_time_nobody_acknowledges_it() -> None:
    watchers = [SITE, COUNTY, CITY, PROVINCE, NATIONAL, ELSEWHERE]
    alert = _alert()
    # the site was told; its escalate_after_s is 1 h
    assert next_step(alert, watchers, T0 + 3599) is None
    step = next_step(alert, watchers, T0 + 3600)
    assert step is not None
    assert (step.level, step.region_code, step.after_s, step.subscription_ids) == (
        Level.COUNTY,
        "420106",
        3600,
        (2,),
    )
    assert "60 分钟" in step.reason
    # the county was told by the escalation: its own delay (30 min) runs from then
    climbed = _alert(
        told={SITE.id: Told(T0, False), COUNTY.id: Told(T0 + 3600, False)},
        escalated={Level.COUNTY: T0 + 3600},
    )
    assert next_step(climbed, watchers, T0 + 3600 + 1799) is None
    to_city = next_step(climbed, watchers, T0 + 3600 + 1800)
    assert to_city is not None
    assert (to_city.level, to_city.subscription_ids) == (Level.CITY, (3,))
    # the province has no delay of its own (NULL): the ladder ends there; national is never a step
    at_province = _alert(told={PROVINCE.id: Told(T0, False)}, escalated={Level.PROVINCE: T0})
    assert next_step(at_province, watchers, T0 + 10**6) is None


def test_levels_without_a_subscription_are_skipped_and_the_province_is_the_top() -> None:
    alert = _alert()
    step = next_step(alert, [SITE, PROVINCE], T0 + 3600)
    assert step is not None
    assert (step.level, step.region_code) == (Level.PROVINCE, "42")
    assert next_step(alert, [SITE, NATIONAL, ELSEWHERE], T0 + 10**6) is None


def test_nobody_told_starts_at_the_bottom_after_the_default_delay() -> None:
    alert = _alert(told={})
    assert next_step(alert, [COUNTY], T0 + DEFAULT_ESCALATE_AFTER_S - 1) is None
    step = next_step(alert, [COUNTY], T0 + DEFAULT_ESCALATE_AFTER_S)
    assert step is not None
    assert step.level is Level.COUNTY


def test_only_red_escalates_and_a_subscription_without_a_delay_keeps_it() -> None:
    assert next_step(_alert(Grade.ORANGE), [SITE, COUNTY], T0 + 10**6) is None
    keeper = Watcher(1, SITE_ID, "", escalate_after_s=None)
    assert next_step(_alert(), [keeper, COUNTY], T0 + 10**6) is None


def test_reminders_follow_the_last_delivery_and_the_grade() -> None:
    watchers = [SITE, COUNTY]
    told = {SITE.id: Told(T0, pending=False, reminders=1), COUNTY.id: Told(T0, pending=True)}
    assert plan_watch([_alert(told=told)], watchers, T0 + 1799).reminders == ()
    plan = plan_watch([_alert(told=told)], watchers, T0 + 1800)
    # the county still has a message on its way: no reminder behind it
    assert [(r.subscription_id, r.number) for r in plan.reminders] == [(SITE.id, 2)]
    orange = _alert(Grade.ORANGE, told={SITE.id: Told(T0, False)})
    assert plan_watch([orange], watchers, T0 + 10**6).reminders == ()  # red only by default
    also_orange = Watcher(1, SITE_ID, "", repeat_interval_s=600, repeat_min_grade=3)
    assert len(plan_watch([orange], [also_orange], T0 + 600).reminders) == 1
    never = Watcher(1, SITE_ID, "", repeat_interval_s=None)
    assert plan_watch([_alert()], [never], T0 + 10**6).reminders == ()
    not_yet = _alert(told={SITE.id: Told(None, pending=False)})  # never delivered (given up)
    assert plan_watch([not_yet], [SITE], T0 + 10**6).reminders == ()


def test_a_watch_plans_reminders_and_steps_together() -> None:
    plan = plan_watch([_alert()], [SITE, COUNTY], T0 + 3600)
    assert [r.subscription_id for r in plan.reminders] == [SITE.id]
    assert [s.level for s in plan.steps] == [Level.COUNTY]


def test_the_national_level_is_no_step() -> None:
    with pytest.raises(ValueError, match="above the ladder"):
        _ = Level.NATIONAL.code
