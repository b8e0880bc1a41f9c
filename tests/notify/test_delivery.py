"""The notifier: outbox rows from alert transitions, delivered to real HTTP receivers, retried."""

from __future__ import annotations

import itertools
import json
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from notify import Notifier, RetryPolicy, sign_generic
from tests.notify.receiver import Receiver, notifier, receiving, subscribe
from tests.notify.test_golden import PAYLOAD_V2
from tests.support.alerts import open_alert, transition
from tests.support.common import ThreadRunner, free_port, wait_until
from tests.support.inventories import crane_site, load


def test_transition_enqueues_for_matching_subscriptions_only(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, crane_site("S1", region="420106"))
    with psycopg.connect(db_url, autocommit=True) as conn:
        match_city = subscribe(conn, "generic", "http://x", region="4201")
        subscribe(conn, "generic", "http://x", region="4301")  # another province
        subscribe(conn, "generic", "http://x", min_grade=4)  # red only
        open_alert(conn, grade=3)
        rows = conn.execute("SELECT subscription_id, payload FROM outbox").fetchall()
    assert [r[0] for r in rows] == [match_city]
    payload = rows[0][1]
    assert payload["site_code"] == "S1"
    assert payload["metric"] == "moment_ratio"
    assert payload["grade"] == 3
    assert payload["action"] == "open"


