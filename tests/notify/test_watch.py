"""Reminders and escalation against the real database, API and HTTP receivers, on a clock the
test moves: a red alert nobody acknowledges is reminded every 30 minutes and climbs the ladder
(site -> county after 1 h, -> city after the county's 30 min), and acknowledging it through the
signed link in the county's message stops both."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client import CollectorRegistry

from hazmon.links import LinkSigner
from hazmon.settings import Settings
from notify import Notifier, RetryPolicy
from tests.notify.receiver import Receiver, receiving, subscribe
from tests.notify.test_delivery import SimClock
from tests.support.alerts import open_alert
from tests.support.inventories import crane_site, load
from tests.support.services import running_api
from tests.support.world import LINK_SECRET, with_links

QUICK = {"group_wait_s": 0, "group_interval_s": 1, "min_grade": 1}


def _texts(receiver: Receiver) -> list[str]:
    """Each accepted message's text, in arrival order (one of every idempotency key)."""
    seen: dict[str, str] = {}
    for r in sorted(receiver.requests, key=lambda r: r.started_s):
        body = json.loads(r.body)
        text = body.get("text") or body.get("markdown", {}).get("content") or ""
        if "markdown" in body and "text" in body["markdown"]:
            text = body["markdown"]["text"]
        seen.setdefault(r.key, text)
    return list(seen.values())


def _alert_texts(receiver: Receiver) -> list[str]:
    return [t for t in _texts(receiver) if "隐患" not in t.split("\n")[0]]


