"""The outbox against the real database: bad payloads settled once, giving up, rows grouped into
digests, and notifiers side by side never sending a row twice, each target in order."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client import CollectorRegistry

from hazmon.db import drop_database, ensure_database, with_database
from hazmon.migrate import available_migrations, migrate
from notify import Notifier, RetryPolicy, outbox
from tests.notify.receiver import Received, deliveries, notifier, receiving, subscribe
from tests.notify.test_delivery import SimClock
from tests.notify.test_golden import PAYLOAD
from tests.support.alerts import open_alert, transition
from tests.support.common import SERVER_URL, ThreadRunner, wait_until
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


def test_rows_of_one_work_wait_for_their_group_and_go_as_one_digest(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    clock = SimClock()
    registry = CollectorRegistry()
    sender = Notifier("unused", policy=RetryPolicy(timeout_s=2), clock=clock, registry=registry)
    with (
        receiving() as receiver,
        psycopg.connect(db_url, autocommit=True) as conn,
        httpx.Client(timeout=2) as http,
    ):
        subscribe(conn, "wecom", receiver.url + "/w", group_wait_s=30, group_interval_s=300)
        alert_id = open_alert(conn, grade=2)
        transition(conn, alert_id, "escalate", 2, 3)
        transition(conn, alert_id, "deescalate", 3, 2)
        sender.deliver_due(conn, http)
        assert receiver.requests == []  # group_wait: the group waits 30 s for more
        waiting = conn.execute(
            "SELECT attempts, message_id, next_attempt_at > now() + interval '25 s' FROM outbox"
        ).fetchall()
        assert waiting == [(0, None, True)] * 3
        clock.skew_s = 31
        sender.deliver_due(conn, http)
        assert len(receiver.requests) == 1
        digest = json.loads(receiver.requests[0].body)["markdown"]["content"]
        assert "【监测汇总 3条】" in digest
        assert "橙色 / orange 2 · 黄色 / yellow 1" in digest
        assert conn.execute(
            "SELECT count(DISTINCT message_id), bool_and(delivered_at IS NOT NULL), "
            "max(attempts) FROM outbox"
        ).fetchone() == (1, True, 1)
        # the next transition waits for group_interval after that message ...
        transition(conn, alert_id, "escalate", 2, 3)
        clock.skew_s = 31 + 60
        sender.deliver_due(conn, http)
        assert len(receiver.requests) == 1
        # ... unless a new red alert comes: it goes at once, with what its group holds
        transition(conn, alert_id, "escalate", 3, 4)
        sender.deliver_due(conn, http)
        conn.execute("DELETE FROM outbox WHERE kind = 'hazard'")  # the major hazard's own news
        assert len(receiver.requests) == 2
        second = json.loads(receiver.requests[1].body)["markdown"]["content"]
        assert "【监测汇总 2条】" in second
        assert second.index("红色预警") < second.index("橙色预警")  # the worst first
    digested = {
        s.labels["kind"]: s.value
        for m in registry.collect()
        for s in m.samples
        if s.name == "hazmon_notify_digested_total"
    }
    assert digested == {"wecom": 5.0}


def _assert_each_sent_once_and_in_order(requests: list[Received], count: int) -> None:
    by_transition = Counter(r.transition_id for r in requests)
    assert sorted(by_transition) == list(range(1, count + 1))
    assert max(by_transition.values()) == 1, [t for t, n in by_transition.items() if n > 1]
    by_path: dict[str, list[int]] = {}
    for r in sorted(requests, key=lambda r: r.started_s):
        by_path.setdefault(r.path, []).append(r.transition_id)
    assert all(ids == sorted(ids) for ids in by_path.values()), by_path  # in order per target


def test_two_notifiers_share_the_outbox_without_sending_a_row_twice(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    count = 60
    registries = [CollectorRegistry(), CollectorRegistry()]
    senders = [
        Notifier(db_url, policy=RetryPolicy(timeout_s=2, batch=5), registry=registries[i])
        for i in range(2)
    ]
    with receiving(delay_s=0.005) as receiver, psycopg.connect(db_url, autocommit=True) as conn:
        # three targets (three robots), twenty rows each
        for target in range(3):
            sub = subscribe(conn, "generic", f"{receiver.url}/t{target}")
            conn.execute(
                "INSERT INTO outbox (subscription_id, payload) "
                "SELECT %s, %s::jsonb || jsonb_build_object('transition_id', g) "
                "FROM generate_series(%s::int, %s::int) g",
                (sub, json.dumps(PAYLOAD), target * 20 + 1, target * 20 + 20),
            )
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
    _assert_each_sent_once_and_in_order(receiver.requests, count)


def test_a_target_whose_notifier_stalled_is_taken_over_and_the_stalled_one_sends_nothing(
    db_url: str, tmp_path: Path
) -> None:
    # A leases the target (lease 0.3 s), then stalls before sending; B takes the target over once
    # the lease ran out and sends; A, waking up, finds its lease's token gone and sends nothing.
    load(db_url, tmp_path, crane_site("S1"))
    with (
        receiving() as receiver,
        psycopg.connect(db_url, autocommit=True) as conn,
        httpx.Client(timeout=2) as http,
    ):
        _enqueue(conn, subscribe(conn, "generic", receiver.url), 3)
        composer = Notifier("unused", registry=CollectorRegistry())
        composer.compose(conn)
        now = time.time()
        (stalled,) = outbox.lease_targets(conn, now_s=now, lease_s=0.3, limit=10)
        assert outbox.lease_targets(conn, now_s=now, lease_s=0.3, limit=10) == []  # it is A's
        threading.Event().wait(0.4)
        b = Notifier("unused", policy=RetryPolicy(timeout_s=2), registry=CollectorRegistry())
        assert b.send_due(conn, http) == 3
        assert outbox.reserve(conn, stalled, (), now_s=time.time(), lease_s=0.3) is None
    _assert_each_sent_once_and_in_order(receiver.requests, 3)


def test_a_row_queued_before_migration_0017_is_grouped_and_delivered_after_it(
    tmp_path: Path,
) -> None:
    url = with_database(SERVER_URL, f"hazmon_t_pre0017_{uuid.uuid4().hex[:8]}")
    try:
        ensure_database(url)
        with psycopg.connect(url, autocommit=True) as conn:  # the schema as main had it
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            for migration in available_migrations():
                if migration.version < "0017" and not migration.needs_tsl:
                    conn.execute(migration.sql.encode())
            conn.execute(
                "CREATE TABLE schema_migrations (version text PRIMARY KEY, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for migration in available_migrations():
                if migration.version < "0017" and not migration.needs_tsl:
                    conn.execute("INSERT INTO schema_migrations VALUES (%s)", (migration.version,))
        load(url, tmp_path, crane_site("S1"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO webhook_subscriptions (name, kind, url, min_grade) "
                "VALUES ('old', 'wecom', 'http://127.0.0.1:9/x', 1)"
            )
            open_alert(conn, grade=2)
            old = conn.execute("SELECT payload FROM outbox").fetchone()
        assert old is not None
        assert "work_id" not in old[0]  # the 0005 payload
        assert "0017_notify_grouping" in migrate(url).applied
        with (
            receiving() as receiver,
            psycopg.connect(url, autocommit=True) as conn,
            httpx.Client(timeout=2) as http,
        ):
            conn.execute("UPDATE webhook_subscriptions SET url = %s", (receiver.url,))
            grouped = conn.execute("SELECT kind, group_key, alert_id FROM outbox").fetchone()
            assert grouped is not None
            assert grouped[:2] == ("alert", "w:1")
            clock = SimClock()
            sender = Notifier("unused", policy=RetryPolicy(timeout_s=2), clock=clock,
                              registry=CollectorRegistry())  # fmt: skip
            clock.skew_s = 31  # the column default's group_wait
            sender.deliver_due(conn, http)
            delivered = conn.execute("SELECT delivered_at IS NOT NULL FROM outbox").fetchone()
        assert delivered == (True,)
        (request,) = receiver.requests
        assert "黄色预警（III级） 新报警" in json.loads(request.body)["markdown"]["content"]
    finally:
        drop_database(url)