def test_generic_webhook_is_signed_and_retried_until_accepted(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    with (
        receiving([(500, b"busy"), (503, b"")]) as receiver,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        subscribe(conn, "generic", receiver.url + "/hook", secret="s3cret")
        open_alert(conn, grade=4)
        # the red alert registers a major hazard, which notifies too (test_hazard_events.py)
        conn.execute("DELETE FROM outbox WHERE kind = 'hazard'")
        sender = notifier()
        with httpx.Client(timeout=2) as http:
            for _ in range(50):
                sender.deliver_due(conn, http)
                row = conn.execute("SELECT delivered_at, attempts FROM outbox").fetchone()
                assert row is not None
                if row[0] is not None:
                    break
                threading.Event().wait(0.02)
        assert row is not None
        assert row[0] is not None, "never delivered"
        assert row[1] == 3
    assert len(receiver.requests) == 3
    last = receiver.requests[-1]
    path, headers, body = last.path, last.headers, last.body
    assert path == "/hook"
    stamp = headers["X-Hazmon-Timestamp"]
    assert headers["X-Hazmon-Signature"] == "sha256=" + sign_generic("s3cret", stamp, body)
    message = json.loads(body)
    assert message["grade"] == 4
    assert "红色预警" in message["text"]
    assert "RED (I)" in message["text"]


@pytest.mark.parametrize(
    ("kind", "refusal", "check"),
    [
        ("wecom", b'{"errcode": 93000, "errmsg": "invalid webhook url"}', "markdown"),
        ("dingtalk", b'{"errcode": 310000, "errmsg": "sign not match"}', "markdown"),
        ("feishu", b'{"code": 19021, "msg": "sign match fail"}', "text"),
    ],
)
def test_chat_robots_get_their_format_and_a_200_refusal_is_retried(
    db_url: str, tmp_path: Path, kind: str, refusal: bytes, check: str
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    ok = b'{"errcode": 0, "code": 0}'
    with (
        receiving([(200, refusal), (200, ok)]) as receiver,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        subscribe(conn, kind, receiver.url + "/robot?key=abc", secret="sec")
        open_alert(conn, grade=3)
        sender = notifier()
        with httpx.Client(timeout=2) as http:
            for _ in range(50):
                sender.deliver_due(conn, http)
                if len(receiver.requests) >= 2:
                    break
                threading.Event().wait(0.02)
        row = conn.execute("SELECT delivered_at, attempts, last_error FROM outbox").fetchone()
    assert row is not None
    assert row[0] is not None
    assert row[1] == 2
    path, body = receiver.requests[-1].path, receiver.requests[-1].body
    message = json.loads(body)
    assert check in json.dumps(message)
    assert "橙色预警" in body.decode()
    if kind == "dingtalk":
        assert "timestamp=" in path
        assert "sign=" in path
    if kind == "feishu":
        assert message["sign"]
        assert message["timestamp"]


def test_a_failing_receiver_is_retried_with_growing_delays_until_it_accepts(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    policy = RetryPolicy(first_s=0.2, max_s=5, jitter=0, timeout_s=2)
    sender = Notifier(db_url, policy=policy, registry=CollectorRegistry())
    refusals = [(503, b"busy"), (500, b"oops"), (502, b"gateway")]
    with receiving(list(refusals)) as receiver, psycopg.connect(db_url, autocommit=True) as conn:
        subscribe(conn, "generic", receiver.url + "/hook")
        open_alert(conn, grade=3)
        with ThreadRunner(lambda stop: sender.run(stop, poll_interval_s=0.01), "notify"):
            assert wait_until(lambda: len(receiver.requests) >= 4, 10), "never accepted"
            threading.Event().wait(0.1)
        row = conn.execute("SELECT delivered_at, attempts, last_error FROM outbox").fetchone()
    assert row is not None
    assert row[0] is not None
    assert row[1:] == (4, None)
    assert len(receiver.requests) == 4
    starts = [r.started_s for r in receiver.requests]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # 0.2, 0.4 then 0.8 s after each failure, plus at most a poll and a round trip
    for gap, delay_s in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert delay_s <= gap < delay_s + 0.25, gaps
    assert gaps == sorted(gaps)


class SimClock:
    """A clock the test moves: real time plus a skew (the database's own `now()` stays real, and
    the notifier's times are never behind it)."""

    def __init__(self) -> None:
        self.skew_s = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew_s


def _storm_of_messages(conn: psycopg.Connection[Any], alert_id: int, n: int) -> None:
    """One more transition of the alert (orange and back), n-th of the sequence."""
    if n % 2:
        transition(conn, alert_id, "escalate", 2, 3)
    else:
        transition(conn, alert_id, "deescalate", 3, 2)


def test_receivers_that_fail_time_out_are_down_or_throttle_get_everything_once_in_order(
    db_url: str, tmp_path: Path
) -> None:
    """Four targets, each sent a new message every 5 simulated seconds: one fails its first 3
    requests, one's first answer comes after the notifier's timeout, one is down (nothing listens)
    for the first simulated minute, one is a DingTalk robot answering "200 with errcode 130101"
    (over its limit) twice. Each gets every message once it recovers, in order, none twice by
    idempotency key (a timed-out request that arrived anyway is the at-least-once case: the same
    key again)."""
    load(db_url, tmp_path, crane_site("S1"))
    clock = SimClock()
    down_port = free_port()
    too_fast = b'{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}'
    policy: dict[str, Any] = {"first_s": 5, "max_s": 60, "jitter": 0, "timeout_s": 0.5}
    sender = Notifier(
        "unused",
        policy=RetryPolicy(**policy),
        clock=clock,
        throttled_retry_s={"dingtalk": 30.0},
        registry=CollectorRegistry(),
    )
    with (
        receiving([(500, b"no")] * 3) as failing,
        receiving([(200, b"{}", 1.5)]) as slow,
        receiving([(200, too_fast)] * 2) as throttling,
        psycopg.connect(db_url, autocommit=True) as conn,
        httpx.Client(timeout=0.5) as http,
        ExitStack() as later,
    ):
        timing = {"group_wait_s": 0, "group_interval_s": 1, "min_grade": 1}
        subs = {
            "failing": subscribe(conn, "generic", failing.url, name="failing", **timing),
            "slow": subscribe(conn, "generic", slow.url, name="slow", **timing),
            "down": subscribe(conn, "wecom", f"http://127.0.0.1:{down_port}/w", **timing),
            "throttling": subscribe(conn, "dingtalk", throttling.url, **timing),
        }
        alert_id = open_alert(conn, grade=2)
        down: Receiver | None = None
        start_s = clock()
        for step in range(120):
            if step < 6:
                _storm_of_messages(conn, alert_id, step + 1)
            if down is None and clock() - start_s >= 60:
                down = later.enter_context(receiving(port=down_port))
            sender.deliver_due(conn, http)
            pending = conn.execute(
                "SELECT count(*) FROM notify_messages WHERE delivered_at IS NULL"
            ).fetchone()
            if step >= 6 and pending == (0,):
                break
            clock.skew_s += 5.0
        assert pending == (0,), "not everything was delivered"
        expected = {
            name: [
                r[0]
                for r in conn.execute(
                    "SELECT idempotency_key FROM notify_messages WHERE subscription_id = %s "
                    "ORDER BY id",
                    (sub,),
                )
            ]
            for name, sub in subs.items()
        }
        undelivered = conn.execute(
            "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
        ).fetchone()
        assert down is not None
        receivers = {"failing": failing, "slow": slow, "down": down, "throttling": throttling}
        for name, receiver in receivers.items():
            assert len(expected[name]) >= 4, (name, expected[name])  # several messages each
            assert receiver.accepted_keys() == expected[name], name  # all, in order, once
    assert undelivered == (0,)
    assert [r.status for r in failing.requests[:3]] == [500, 500, 500]
    # the slow receiver got the first message twice (the sender had timed out): same key
    slow_keys = [r.key for r in sorted(slow.requests, key=lambda r: r.started_s)]
    assert slow_keys[0] == slow_keys[1]
    assert len(slow_keys) == len(set(slow_keys)) + 1
    # the robot over its limit was left alone for at least the throttle's 30 s
    assert len(throttling.requests) == len(expected["throttling"]) + 2


def test_a_robot_is_never_sent_more_than_its_limit_and_nothing_is_dropped(
    db_url: str, tmp_path: Path
) -> None:
    """30 digests for one WeCom robot at once: the notifier sends 20, waits for the window, sends
    the rest; a robot that refuses a 21st message within 60 s (errcode 45009) never has to."""
    load(db_url, tmp_path, crane_site("S1"))
    clock = SimClock()
    registry = CollectorRegistry()
    sender = Notifier("unused", policy=RetryPolicy(timeout_s=2), clock=clock, registry=registry)
    seen: list[float] = []

    def strict_robot(body: bytes) -> tuple[int, bytes]:
        now = clock()
        if len([t for t in seen if t > now - 60]) >= 20:
            return 200, b'{"errcode":45009,"errmsg":"api freq out of limit"}'
        seen.append(now)
        return 200, b'{"errcode":0,"errmsg":"ok"}'

    with (
        receiving(respond=strict_robot) as robot,
        psycopg.connect(db_url, autocommit=True) as conn,
        httpx.Client(timeout=2) as http,
    ):
        subscribe(conn, "wecom", robot.url + "/send?key=k", group_wait_s=0)
        conn.execute(
            "INSERT INTO outbox (subscription_id, payload) "
            "SELECT 1, %s::jsonb || jsonb_build_object('transition_id', g) "
            "FROM generate_series(1, 30) g",
            (json.dumps(PAYLOAD_V2),),
        )
        for _ in range(40):
            sender.deliver_due(conn, http)
            if len(robot.requests) >= 30:
                break
            clock.skew_s += 5.0
        keys = [
            r[0] for r in conn.execute("SELECT idempotency_key FROM notify_messages ORDER BY id")
        ]
    assert len(keys) == 30
    assert robot.accepted_keys() == keys  # all of them, in order
    assert all(r.status == 200 and b'"errcode":0' in r.answer for r in robot.requests)
    first, last = robot.requests[0], robot.requests[-1]
    assert first is not last
    assert clock.skew_s >= 60  # the second batch waited for the window
    limited = {
        s.labels["kind"]: s.value
        for m in registry.collect()
        for s in m.samples
        if s.name == "hazmon_notify_rate_limited_total"
    }
    assert limited.get("wecom", 0) >= 1
