"""The policy on its own, with a simulated clock: retries, Alertmanager-style grouping (a crane
oscillating around 90 % for five minutes becomes a handful of digests), each robot's rate limit
and the per-target send plan; pure."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest

from notify import (
    RATE_LIMITS,
    Fold,
    Group,
    Notification,
    Pending,
    RateLimit,
    RetryPolicy,
    Subscription,
    group_due_s,
    plan_groups,
    plan_sends,
)
from notify.policy import MAX_ITEMS_PER_MESSAGE
from tests.notify.test_golden import PAYLOAD_V2

T0 = 1_772_353_800.0


def test_delays_double_from_first_s_up_to_the_cap() -> None:
    policy = RetryPolicy()  # today's numbers: 5 s doubling to 15 min
    assert [policy.delay_s(n, draw=0.0) for n in range(1, 12)] == [
        5.0,
        10.0,
        20.0,
        40.0,
        80.0,
        160.0,
        320.0,
        640.0,
        900.0,
        900.0,
        900.0,
    ]
    assert policy.delay_s(10**6, draw=0.0) == 900.0  # no overflow after a very long outage
    assert policy.delay_s(0, draw=0.0) == 5.0


def test_jitter_takes_off_at_most_its_fraction() -> None:
    policy = RetryPolicy(first_s=10, max_s=100, jitter=0.2)
    assert policy.delay_s(1, draw=0.0) == 10.0
    assert policy.delay_s(1, draw=0.5) == pytest.approx(9.0)
    assert policy.delay_s(1, draw=0.999999) == pytest.approx(8.0, abs=1e-4)
    assert RetryPolicy(jitter=0).delay_s(3, draw=0.7) == 20.0
    # with the worst draws, a later delay is never shorter than an earlier one until the cap
    lows = [policy.delay_s(n, draw=0.999999) for n in range(2, 5)]
    highs = [policy.delay_s(n, draw=0.0) for n in range(1, 4)]
    assert all(low >= high * 1.6 - 1e-9 for low, high in zip(lows, highs, strict=True))


def test_by_default_it_never_gives_up() -> None:
    policy = RetryPolicy()
    assert all(policy.retry_in_s(n, draw=0.3) is not None for n in (1, 10, 1000, 10**9))


def test_it_gives_up_after_the_set_number_of_failures() -> None:
    policy = RetryPolicy(first_s=1, max_s=8, jitter=0, give_up_after=3)
    assert [policy.retry_in_s(n, draw=0.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, None, None]


def test_the_lease_covers_one_request_connect_write_and_read() -> None:
    assert RetryPolicy().lease_s == 30.0
    assert RetryPolicy(timeout_s=2).lease_s == 6.0


@pytest.mark.parametrize(
    "bad",
    [
        {"first_s": 0},
        {"first_s": 10, "max_s": 5},
        {"jitter": 1.5},
        {"timeout_s": 0},
        {"batch": 0},
        {"give_up_after": 0},
    ],
)
def test_nonsense_numbers_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        RetryPolicy(**bad)  # type: ignore[arg-type]


# --- grouping ---------------------------------------------------------------------------


def _sub(sub_id: int = 1, wait_s: int = 30, interval_s: int = 300) -> Subscription:
    return Subscription(sub_id, "dingtalk", "https://d", None, "ops", wait_s, interval_s)


def _row(
    outbox_id: int,
    created_s: float,
    *,
    action: str = "escalate",
    grade_from: int = 2,
    grade_to: int = 3,
    work: int = 5,
    kind: Any = "alert",
    alert_open: bool | None = None,
) -> Pending:
    payload: dict[str, Any] = {
        **PAYLOAD_V2,
        "transition_id": outbox_id,
        "action": action,
        "grade_from": grade_from,
        "grade_to": grade_to,
        "grade": max(grade_from, grade_to),
        "work_id": work,
    }
    if kind == "remind":
        payload.update(notice="remind", reminder=1)
    return Pending(outbox_id, kind, created_s, Notification.from_payload(payload), alert_open)


def test_a_new_group_waits_group_wait_then_group_interval_after_each_message() -> None:
    sub = _sub(wait_s=30, interval_s=300)
    assert group_due_s(T0, None, sub) == T0 + 30  # a new group: group_wait
    assert group_due_s(T0 + 10, T0, sub) == T0 + 300  # inside the interval: its end
    assert group_due_s(T0 + 301, T0, sub) == T0 + 331  # after a quiet interval: anew


def test_rows_wait_for_their_group_and_go_together() -> None:
    sub = _sub()
    rows = (_row(1, T0), _row(2, T0 + 5), _row(3, T0 + 20))
    early = plan_groups([Group(sub, "w:5", rows)], T0 + 29)
    assert early.fold == ()
    assert len(early.wait) == 1
    assert early.wait[0][0] == rows
    assert early.wait[0][1] == pytest.approx(1.0)
    due = plan_groups([Group(sub, "w:5", rows)], T0 + 30)
    assert due.fold == (Fold(sub, "w:5", rows),)
    assert due.wait == ()


def test_a_new_red_alert_goes_at_once_with_whatever_its_group_holds() -> None:
    sub = _sub()
    waiting = _row(1, T0)
    red = _row(2, T0 + 1, action="escalate", grade_from=3, grade_to=4)
    plan = plan_groups([Group(sub, "w:5", (waiting, red), last_flush_s=T0 - 5)], T0 + 1)
    assert plan.fold == (Fold(sub, "w:5", (waiting, red)),)
    opened_red = _row(3, T0, action="open", grade_from=0, grade_to=4)
    assert plan_groups([Group(sub, "w:5", (opened_red,))], T0).fold
    # a red alert de-escalating, or resolving, is no new red alert: it waits like the rest
    calmer = _row(4, T0, action="deescalate", grade_from=4, grade_to=3)
    assert plan_groups([Group(sub, "w:5", (calmer,))], T0).fold == ()


def test_reminders_of_alerts_acknowledged_meanwhile_are_cancelled_not_sent() -> None:
    sub = _sub(wait_s=0)
    void = _row(1, T0, kind="remind", alert_open=False)
    live = _row(2, T0, kind="remind", alert_open=True)
    plan = plan_groups([Group(sub, "w:5", (void, live))], T0)
    assert plan.cancel == (void,)
    assert plan.fold == (Fold(sub, "w:5", (live,)),)


def test_rows_without_a_group_go_alone_and_big_groups_in_chunks() -> None:
    sub = _sub(wait_s=0)
    lone = plan_groups([Group(sub, None, (_row(1, T0), _row(2, T0)))], T0)
    assert [len(f.rows) for f in lone.fold] == [1, 1]
    many = tuple(_row(i, T0) for i in range(1, 2 * MAX_ITEMS_PER_MESSAGE + 2))
    chunks = plan_groups([Group(sub, "w:5", many)], T0).fold
    assert [len(f.rows) for f in chunks] == [MAX_ITEMS_PER_MESSAGE, MAX_ITEMS_PER_MESSAGE, 1]


def test_the_idempotency_key_covers_exactly_the_rows_of_the_message() -> None:
    sub = _sub(sub_id=3)
    one = Fold(sub, "w:5", (_row(42, T0),))
    assert one.idempotency_key == "hzm-s3-o42"
    two = Fold(sub, "w:5", (_row(42, T0), _row(43, T0)))
    other = Fold(sub, "w:5", (_row(42, T0), _row(44, T0)))
    assert two.idempotency_key.startswith("hzm-s3-d42-43-2-")
    assert two.idempotency_key != other.idempotency_key
    assert Fold(_sub(sub_id=4), "w:5", two.rows).idempotency_key != two.idempotency_key


def crane_storm(
    start_s: float, duration_s: float, period_s: float, phase: float
) -> Iterator[tuple[float, int, int, str]]:
    """A crane's moment swinging around 90 % of rated (its yellow warning, README's demo) for
    `duration_s`, sampled each second: (time, grade from, grade to, action) of every transition
    a threshold at 0.9 without hysteresis gives, an alert opened yellow and resolved again and
    again (the worst case: the engine's hysteresis gives fewer)."""
    grade = 0
    for t in range(int(duration_s)):
        ratio = 0.9 + 0.03 * math.sin(2 * math.pi * (t / period_s + phase))
        new = 2 if ratio >= 0.9 else 0
        if new != grade:
            yield start_s + t, grade, new, "open" if new else "resolve"
            grade = new


def _simulate(
    subs: list[Subscription], transitions: list[tuple[float, int, int, str, int]], end_s: float
) -> dict[int, list[Fold]]:
    """The notifier's rounds each simulated second: rows queued as transitions happen (one per
    subscription), groups folded by `plan_groups`; the messages made, by subscription."""
    rows: list[tuple[Subscription, Pending]] = []
    next_id = 1
    for at_s, grade_from, grade_to, action, work in sorted(transitions):
        for sub in subs:
            rows.append(
                (
                    sub,
                    _row(
                        next_id,
                        at_s,
                        action=action,
                        grade_from=grade_from,
                        grade_to=grade_to,
                        work=work,
                    ),
                )
            )
            next_id += 1
    waiting: dict[tuple[int, str], list[Pending]] = {}
    due_at: dict[tuple[int, str], float] = {}
    flushed: dict[tuple[int, str], float] = {}
    made: dict[int, list[Fold]] = {s.id: [] for s in subs}
    now = T0
    while now <= end_s:
        for sub, row in rows:
            if row.created_s == now:
                key = (sub.id, f"w:{row.item.work_id}")  # type: ignore[union-attr]
                waiting.setdefault(key, []).append(row)
                due_at[key] = min(due_at.get(key, now), now)  # a new row is due at once
        groups = [
            Group(next(s for s in subs if s.id == key[0]), key[1], tuple(r), flushed.get(key))
            for key, r in waiting.items()
            if r and due_at[key] <= now
        ]
        plan = plan_groups(groups, now)
        for fold in plan.fold:
            key = (fold.subscription.id, str(fold.group_key))
            made[fold.subscription.id].append(fold)
            waiting[key] = [r for r in waiting[key] if r not in fold.rows]
            flushed[key] = now
        for held, delay_s in plan.wait:
            key = next(k for k, r in waiting.items() if r and r[0] is held[0])
            due_at[key] = now + delay_s
        now += 1.0
    assert not any(waiting.values()), "rows left unsent"
    return made


def test_a_crane_swinging_around_90_percent_for_five_minutes_is_a_handful_of_digests() -> None:
    storm = [(*t, 5) for t in crane_storm(T0, 300, period_s=20, phase=0.0)] + [
        (*t, 6) for t in crane_storm(T0, 300, period_s=13, phase=0.3)
    ]
    assert len(storm) > 60, len(storm)  # dozens of transitions, two cranes of one site
    default = _sub(1)  # Alertmanager's 30 s / 5 min
    quick = _sub(2, wait_s=10, interval_s=60)
    made = _simulate([default, quick], storm, end_s=T0 + 900)

    for sub_id, limit in ((1, 4), (2, 12)):
        folds = made[sub_id]
        assert len(folds) <= limit, [len(f.rows) for f in folds]
        # every transition in exactly one message of this subscription
        ids = Counter(r.item.transition_id for f in folds for r in f.rows)  # type: ignore[union-attr]
        assert len(ids) == len(storm)
        assert set(ids.values()) == {1}
        assert sum(len(f.rows) > 1 for f in folds) >= len(folds) - 2  # digests, nearly all
    # the default subscription: per crane, the storm's first 30 s, then the rest 5 min later
    assert [(f.group_key, min(r.created_s for r in f.rows) - T0) for f in made[1]][:2] == [
        ("w:5", 0.0),
        ("w:6", 0.0),
    ]
    assert len(made[1]) == 4


def test_in_a_storm_a_new_red_alert_is_not_held_back() -> None:
    storm = [(*t, 5) for t in crane_storm(T0, 120, period_s=20, phase=0.0)]
    red_at = T0 + 47.0
    storm.append((red_at, 3, 4, "escalate", 5))
    made = _simulate([_sub(1)], storm, end_s=T0 + 900)
    (with_red,) = [
        f
        for f in made[1]
        if any(r.item.grade == 4 for r in f.rows)  # type: ignore[union-attr]
    ]
    assert max(r.created_s for r in with_red.rows) == red_at  # it left the second it came


# --- rate limits and the send plan --------------------------------------------------------


def test_the_robots_documented_limits() -> None:
    assert RATE_LIMITS["wecom"].windows == ((20, 61.0),)
    assert RATE_LIMITS["dingtalk"].windows == ((20, 61.0),)
    assert RATE_LIMITS["feishu"].windows == ((100, 61.0), (5, 2.0))
    assert RATE_LIMITS["generic"].windows == ()


def test_a_sliding_window_waits_for_the_oldest_send_to_leave_it() -> None:
    limit = RateLimit(((3, 60.0),))
    assert limit.wait_s([], T0) == 0.0
    assert limit.wait_s([T0 - 50, T0 - 10], T0) == 0.0
    assert limit.wait_s([T0 - 50, T0 - 20, T0 - 10], T0) == pytest.approx(10.0)
    assert limit.wait_s([T0 - 70, T0 - 20, T0 - 10], T0) == 0.0  # one left the window
    assert limit.recorded([T0 - 70, T0 - 20], T0) == (T0 - 20, T0)  # what no window needs goes


def test_a_target_sends_in_order_no_more_than_its_limit_allows() -> None:
    wecom = RATE_LIMITS["wecom"]
    plan = plan_sends([T0] * 25, [], wecom, T0)
    assert (plan.send, plan.limited) == (20, True)
    assert plan.later_s == pytest.approx(61.0)
    # a head waiting for its retry holds back everything behind it
    held = plan_sends([T0 + 5, T0, T0], [], wecom, T0)
    assert (held.send, held.later_s, held.limited) == (0, 5.0, False)
    assert plan_sends([T0, T0], [], RATE_LIMITS["generic"], T0).send == 2


@pytest.mark.parametrize("kind", ["wecom", "dingtalk", "feishu"])
def test_a_queue_of_a_hundred_messages_drains_within_the_robots_limit(kind: str) -> None:
    limit = RATE_LIMITS[kind]  # type: ignore[index]
    queue = [T0] * 100
    sent: list[float] = []
    recent: list[float] = []
    now = T0
    while queue and now < T0 + 3600:
        plan = plan_sends(queue, recent, limit, now)
        for _ in range(plan.send):
            queue.pop(0)
            sent.append(now)
            recent = list(limit.recorded(recent, now))
        now += 0.25 if plan.later_s is None else max(0.25, plan.later_s)
    assert not queue, "messages left unsent"
    for count, window_s in limit.windows:
        documented_s = window_s - 1.0 if window_s > 2 else 1.0
        for start in sent:
            inside = [t for t in sent if start <= t < start + documented_s]
            assert len(inside) <= count, (kind, start, len(inside))
    assert sent == sorted(sent)
    assert all(b >= a for a, b in pairwise(sent))
