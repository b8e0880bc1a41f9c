"""Hazard events notify (migration 0018, the contract with the hazard loop): which actions, to
which subscriptions, in the event's own transaction, and what the receivers read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client import CollectorRegistry

from hazmon.links import LinkSigner
from notify import HazardNotification, Notifier, RetryPolicy, parse_item
from tests.notify.receiver import receiving, subscribe
from tests.notify.test_delivery import SimClock
from tests.support.inventories import crane_site, load

QUICK = {"group_wait_s": 0, "group_interval_s": 1}


def _hazard(conn: psycopg.Connection[Any], level: str, title: str) -> int:
    row = conn.execute(
        """INSERT INTO hazards (site_id, work_id, title, level, state, found_by, found_at,
                                responsible_unit, responsible_person, deadline)
           SELECT s.id, w.id, %s, %s, 'assigned', 'inspector:x#1', now(), '甲建设', '张工',
                  now() + interval '3 days'
           FROM sites s JOIN works w ON w.site_id = s.id WHERE s.code = 'S1'
           RETURNING id""",
        (title, level),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _event(conn: psycopg.Connection[Any], hazard: int, action: str, **data: Any) -> int:
    row = conn.execute(
        "INSERT INTO hazard_events (hazard_id, action, actor, note, data) "
        "VALUES (%s, %s, 'hazmon-loop', '', %s) RETURNING id",
        (hazard, action, json.dumps(data)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_each_action_reaches_the_subscriptions_the_contract_names(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1", region="420106"))
    with psycopg.connect(db_url, autocommit=True) as conn:
        site_id = conn.execute("SELECT id FROM sites WHERE code = 'S1'").fetchone()[0]  # type: ignore[index]
        subs = {
            "site": subscribe(conn, "wecom", "http://x", site_id=site_id, min_grade=1),
            "county": subscribe(conn, "wecom", "http://x", region="420106", min_grade=3),
            "city": subscribe(conn, "wecom", "http://x", region="4201", escalation_only=True),
            "province": subscribe(conn, "wecom", "http://x", region="42", min_grade=4),
            "elsewhere": subscribe(conn, "wecom", "http://x", region="4403", min_grade=1),
            "off": subscribe(conn, "wecom", "http://x", region="42", enabled=False),
        }
        major = _hazard(conn, "major", "基坑支撑轴力超限")
        general = _hazard(conn, "general", "临边防护缺失")
        due = "2026-03-02T18:00:00+08:00"
        events = {
            "register major": _event(conn, major, "register", grade=4),
            "register general": _event(conn, general, "register"),
            "assign general": _event(conn, general, "assign"),
            "remind major": _event(conn, major, "remind", due=due, kind="rectification"),
            "overdue general": _event(conn, general, "overdue", due=due, kind="verification"),
            "escalate major": _event(conn, major, "escalate", to_region="420100", reason="逾期"),
            "escalate nowhere": _event(conn, major, "escalate", reason="no region"),
            "supervise major": _event(conn, major, "supervise"),
            "rectify major": _event(conn, major, "rectify"),
            "raise_level": _event(conn, general, "raise_level"),
        }
        rows = conn.execute(
            "SELECT hazard_event_id, subscription_id, kind, group_key, payload FROM outbox "
            "ORDER BY id"
        ).fetchall()
    names = {v: k for k, v in subs.items()}
    reached: dict[str, list[str]] = {}
    for event_id, sub_id, kind, group_key, _ in rows:
        assert (kind, group_key) == ("hazard", f"h:{site_id}")
        reached.setdefault(next(k for k, v in events.items() if v == event_id), []).append(
            names[sub_id]
        )
    assert reached == {
        "register major": ["site", "county", "province"],  # a major hazard counts as red
        "assign general": ["site", "county"],  # a general one as orange
        "remind major": ["site", "county", "province"],
        "overdue general": ["site", "county"],
        "escalate major": ["city"],  # to_region 420100: the city's own subscriptions only
        "supervise major": ["site", "county", "province"],
    }
    payloads = [parse_item("hazard", r[4]) for r in rows]
    assert all(isinstance(p, HazardNotification) for p in payloads)
    remind = next(p for p, r in zip(payloads, rows, strict=True) if r[0] == events["remind major"])
    assert isinstance(remind, HazardNotification)
    assert (remind.due_kind, remind.title, remind.work_code) == (
        "rectification",
        "基坑支撑轴力超限",
        "TC1",
    )
    escalate = next(
        p for p, r in zip(payloads, rows, strict=True) if r[0] == events["escalate major"]
    )
    assert isinstance(escalate, HazardNotification)
    assert (escalate.to_region, escalate.reason, escalate.immediate) == ("420100", "逾期", True)


def test_a_hazard_event_rolled_back_notifies_no_one(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    with psycopg.connect(db_url, autocommit=True) as conn:
        subscribe(conn, "generic", "http://x", min_grade=1)
        hazard = _hazard(conn, "major", "x")
    with psycopg.connect(db_url) as conn:
        _event(conn, hazard, "register")
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (1,)
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)


def test_hazard_messages_reach_the_robots_with_their_link(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    clock = SimClock()
    sender = Notifier(
        "unused",
        policy=RetryPolicy(timeout_s=2),
        links=LinkSigner("s" * 32, "https://hazmon.example.cn", 3600),
        clock=clock,
        registry=CollectorRegistry(),
    )
    with (
        receiving() as robot,
        psycopg.connect(db_url, autocommit=True) as conn,
        httpx.Client(timeout=2) as http,
    ):
        subscribe(conn, "feishu", robot.url, min_grade=3, **QUICK)
        hazard = _hazard(conn, "major", "塔吊限位器失效")
        _event(conn, hazard, "register")
        for _ in range(3):
            sender.deliver_due(conn, http)
        _event(conn, hazard, "overdue", due="2026-03-02T18:00:00+08:00", kind="rectification")
        _event(conn, hazard, "supervise")
        clock.skew_s = 2  # past the group's interval
        for _ in range(3):
            sender.deliver_due(conn, http)
    posts = [json.loads(r.body)["content"]["post"]["zh_cn"] for r in robot.requests]
    assert [p["title"] for p in posts][:1] == ["【重大事故隐患 登记】测试工地 S1 S1"]
    assert posts[1]["title"].startswith("【监测汇总 2条】")  # the two later ones, one digest
    first = [e for line in posts[0]["content"] for e in line]
    assert {"tag": "text", "text": "隐患 / hazard: 塔吊限位器失效"} in first
    link = next(e for e in first if e["tag"] == "a")
    assert link["href"].startswith(f"https://hazmon.example.cn/links/v1.h{hazard}.")
