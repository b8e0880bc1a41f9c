"""kill -9 of the notifier process (`python -m hazmon.cli notify`) in the middle of delivering,
then a restart: every message is delivered, none twice by its idempotency key (the one a
receiver may see again is the one in flight when the process died: the same key, which it
drops), and each target's messages arrive in order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.notify.receiver import receiving, subscribe
from tests.notify.test_golden import PAYLOAD_V2
from tests.support.common import free_port, wait_until
from tests.support.inventories import crane_site, load

TARGETS = 3
PER_TARGET = 25


@contextmanager
def notifier_process(db_url: str, metrics_port: int = 0) -> Iterator[subprocess.Popen[str]]:
    """`hazmon notify` as a process of its own, with a 1 s webhook timeout (a 3 s lease)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    env.update(HAZMON_DATABASE_URL=db_url, HAZMON_NOTIFY_TIMEOUT_S="1", HAZMON_LOG_LEVEL="INFO")
    args = [sys.executable, "-m", "hazmon.cli", "notify"]
    if metrics_port:
        args += ["--metrics-port", str(metrics_port)]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()


@pytest.mark.fault
@pytest.mark.slow
def test_kill_9_mid_delivery_then_restart_delivers_everything_once_in_order(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    with receiving(delay_s=0.03) as receiver, psycopg.connect(db_url, autocommit=True) as conn:
        for target in range(TARGETS):
            sub = subscribe(conn, "generic", f"{receiver.url}/t{target}")
            conn.execute(
                "INSERT INTO outbox (subscription_id, payload) "
                "SELECT %s, %s::jsonb || jsonb_build_object('transition_id', g) "
                "FROM generate_series(%s::int, %s::int) g",
                (sub, json.dumps(PAYLOAD_V2), target * 100 + 1, target * 100 + PER_TARGET),
            )
        total = TARGETS * PER_TARGET
        with notifier_process(db_url) as first:
            assert wait_until(lambda: len(receiver.requests) >= total // 3, 30), "never sent"
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        killed_at = len(receiver.requests)
        assert killed_at < total, "the notifier finished before it was killed"
        metrics_port = free_port()
        with notifier_process(db_url, metrics_port) as second:

            def all_delivered() -> bool:
                row = conn.execute(
                    "SELECT count(*) FROM outbox WHERE delivered_at IS NULL"
                ).fetchone()
                return row == (0,)

            assert wait_until(all_delivered, 60), "not everything was delivered after restart"
            metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
            assert second.poll() is None
        keys = [
            r[0] for r in conn.execute("SELECT idempotency_key FROM notify_messages ORDER BY id")
        ]
        rows_per_message = conn.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM outbox"
        ).fetchone()
    assert rows_per_message == (total, total)  # each row in exactly one message
    assert sorted(receiver.accepted_keys()) == sorted(keys)
    arrivals = Counter(r.key for r in receiver.requests)
    again = [k for k, n in arrivals.items() if n > 1]
    assert len(again) <= TARGETS, again  # at most the one in flight per target, same key
    by_target: dict[str, list[int]] = {}
    for r in sorted(receiver.requests, key=lambda r: r.started_s):
        ids = by_target.setdefault(r.path, [])
        if r.transition_id not in ids:
            ids.append(r.transition_id)
    assert all(ids == sorted(ids) for ids in by_target.values())
    assert sum(len(ids) for ids in by_target.values()) == total
    assert 'hazmon_notify_sent_total{kind="generic"}' in metrics
