"""The outbox against the real database: bad payloads settled once, giving up, the planner's
`later`, and notifiers side by side never sending a row twice at once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client import CollectorRegistry

from notify import Delivery, Notifier, RetryPolicy, SendPlan
from tests.notify.receiver import Received, deliveries, notifier, receiving, subscribe
from tests.notify.test_golden import PAYLOAD
from tests.support.alerts import open_alert
from tests.support.common import ThreadRunner, wait_until
from tests.support.inventories import crane_site, load


def _outbox(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, attempts, delivered_at IS NOT NULL, failed_at IS NOT NULL, last_error "
        "FROM outbox ORDER BY id"
    ).fetchall()


def _enqueue(conn: psycopg.Connection[Any], subscription_id: int, count: int) -> None:
    """`count` rows of the golden payload, transition ids 1..count."""
    conn.execute(
        "INSERT INTO outbox (subscription_id, payload) "
        "SELECT %s, %s::jsonb || jsonb_build_object('transition_id', g) "
        "FROM generate_series(1, %s) g",
        (subscription_id, json.dumps(PAYLOAD), count),
    )


def test_a_bad_payload_is_settled_once_counted_and_the_rest_delivered(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    registry = CollectorRegistry()
    sender = Notifier(
        db_url, policy=RetryPolicy(first_s=0.01, max_s=0.05, timeout_s=2), registry=registry
    )
    broken = {k: v for k, v in PAYLOAD.items() if k != "grade"}
    with receiving() as receiver, psycopg.connect(db_url, autocommit=True) as conn:
        sub = subscribe(conn, "dingtalk", receiver.url + "/robot")
        conn.execute(
            "INSERT INTO outbox (subscription_id, payload) VALUES (%s, %s), (%s, %s)",
            (sub, json.dumps(broken), sub, json.dumps({**PAYLOAD, "value": "high"})),
        )
        open_alert(conn, grade=3)
        conn.execute("INSERT INTO outbox (subscription_id, payload) VALUES (%s, '[]')", (sub,))
        with ThreadRunner(lambda stop: sender.run(stop, poll_interval_s=0.01), "notify"):
            assert wait_until(lambda: _outbox(conn)[2][2], 10), "the good row was not delivered"
            threading.Event().wait(0.2)  # more polls: nothing is claimed again
        rows = _outbox(conn)
    assert [(r[1], r[2], r[3]) for r in rows] == [
        (0, False, True),
        (0, False, True),
        (1, True, False),
        (0, False, True),
    ]
    assert rows[0][4] == "invalid payload: payload key 'grade': missing"
    assert (
        rows[1][4] == "invalid payload: payload key 'value': must be a number or null, got string"
    )
    assert rows[3][4] == "invalid payload: payload: must be a JSON object, got array"
    assert len(receiver.requests) == 1
    assert deliveries(registry) == {("dingtalk", "invalid"): 3.0, ("dingtalk", "ok"): 1.0}


def test_a_policy_that_gives_up_settles_the_row_as_failed(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    registry = CollectorRegistry()
    sender = notifier(registry, give_up_after=2)
    with (
        receiving([(500, b"down")] * 5) as receiver,
        psycopg.connect(db_url, autocommit=True) as conn,
        httpx.Client(timeout=2) as http,
    ):
        subscribe(conn, "wecom", receiver.url + "/send?key=k")
        open_alert(conn, grade=3)
        for _ in range(40):
            sender.deliver_due(conn, http)
            threading.Event().wait(0.01)
        rows = _outbox(conn)
    assert [(r[1], r[2], r[3]) for r in rows] == [(2, False, True)]
    assert rows[0][4] == "HTTP 500: down"
    assert len(receiver.requests) == 2
    assert deliveries(registry) == {("wecom", "failed"): 2.0}


def test_what_the_planner_puts_back_is_sent_later_without_an_attempt(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    held: set[int] = set()

    def hold_feishu_once(claimed: Sequence[Delivery], now_s: float) -> SendPlan:
        # the shape a per-robot rate limit will take: some now, the rest after a delay
        later = [d for d in claimed if d.subscription.kind == "feishu" and d.outbox_id not in held]
        held.update(d.outbox_id for d in later)
        return SendPlan(
            send=tuple(d for d in claimed if d not in later),
            later=tuple((d, 0.3) for d in later),
        )

    sender = Notifier(
        "unused",
        policy=RetryPolicy(timeout_s=2),
        planner=hold_feishu_once,
        registry=CollectorRegistry(),
    )
    with (
        receiving() as receiver,
        psycopg.connect(db_url, autocommit=True) as conn,
        httpx.Client(timeout=2) as http,
    ):
        subscribe(conn, "feishu", receiver.url + "/feishu")
        subscribe(conn, "dingtalk", receiver.url + "/dingtalk")
        open_alert(conn, grade=3)
        assert sender.deliver_due(conn, http) == 2
        assert [r.path for r in receiver.requests] == ["/dingtalk"]
        feishu = conn.execute(
            "SELECT attempts, delivered_at, next_attempt_at > now() + interval '0.1 s' "
            "FROM outbox o JOIN webhook_subscriptions w ON w.id = o.subscription_id "
            "WHERE w.kind = 'feishu'"
        ).fetchone()
        assert feishu == (0, None, True)
        assert sender.deliver_due(conn, http) == 0  # not due yet
        threading.Event().wait(0.35)
        assert sender.deliver_due(conn, http) == 1
        assert [r.path for r in receiver.requests] == ["/dingtalk", "/feishu"]
        assert [(r[1], r[2]) for r in _outbox(conn)] == [(1, True), (1, True)]


def _assert_each_sent_once_and_never_concurrently(requests: list[Received], count: int) -> None:
    by_transition = Counter(r.transition_id for r in requests)
    assert sorted(by_transition) == list(range(1, count + 1))
    assert max(by_transition.values()) == 1, [t for t, n in by_transition.items() if n > 1]


def test_two_notifiers_share_the_outbox_without_sending_a_row_twice(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    count = 60
    senders = [
        Notifier(db_url, policy=RetryPolicy(timeout_s=2, batch=5), registry=CollectorRegistry())
        for _ in range(2)
    ]
    with receiving(delay_s=0.005) as receiver, psycopg.connect(db_url, autocommit=True) as conn:
        _enqueue(conn, subscribe(conn, "generic", receiver.url), count)
        with (
            ThreadRunner(lambda stop: senders[0].run(stop, poll_interval_s=0.01), "notify-a"),
            ThreadRunner(lambda stop: senders[1].run(stop, poll_interval_s=0.01), "notify-b"),
        ):
            assert wait_until(lambda: len(receiver.requests) >= count, 30)
            threading.Event().wait(0.2)
        undelivered = conn.execute(
            "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
        ).fetchone()
    assert undelivered == (0,)
    _assert_each_sent_once_and_never_concurrently(receiver.requests, count)


def test_a_row_whose_lease_ran_out_mid_batch_is_sent_by_one_notifier_only(
    db_url: str, tmp_path: Path
) -> None:
    # A claims every row with a lease of 1.5 s but needs about 2 s to send them all; B, claiming
    # one row at a time, takes over the rows whose lease ran out. A, renewing each lease before
    # sending, finds those taken and skips them.
    load(db_url, tmp_path, crane_site("S1"))
    count = 40
    slow = Notifier(
        db_url, policy=RetryPolicy(timeout_s=0.5, batch=count), registry=CollectorRegistry()
    )
    quick_registry = CollectorRegistry()
    quick = Notifier(db_url, policy=RetryPolicy(timeout_s=0.5, batch=1), registry=quick_registry)
    with receiving(delay_s=0.05) as receiver, psycopg.connect(db_url, autocommit=True) as conn:
        _enqueue(conn, subscribe(conn, "generic", receiver.url), count)

        def all_leased() -> bool:
            row = conn.execute("SELECT bool_and(next_attempt_at > now()) FROM outbox").fetchone()
            return bool(row and row[0])

        with ThreadRunner(lambda stop: slow.run(stop, poll_interval_s=0.01), "notify-slow"):
            assert wait_until(all_leased, 10, interval_s=0.005)
            with ThreadRunner(lambda stop: quick.run(stop, poll_interval_s=0.01), "notify-b"):
                assert wait_until(lambda: len(receiver.requests) >= count, 30)
                threading.Event().wait(0.3)
    _assert_each_sent_once_and_never_concurrently(receiver.requests, count)
    assert deliveries(quick_registry).get(("generic", "ok"), 0) > 0, "B never took a row over"