def test_a_red_alert_is_reminded_and_escalated_until_acknowledged_through_its_link(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1", region="420106"))
    settings = with_links(settings)
    clock = SimClock()
    registry = CollectorRegistry()
    with (
        running_api(settings) as base,
        receiving() as site_group,
        receiving() as county,
        receiving() as city,
        receiving() as province,
        psycopg.connect(db_url, autocommit=True) as conn,
        httpx.Client(timeout=5) as http,
    ):
        sender = Notifier(
            "unused",
            policy=RetryPolicy(timeout_s=2),
            links=LinkSigner(LINK_SECRET, base, 7 * 24 * 3600),
            clock=clock,
            watch_interval_s=1,
            registry=registry,
        )
        site_id = conn.execute("SELECT id FROM sites WHERE code = 'S1'").fetchone()[0]  # type: ignore[index]
        subscribe(conn, "wecom", site_group.url, name="项目部", site_id=site_id, **QUICK)
        ladder = {"escalation_only": True, **QUICK}
        subscribe(conn, "dingtalk", county.url, name="武昌区监督站", region="420106",
                  escalate_after_s=1800, **ladder)  # fmt: skip
        subscribe(conn, "generic", city.url, name="武汉市监督站", region="4201", **ladder)
        subscribe(conn, "generic", province.url, name="湖北省", region="42", **ladder)
        alert_id = open_alert(conn, grade=4)

        def at(minutes: float) -> None:
            clock.skew_s = minutes * 60
            for _ in range(3):  # the watch, then the messages it queued
                sender.deliver_due(conn, http)

        at(0)
        assert "红色预警（I级） 新报警" in _alert_texts(site_group)[0]  # at once: a new red alert
        assert _texts(county) == []  # escalation-only: not told directly
        at(29)
        assert len(_alert_texts(site_group)) == 1
        at(30)  # the site's reminder, 30 min after its message was delivered
        reminders = _alert_texts(site_group)
        assert len(reminders) == 2
        assert "未确认提醒 #1" in reminders[1]
        assert "已持续 30 分钟未确认" in reminders[1]
        at(59)
        assert _texts(county) == []
        at(60)  # nobody acknowledged within the site's hour: the county
        (up,) = _texts(county)
        assert "升级督办" in up
        assert "60 分钟内无人确认，已升级至区县（420106）" in up
        at(60 + 29)
        assert _texts(city) == []
        at(60 + 30)  # the county's own 30 minutes
        (to_city,) = _texts(city)
        assert "升级至市级（4201）" in to_city
        assert _texts(province) == []

        # the county's inspector acknowledges through the link in the county's message
        link = re.search(r"\((https?://[^)]+/links/[^)]+)\)", up)
        assert link, up
        done = httpx.post(f"{link[1]}/acknowledge", json={"note": "已到场，停止吊装并检查"})
        assert done.status_code == 200, done.text
        assert done.json()["alert"]["acknowledged_by"] == "link:武昌区监督站"

        told = {name: len(_texts(r)) for name, r in (("site", site_group), ("county", county))}
        at(60 + 31)
        # everyone told about the alert hears it was acknowledged, the escalation levels too
        assert "已确认" in _alert_texts(site_group)[-1]
        assert "已确认" in _texts(county)[-1]
        assert "已确认" in _texts(city)[-1]
        counts = {name: len(_texts(r)) for name, r in (("site", site_group), ("county", county))}
        for minutes in (120, 240, 600, 24 * 60):
            at(minutes)
        # ... and then nothing more: no reminder, no escalation to the province
        assert {n: len(_texts(r)) for n, r in (("site", site_group), ("county", county))} == counts
        assert counts == {k: v + 1 for k, v in told.items()}
        assert _texts(province) == []
        escalations = conn.execute(
            "SELECT level, region_code, after_s, subscriptions FROM alert_escalations "
            "WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        ).fetchall()
        kinds = conn.execute(
            "SELECT kind, count(*) FROM outbox WHERE alert_id = %s GROUP BY kind ORDER BY kind",
            (alert_id,),
        ).fetchall()
        undelivered = conn.execute(
            "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND cancelled_at IS NULL"
        ).fetchone()
    assert escalations == [("county", "420106", 3600, 1), ("city", "4201", 1800, 1)]
    assert {str(k): int(n) for k, n in kinds}["escalate"] == 2
    assert undelivered == (0,)
    assert _sample(registry, "hazmon_notify_escalated_total") == {"dingtalk": 1.0, "generic": 1.0}
    assert _sample(registry, "hazmon_notify_reminders_total")["wecom"] >= 2


def test_a_reminder_queued_before_the_acknowledgement_is_cancelled_not_sent(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    clock = SimClock()
    registry = CollectorRegistry()
    sender = Notifier("unused", policy=RetryPolicy(timeout_s=2), clock=clock, registry=registry)
    with (
        receiving() as robot,
        psycopg.connect(db_url, autocommit=True) as conn,
        httpx.Client(timeout=2) as http,
    ):
        # a long group_wait holds the reminder back; the alert is acknowledged meanwhile
        subscribe(conn, "wecom", robot.url, group_wait_s=600, group_interval_s=600)
        alert_id = open_alert(conn, grade=4)
        conn.execute("DELETE FROM outbox WHERE kind = 'hazard'")
        sender.deliver_due(conn, http)
        clock.skew_s = 1800
        assert sender.watch(conn) == 1
        sender.deliver_due(conn, http)
        conn.execute(
            "INSERT INTO alert_transitions (alert_id, action, grade_from, grade_to, reading_at, "
            "message_zh, message_en, actor) VALUES (%s, 'acknowledge', 4, 4, now(), '已确认', "
            "'acknowledged', 'x')",
            (alert_id,),
        )
        conn.execute("UPDATE alerts SET state = 'acknowledged' WHERE id = %s", (alert_id,))
        clock.skew_s = 1800 + 601
        sender.deliver_due(conn, http)
        rows = conn.execute(
            "SELECT kind, delivered_at IS NOT NULL, cancelled_at IS NOT NULL FROM outbox "
            "ORDER BY id"
        ).fetchall()
    assert rows == [("alert", True, False), ("remind", False, True), ("alert", True, False)]
    assert not any(
        "未确认提醒" in json.loads(r.body)["markdown"]["content"] for r in robot.requests
    )
    assert _sample(registry, "hazmon_notify_cancelled_total") == {"wecom": 1.0}


def _sample(registry: CollectorRegistry, name: str) -> dict[str, Any]:
    return {
        s.labels["kind"]: s.value for m in registry.collect() for s in m.samples if s.name == name
    }
