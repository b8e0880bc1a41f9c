"""The notifier's metrics: `hazmon_notify_*`, labelled by receiver kind (and result or shape)
only, never a site, device or target; `promtool check metrics` passes on them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import psycopg
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from notify import Notifier, RetryPolicy
from tests.notify.receiver import receiving, subscribe
from tests.notify.test_delivery import SimClock
from tests.notify.test_golden import PAYLOAD_V2
from tests.support.alerts import open_alert, transition
from tests.support.inventories import crane_site, load

ALLOWED_LABELS = {"kind", "result", "shape"}


def test_the_notifier_metrics_pass_promtool_and_carry_only_bounded_labels(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    clock = SimClock()
    registry = CollectorRegistry()
    sender = Notifier(
        "unused",
        policy=RetryPolicy(first_s=1, max_s=2, timeout_s=2),
        clock=clock,
        registry=registry,
    )
    with (
        receiving([(500, b"busy")]) as robot,
        psycopg.connect(db_url, autocommit=True) as conn,
        httpx.Client(timeout=2) as http,
    ):
        wecom = subscribe(conn, "wecom", robot.url + "/w", group_wait_s=0, min_grade=1)
        alert_id = open_alert(conn, grade=2)
        transition(conn, alert_id, "escalate", 2, 3)
        conn.execute(  # 22 lone rows: more than the robot may take in a minute; one bad row
            "INSERT INTO outbox (subscription_id, payload) "
            "SELECT %s, %s::jsonb || jsonb_build_object('transition_id', g) "
            "FROM generate_series(1, 22) g",
            (wecom, json.dumps(PAYLOAD_V2)),
        )
        conn.execute("INSERT INTO outbox (subscription_id, payload) VALUES (%s, '{}')", (wecom,))
        sender.deliver_due(conn, http)
        sender.refresh_gauges(conn)
        waiting = generate_latest(registry).decode()
        for _ in range(6):
            clock.skew_s += 15
            sender.deliver_due(conn, http)
        sender.refresh_gauges(conn)
        drained = generate_latest(registry).decode()
    for text in (waiting, drained):
        result = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, result.stdout + result.stderr
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for m in registry.collect()
        for s in m.samples
        if s.name.startswith("hazmon_notify_")
    }
    assert all(set(dict(labels)) <= ALLOWED_LABELS for _, labels in samples)
    assert (
        samples[("hazmon_notify_deliveries_total", (("kind", "wecom"), ("result", "invalid")))] == 1
    )
    assert samples[("hazmon_notify_retried_total", (("kind", "wecom"),))] == 1
    assert samples[("hazmon_notify_sent_total", (("kind", "wecom"),))] == 23  # a digest and 22
    assert samples[("hazmon_notify_digested_total", (("kind", "wecom"),))] == 2
    assert samples[("hazmon_notify_messages_total", (("kind", "wecom"), ("shape", "digest")))] == 1
    assert samples[("hazmon_notify_rate_limited_total", (("kind", "wecom"),))] >= 1
    assert samples[("hazmon_notify_failed_total", (("kind", "wecom"),))] == 1  # the invalid one
    assert samples[("hazmon_notify_queued", (("kind", "wecom"),))] == 0
    assert samples[("hazmon_notify_oldest_undelivered_age_seconds", ())] == 0
    # while the robot's limit held the last messages back, they were queued and aging
    before = {
        (s.name, s.labels.get("kind")): s.value
        for family in text_string_to_metric_families(waiting)
        for s in family.samples
    }
    assert before[("hazmon_notify_queued", "wecom")] >= 2
    assert before[("hazmon_notify_oldest_undelivered_age_seconds", None)] >= 0
