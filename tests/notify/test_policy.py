"""The retry policy and the send plan on their own; pure."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from notify import Delivery, Notification, RetryPolicy, SendPlan, Subscription, plan_sends
from tests.notify.test_golden import PAYLOAD


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


def _delivery(outbox_id: int, subscription_id: int = 1) -> Delivery:
    n = Notification.from_payload({**PAYLOAD, "transition_id": outbox_id})
    return Delivery(
        outbox_id=outbox_id,
        attempts=0,
        leased_until=datetime(2026, 3, 1, tzinfo=UTC),
        subscription=Subscription(subscription_id, "dingtalk", "https://d", None),
        notification=n,
    )


def test_today_every_claimed_row_is_sent_now_in_outbox_order() -> None:
    claimed = [_delivery(3), _delivery(5, subscription_id=2), _delivery(8)]
    plan = plan_sends(claimed, now_s=1_772_353_800.0)
    assert plan == SendPlan(send=tuple(claimed), later=())
    assert plan_sends([], now_s=0.0) == SendPlan(send=())


def test_the_plan_is_a_value_a_later_policy_can_fill() -> None:
    # the seam's contract: every claimed row in exactly one part (what a rate limit returns)
    claimed = [_delivery(1), _delivery(2), _delivery(3)]
    plan = SendPlan(send=(claimed[0],), later=((claimed[1], 3.0), (claimed[2], 6.0)))
    parts = [d.outbox_id for d in plan.send] + [d.outbox_id for d, _ in plan.later]
    assert sorted(parts) == [1, 2, 3]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.send = ()  # type: ignore[misc]
