"""The notifier: outbox rows from alert transitions, delivered to real HTTP receivers, retried."""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from notify import Notifier, RetryPolicy, sign_generic
from tests.notify.receiver import notifier, receiving, subscribe
from tests.support.alerts import open_alert
from tests.support.common import ThreadRunner, wait_until
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
