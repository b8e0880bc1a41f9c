"""Golden requests: what each kind of receiver gets for fixed messages (one alert, a digest of
three, one hazard event) at a fixed time, pinned byte for byte (URL, header order, body,
signatures).

Issue 12 changed them deliberately: a single alert's chat text gained the work, the metric's name,
value and threshold, the time in Beijing time, what to do next, the signed link and the
idempotency key (`编号 / ref`), and is markdown where the robot renders it; Feishu moved from
`text` to `post` (rich text, so the link is clickable); generic receivers get the payload's new
keys (the work, `opened_at`), `link`, `idempotency_key` and the `Idempotency-Key` header. What
stayed is compared with the frozen reference `tests.notify.legacy` (main `fa86b7a`): the title of
every grade and action, and every key and value a generic receiver got before (additions only),
for every number shape and for payloads the triggers write."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hazmon.links import LinkSigner
from notify import HazardNotification, Message, Notification, build_request
from tests.notify import legacy
from tests.support.alerts import open_alert, transition
from tests.support.inventories import crane_site, load

# An outbox payload as the 0005 trigger wrote it (rows queued before migration 0017 look so), as
# psycopg hands it over: keys in jsonb's order (shorter first, then bytewise), numbers as
# json.loads reads them (jsonb writes 1.0 as 1, so `threshold` is an int).
PAYLOAD: dict[str, Any] = {
    "rule": "moment_ratio",
    "grade": 3,
    "value": 1.02,
    "action": "open",
    "metric": "moment_ratio",
    "alert_id": 17,
    "grade_to": 3,
    "site_code": "S1",
    "site_name": "光谷一号地块",
    "threshold": 1,
    "grade_from": 0,
    "message_en": "moment 102 %",
    "message_zh": "起重力矩 102%",
    "reading_at": "2026-03-01T08:30:00.25+00:00",
    "device_code": "crane-1",
    "region_code": "420106",
    "transition_id": 42,
}
# The same as the 0017 trigger writes it: the work and when the alert opened, in jsonb's order.
PAYLOAD_V2: dict[str, Any] = {
    "rule": "moment_ratio",
    "grade": 3,
    "value": 1.02,
    "action": "open",
    "metric": "moment_ratio",
    "work_id": 5,
    "alert_id": 17,
    "grade_to": 3,
    "opened_at": "2026-03-01T08:30:00.25+00:00",
    "site_code": "S1",
    "site_name": "光谷一号地块",
    "threshold": 1,
    "work_code": "TC1",
    "work_name": "1号塔吊",
    "grade_from": 0,
    "message_en": "moment 102 %",
    "message_zh": "起重力矩 102%",
    "reading_at": "2026-03-01T08:30:00.25+00:00",
    "device_code": "crane-1",
    "hazard_kind": "tower_crane",
    "region_code": "420106",
    "transition_id": 42,
}
YELLOW: dict[str, Any] = {
    **PAYLOAD_V2,
    "transition_id": 43,
    "action": "deescalate",
    "grade_from": 3,
    "grade_to": 2,
    "value": 0.89,
    "threshold": 0.9,
    "reading_at": "2026-03-01T08:30:40+00:00",
}
RED: dict[str, Any] = {
    **PAYLOAD_V2,
    "transition_id": 44,
    "alert_id": 18,
    "device_code": "crane-2",
    "action": "escalate",
    "grade_from": 3,
    "grade_to": 4,
    "grade": 4,
    "value": 1.08,
    "reading_at": "2026-03-01T08:31:10+00:00",
}
# A hazard event's payload as the 0018 trigger writes it (a rectification reminder).
HAZARD: dict[str, Any] = {
    "at": "2026-03-01T16:00:00+08:00",
    "data": {"due": "2026-03-02T18:00:00+08:00", "kind": "rectification"},
    "note": "",
    "level": "major",
    "state": "assigned",
    "hazard_title": "监测报警 / monitoring alert: crane-1 moment_ratio",
    "actor": "hazmon-loop",
    "action": "remind",
    "alert_id": 17,
    "deadline": "2026-03-02T18:00:00+08:00",
    "hazard_id": 9,
    "site_code": "S1",
    "site_name": "光谷一号地块",
    "work_code": "TC1",
    "work_name": "1号塔吊",
    "region_code": "420106",
    "hazard_event_id": 77,
    "responsible_unit": "甲建设",
    "listed_supervision": False,
    "responsible_person": "张工",
    "supervising_authority": None,
}
NOW_MS = 1_772_353_800_123
LINKS = LinkSigner("link-secret", "https://hazmon.example.cn", 7 * 24 * 3600)
MESSAGES = {
    "single": Message(
        "hzm-s3-o42", 3, (Notification.from_payload(PAYLOAD_V2),), NOW_MS / 1000, LINKS
    ),
    "digest": Message(
        "hzm-s3-d42-44-3-0000000000",
        3,
        tuple(Notification.from_payload(p) for p in (PAYLOAD_V2, YELLOW, RED)),
        NOW_MS / 1000,
        LINKS,
    ),
    "hazard": Message(
        "hzm-s3-o50", 3, (HazardNotification.from_payload(HAZARD),), NOW_MS / 1000, LINKS
    ),
}

GOLDEN = [
    (
        ("single", "generic", "https://hooks.example.cn/hazmon", "s3cret"),
        (
            "https://hooks.example.cn/hazmon",
            [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Idempotency-Key", "hzm-s3-o42"),
                ("X-Hazmon-Timestamp", "1772353800"),
                (
                    "X-Hazmon-Signature",
                    "sha256=14ee946adca50fceb33ee1a46590174e1b44e4910dcf3b6b332c9ffa3ac22d92",
                ),
            ],
            '{"rule":"moment_ratio","grade":3,"value":1.02,"action":"open","metric":"moment_ratio","work_id":5,"alert_id":17,"grade_to":3,"opened_at":"2026-03-01T08:30:00.25+00:00","site_code":"S1","site_name":"光谷一号地块","threshold":1,"work_code":"TC1","work_name":"1号塔吊","grade_from":0,"message_en":"moment 102 %","message_zh":"起重力矩 102%","reading_at":"2026-03-01T08:30:00.25+00:00","device_code":"crane-1","hazard_kind":"tower_crane","region_code":"420106","transition_id":42,"title":"【橙色预警（II级） 新报警】光谷一号地块 S1/crane-1","text":"【橙色预警（II级） 新报警】光谷一号地块 S1/crane-1\\n[ORANGE (II) opened]\\n起重力矩 102%\\nmoment 102 %\\n工程 / work: 1号塔吊 (TC1) · 塔式起重机 / tower crane\\n监测项 / metric: 起重力矩百分比 / moment as a share of rated (crane-1)\\n测值 / value: 102.0%；阈值 / threshold: 100.0%\\n时间 / at: 2026-03-01 16:30:00 (UTC+08:00)\\n处置 / next: 现场核查并采取控制措施，加密监测，处置后点链接确认 / check on site, take control measures, monitor more often, confirm through the link\\n查看并确认 / open and acknowledge: https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw\\n编号 / ref: hzm-s3-o42","link":"https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw","idempotency_key":"hzm-s3-o42"}',
        ),
    ),
    (
        ("single", "generic", "https://hooks.example.cn/hazmon", None),
        (
            "https://hooks.example.cn/hazmon",
            [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Idempotency-Key", "hzm-s3-o42"),
            ],
            '{"rule":"moment_ratio","grade":3,"value":1.02,"action":"open","metric":"moment_ratio","work_id":5,"alert_id":17,"grade_to":3,"opened_at":"2026-03-01T08:30:00.25+00:00","site_code":"S1","site_name":"光谷一号地块","threshold":1,"work_code":"TC1","work_name":"1号塔吊","grade_from":0,"message_en":"moment 102 %","message_zh":"起重力矩 102%","reading_at":"2026-03-01T08:30:00.25+00:00","device_code":"crane-1","hazard_kind":"tower_crane","region_code":"420106","transition_id":42,"title":"【橙色预警（II级） 新报警】光谷一号地块 S1/crane-1","text":"【橙色预警（II级） 新报警】光谷一号地块 S1/crane-1\\n[ORANGE (II) opened]\\n起重力矩 102%\\nmoment 102 %\\n工程 / work: 1号塔吊 (TC1) · 塔式起重机 / tower crane\\n监测项 / metric: 起重力矩百分比 / moment as a share of rated (crane-1)\\n测值 / value: 102.0%；阈值 / threshold: 100.0%\\n时间 / at: 2026-03-01 16:30:00 (UTC+08:00)\\n处置 / next: 现场核查并采取控制措施，加密监测，处置后点链接确认 / check on site, take control measures, monitor more often, confirm through the link\\n查看并确认 / open and acknowledge: https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw\\n编号 / ref: hzm-s3-o42","link":"https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw","idempotency_key":"hzm-s3-o42"}',
        ),
    ),
    (
        ("single", "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", None),
        (
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
            [("Content-Type", "application/json; charset=utf-8")],
            '{"msgtype":"markdown","markdown":{"content":"**【橙色预警（II级） 新报警】光谷一号地块 S1/crane-1**\\n[ORANGE (II) opened]\\n起重力矩 102%\\nmoment 102 %\\n工程 / work: 1号塔吊 (TC1) · 塔式起重机 / tower crane\\n监测项 / metric: 起重力矩百分比 / moment as a share of rated (crane-1)\\n测值 / value: 102.0%；阈值 / threshold: 100.0%\\n时间 / at: 2026-03-01 16:30:00 (UTC+08:00)\\n处置 / next: 现场核查并采取控制措施，加密监测，处置后点链接确认 / check on site, take control measures, monitor more often, confirm through the link\\n[查看并确认 / open and acknowledge](https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw)\\n<font color=\\"comment\\">编号 / ref: hzm-s3-o42</font>"}}',
        ),
    ),
    (
        ("single", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=tok", "sec+/="),
        (
            "https://oapi.dingtalk.com/robot/send?access_token=tok&timestamp=1772353800123&sign=c01vEn9t26D6r0VgnnwKG7xP9qlFlwqFJ4obV5BpXhk%3D",
            [("Content-Type", "application/json; charset=utf-8")],
            '{"msgtype":"markdown","markdown":{"title":"【橙色预警（II级） 新报警】光谷一号地块 S1/crane-1","text":"#### 【橙色预警（II级） 新报警】光谷一号地块 S1/crane-1\\n\\n[ORANGE (II) opened]\\n\\n起重力矩 102%\\n\\nmoment 102 %\\n\\n工程 / work: 1号塔吊 (TC1) · 塔式起重机 / tower crane\\n\\n监测项 / metric: 起重力矩百分比 / moment as a share of rated (crane-1)\\n\\n测值 / value: 102.0%；阈值 / threshold: 100.0%\\n\\n时间 / at: 2026-03-01 16:30:00 (UTC+08:00)\\n\\n处置 / next: 现场核查并采取控制措施，加密监测，处置后点链接确认 / check on site, take control measures, monitor more often, confirm through the link\\n\\n[查看并确认 / open and acknowledge](https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw)\\n\\n编号 / ref: hzm-s3-o42"}}',
        ),
    ),
    (
        ("single", "feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/xyz", "sec"),
        (
            "https://open.feishu.cn/open-apis/bot/v2/hook/xyz",
            [("Content-Type", "application/json; charset=utf-8")],
            '{"timestamp":"1772353800","sign":"/+asWfrHL4ohR2DKDsUfKB9ZVkZ46AOY/7vfeu3dGXg=","msg_type":"post","content":{"post":{"zh_cn":{"title":"【橙色预警（II级） 新报警】光谷一号地块 S1/crane-1","content":[[{"tag":"text","text":"[ORANGE (II) opened]"}],[{"tag":"text","text":"起重力矩 102%"}],[{"tag":"text","text":"moment 102 %"}],[{"tag":"text","text":"工程 / work: 1号塔吊 (TC1) · 塔式起重机 / tower crane"}],[{"tag":"text","text":"监测项 / metric: 起重力矩百分比 / moment as a share of rated (crane-1)"}],[{"tag":"text","text":"测值 / value: 102.0%；阈值 / threshold: 100.0%"}],[{"tag":"text","text":"时间 / at: 2026-03-01 16:30:00 (UTC+08:00)"}],[{"tag":"text","text":"处置 / next: 现场核查并采取控制措施，加密监测，处置后点链接确认 / check on site, take control measures, monitor more often, confirm through the link"}],[{"tag":"a","text":"查看并确认 / open and acknowledge","href":"https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw"}],[{"tag":"text","text":"编号 / ref: hzm-s3-o42"}]]}}}}',
        ),
    ),
    (
        ("digest", "generic", "https://hooks.example.cn/hazmon", "s3cret"),
        (
            "https://hooks.example.cn/hazmon",
            [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Idempotency-Key", "hzm-s3-d42-44-3-0000000000"),
                ("X-Hazmon-Timestamp", "1772353800"),
                (
                    "X-Hazmon-Signature",
                    "sha256=413f0564699cbbb93470ac6a589360c176f910b1f5cf8c9b75e26bded48fe5bf",
                ),
            ],
            '{"digest":true,"idempotency_key":"hzm-s3-d42-44-3-0000000000","counts":{"orange":2,"red":1},"items":[{"rule":"moment_ratio","grade":3,"value":1.02,"action":"open","metric":"moment_ratio","work_id":5,"alert_id":17,"grade_to":3,"opened_at":"2026-03-01T08:30:00.25+00:00","site_code":"S1","site_name":"光谷一号地块","threshold":1,"work_code":"TC1","work_name":"1号塔吊","grade_from":0,"message_en":"moment 102 %","message_zh":"起重力矩 102%","reading_at":"2026-03-01T08:30:00.25+00:00","device_code":"crane-1","hazard_kind":"tower_crane","region_code":"420106","transition_id":42,"link":"https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw"},{"rule":"moment_ratio","grade":3,"value":0.89,"action":"deescalate","metric":"moment_ratio","work_id":5,"alert_id":17,"grade_to":2,"opened_at":"2026-03-01T08:30:00.25+00:00","site_code":"S1","site_name":"光谷一号地块","threshold":0.9,"work_code":"TC1","work_name":"1号塔吊","grade_from":3,"message_en":"moment 102 %","message_zh":"起重力矩 102%","reading_at":"2026-03-01T08:30:40+00:00","device_code":"crane-1","hazard_kind":"tower_crane","region_code":"420106","transition_id":43,"link":"https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw"},{"rule":"moment_ratio","grade":4,"value":1.08,"action":"escalate","metric":"moment_ratio","work_id":5,"alert_id":18,"grade_to":4,"opened_at":"2026-03-01T08:30:00.25+00:00","site_code":"S1","site_name":"光谷一号地块","threshold":1,"work_code":"TC1","work_name":"1号塔吊","grade_from":3,"message_en":"moment 102 %","message_zh":"起重力矩 102%","reading_at":"2026-03-01T08:31:10+00:00","device_code":"crane-2","hazard_kind":"tower_crane","region_code":"420106","transition_id":44,"link":"https://hazmon.example.cn/links/v1.a18.3.1772958600.n3eiKDYKd7gA8EsJuUj41g"}],"title":"【监测汇总 3条】光谷一号地块 S1 · 1号塔吊 (TC1)","text":"【监测汇总 3条】光谷一号地块 S1 · 1号塔吊 (TC1)\\n[DIGEST: 3 notifications] 2026-03-01 16:30:00–16:31:10 (UTC+08:00)\\n红色 / red 1 · 橙色 / orange 2\\n1. 【红色预警（I级） 升级 / escalated】crane-2 起重力矩百分比 / moment as a share of rated 108.0% / 100.0% · 16:31:10: https://hazmon.example.cn/links/v1.a18.3.1772958600.n3eiKDYKd7gA8EsJuUj41g\\n2. 【橙色预警（II级） 新报警 / opened】crane-1 起重力矩百分比 / moment as a share of rated 102.0% / 100.0% · 16:30:00: https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw\\n3. 【橙色预警（II级） 降级 / de-escalated】crane-1 起重力矩百分比 / moment as a share of rated 89.0% / 90.0% · 16:30:40: https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw\\n处置 / next: 立即停止相关作业、撤离危险区域人员，通知项目负责人和监理核查，处置后点链接确认 / stop the work and clear the danger zone now, call the project manager and the supervisor, confirm through the link once handled\\n编号 / ref: hzm-s3-d42-44-3-0000000000"}',
        ),
    ),
    (
        ("digest", "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", None),
        (
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
            [("Content-Type", "application/json; charset=utf-8")],
            '{"msgtype":"markdown","markdown":{"content":"**【监测汇总 3条】光谷一号地块 S1 · 1号塔吊 (TC1)**\\n[DIGEST: 3 notifications] 2026-03-01 16:30:00–16:31:10 (UTC+08:00)\\n红色 / red 1 · 橙色 / orange 2\\n[1. 【红色预警（I级） 升级 / escalated】crane-2 起重力矩百分比 / moment as a share of rated 108.0% / 100.0% · 16:31:10](https://hazmon.example.cn/links/v1.a18.3.1772958600.n3eiKDYKd7gA8EsJuUj41g)\\n[2. 【橙色预警（II级） 新报警 / opened】crane-1 起重力矩百分比 / moment as a share of rated 102.0% / 100.0% · 16:30:00](https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw)\\n[3. 【橙色预警（II级） 降级 / de-escalated】crane-1 起重力矩百分比 / moment as a share of rated 89.0% / 90.0% · 16:30:40](https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw)\\n处置 / next: 立即停止相关作业、撤离危险区域人员，通知项目负责人和监理核查，处置后点链接确认 / stop the work and clear the danger zone now, call the project manager and the supervisor, confirm through the link once handled\\n<font color=\\"comment\\">编号 / ref: hzm-s3-d42-44-3-0000000000</font>"}}',
        ),
    ),
    (
        ("digest", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=tok", "sec+/="),
        (
            "https://oapi.dingtalk.com/robot/send?access_token=tok&timestamp=1772353800123&sign=c01vEn9t26D6r0VgnnwKG7xP9qlFlwqFJ4obV5BpXhk%3D",
            [("Content-Type", "application/json; charset=utf-8")],
            '{"msgtype":"markdown","markdown":{"title":"【监测汇总 3条】光谷一号地块 S1 · 1号塔吊 (TC1)","text":"#### 【监测汇总 3条】光谷一号地块 S1 · 1号塔吊 (TC1)\\n\\n[DIGEST: 3 notifications] 2026-03-01 16:30:00–16:31:10 (UTC+08:00)\\n\\n红色 / red 1 · 橙色 / orange 2\\n\\n[1. 【红色预警（I级） 升级 / escalated】crane-2 起重力矩百分比 / moment as a share of rated 108.0% / 100.0% · 16:31:10](https://hazmon.example.cn/links/v1.a18.3.1772958600.n3eiKDYKd7gA8EsJuUj41g)\\n\\n[2. 【橙色预警（II级） 新报警 / opened】crane-1 起重力矩百分比 / moment as a share of rated 102.0% / 100.0% · 16:30:00](https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw)\\n\\n[3. 【橙色预警（II级） 降级 / de-escalated】crane-1 起重力矩百分比 / moment as a share of rated 89.0% / 90.0% · 16:30:40](https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw)\\n\\n处置 / next: 立即停止相关作业、撤离危险区域人员，通知项目负责人和监理核查，处置后点链接确认 / stop the work and clear the danger zone now, call the project manager and the supervisor, confirm through the link once handled\\n\\n编号 / ref: hzm-s3-d42-44-3-0000000000"}}',
        ),
    ),
    (
        ("digest", "feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/xyz", "sec"),
        (
            "https://open.feishu.cn/open-apis/bot/v2/hook/xyz",
            [("Content-Type", "application/json; charset=utf-8")],
            '{"timestamp":"1772353800","sign":"/+asWfrHL4ohR2DKDsUfKB9ZVkZ46AOY/7vfeu3dGXg=","msg_type":"post","content":{"post":{"zh_cn":{"title":"【监测汇总 3条】光谷一号地块 S1 · 1号塔吊 (TC1)","content":[[{"tag":"text","text":"[DIGEST: 3 notifications] 2026-03-01 16:30:00–16:31:10 (UTC+08:00)"}],[{"tag":"text","text":"红色 / red 1 · 橙色 / orange 2"}],[{"tag":"a","text":"1. 【红色预警（I级） 升级 / escalated】crane-2 起重力矩百分比 / moment as a share of rated 108.0% / 100.0% · 16:31:10","href":"https://hazmon.example.cn/links/v1.a18.3.1772958600.n3eiKDYKd7gA8EsJuUj41g"}],[{"tag":"a","text":"2. 【橙色预警（II级） 新报警 / opened】crane-1 起重力矩百分比 / moment as a share of rated 102.0% / 100.0% · 16:30:00","href":"https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw"}],[{"tag":"a","text":"3. 【橙色预警（II级） 降级 / de-escalated】crane-1 起重力矩百分比 / moment as a share of rated 89.0% / 90.0% · 16:30:40","href":"https://hazmon.example.cn/links/v1.a17.3.1772958600.PpJAixgV_jNwt6De85p2xw"}],[{"tag":"text","text":"处置 / next: 立即停止相关作业、撤离危险区域人员，通知项目负责人和监理核查，处置后点链接确认 / stop the work and clear the danger zone now, call the project manager and the supervisor, confirm through the link once handled"}],[{"tag":"text","text":"编号 / ref: hzm-s3-d42-44-3-0000000000"}]]}}}}',
        ),
    ),
    (
        ("hazard", "generic", "https://hooks.example.cn/hazmon", "s3cret"),
        (
            "https://hooks.example.cn/hazmon",
            [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Idempotency-Key", "hzm-s3-o50"),
                ("X-Hazmon-Timestamp", "1772353800"),
                (
                    "X-Hazmon-Signature",
                    "sha256=840c65b607101db6586cedd537357768b9839d44e37a2b64ba8c03bd59902c78",
                ),
            ],
            '{"at":"2026-03-01T16:00:00+08:00","data":{"due":"2026-03-02T18:00:00+08:00","kind":"rectification"},"note":"","level":"major","state":"assigned","hazard_title":"监测报警 / monitoring alert: crane-1 moment_ratio","actor":"hazmon-loop","action":"remind","alert_id":17,"deadline":"2026-03-02T18:00:00+08:00","hazard_id":9,"site_code":"S1","site_name":"光谷一号地块","work_code":"TC1","work_name":"1号塔吊","region_code":"420106","hazard_event_id":77,"responsible_unit":"甲建设","listed_supervision":false,"responsible_person":"张工","supervising_authority":null,"title":"【重大事故隐患 到期提醒】光谷一号地块 S1","text":"【重大事故隐患 到期提醒】光谷一号地块 S1\\n[MAJOR HAZARD due soon]\\n隐患 / hazard: 监测报警 / monitoring alert: crane-1 moment_ratio\\n工程 / work: 1号塔吊 (TC1)\\n责任单位和人 / responsible: 甲建设 张工\\n整改期限 / deadline: 2026-03-02 18:00:00 (UTC+08:00)\\n时间 / at: 2026-03-01 16:00:00 (UTC+08:00)\\n处置 / next: 整改将于 2026-03-02 18:00:00 (UTC+08:00) 到期 / rectification due 2026-03-02 18:00:00 (UTC+08:00)\\n查看 / open: https://hazmon.example.cn/links/v1.h9.3.1772958600.uxBzA93ngsNObqOiZ-Ji7w\\n编号 / ref: hzm-s3-o50","link":"https://hazmon.example.cn/links/v1.h9.3.1772958600.uxBzA93ngsNObqOiZ-Ji7w","idempotency_key":"hzm-s3-o50"}',
        ),
    ),
    (
        ("hazard", "wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", None),
        (
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
            [("Content-Type", "application/json; charset=utf-8")],
            '{"msgtype":"markdown","markdown":{"content":"**【重大事故隐患 到期提醒】光谷一号地块 S1**\\n[MAJOR HAZARD due soon]\\n隐患 / hazard: 监测报警 / monitoring alert: crane-1 moment_ratio\\n工程 / work: 1号塔吊 (TC1)\\n责任单位和人 / responsible: 甲建设 张工\\n整改期限 / deadline: 2026-03-02 18:00:00 (UTC+08:00)\\n时间 / at: 2026-03-01 16:00:00 (UTC+08:00)\\n处置 / next: 整改将于 2026-03-02 18:00:00 (UTC+08:00) 到期 / rectification due 2026-03-02 18:00:00 (UTC+08:00)\\n[查看 / open](https://hazmon.example.cn/links/v1.h9.3.1772958600.uxBzA93ngsNObqOiZ-Ji7w)\\n<font color=\\"comment\\">编号 / ref: hzm-s3-o50</font>"}}',
        ),
    ),
    (
        ("hazard", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=tok", "sec+/="),
        (
            "https://oapi.dingtalk.com/robot/send?access_token=tok&timestamp=1772353800123&sign=c01vEn9t26D6r0VgnnwKG7xP9qlFlwqFJ4obV5BpXhk%3D",
            [("Content-Type", "application/json; charset=utf-8")],
            '{"msgtype":"markdown","markdown":{"title":"【重大事故隐患 到期提醒】光谷一号地块 S1","text":"#### 【重大事故隐患 到期提醒】光谷一号地块 S1\\n\\n[MAJOR HAZARD due soon]\\n\\n隐患 / hazard: 监测报警 / monitoring alert: crane-1 moment_ratio\\n\\n工程 / work: 1号塔吊 (TC1)\\n\\n责任单位和人 / responsible: 甲建设 张工\\n\\n整改期限 / deadline: 2026-03-02 18:00:00 (UTC+08:00)\\n\\n时间 / at: 2026-03-01 16:00:00 (UTC+08:00)\\n\\n处置 / next: 整改将于 2026-03-02 18:00:00 (UTC+08:00) 到期 / rectification due 2026-03-02 18:00:00 (UTC+08:00)\\n\\n[查看 / open](https://hazmon.example.cn/links/v1.h9.3.1772958600.uxBzA93ngsNObqOiZ-Ji7w)\\n\\n编号 / ref: hzm-s3-o50"}}',
        ),
    ),
    (
        ("hazard", "feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/xyz", "sec"),
        (
            "https://open.feishu.cn/open-apis/bot/v2/hook/xyz",
            [("Content-Type", "application/json; charset=utf-8")],
            '{"timestamp":"1772353800","sign":"/+asWfrHL4ohR2DKDsUfKB9ZVkZ46AOY/7vfeu3dGXg=","msg_type":"post","content":{"post":{"zh_cn":{"title":"【重大事故隐患 到期提醒】光谷一号地块 S1","content":[[{"tag":"text","text":"[MAJOR HAZARD due soon]"}],[{"tag":"text","text":"隐患 / hazard: 监测报警 / monitoring alert: crane-1 moment_ratio"}],[{"tag":"text","text":"工程 / work: 1号塔吊 (TC1)"}],[{"tag":"text","text":"责任单位和人 / responsible: 甲建设 张工"}],[{"tag":"text","text":"整改期限 / deadline: 2026-03-02 18:00:00 (UTC+08:00)"}],[{"tag":"text","text":"时间 / at: 2026-03-01 16:00:00 (UTC+08:00)"}],[{"tag":"text","text":"处置 / next: 整改将于 2026-03-02 18:00:00 (UTC+08:00) 到期 / rectification due 2026-03-02 18:00:00 (UTC+08:00)"}],[{"tag":"a","text":"查看 / open","href":"https://hazmon.example.cn/links/v1.h9.3.1772958600.uxBzA93ngsNObqOiZ-Ji7w"}],[{"tag":"text","text":"编号 / ref: hzm-s3-o50"}]]}}}}',
        ),
    ),
]


@pytest.mark.parametrize(("target", "expected"), GOLDEN, ids=lambda v: "-".join(map(str, v[:2])))
def test_each_kind_gets_the_pinned_request(
    target: tuple[str, str, str, str | None], expected: tuple[str, list[tuple[str, str]], str]
) -> None:
    message, kind, url, secret = target
    request = build_request(kind, url, secret, MESSAGES[message], NOW_MS)  # type: ignore[arg-type]
    assert (request.url, list(request.headers.items()), request.body.decode()) == expected


# Every grade and action label as receivers have always read them.
GRADE_TEXTS = {
    1: ("蓝色预警（IV级）", "BLUE (IV)"),
    2: ("黄色预警（III级）", "YELLOW (III)"),
    3: ("橙色预警（II级）", "ORANGE (II)"),
    4: ("红色预警（I级）", "RED (I)"),
}
ACTION_TEXTS = {
    "open": ("新报警", "opened"),
    "escalate": ("升级", "escalated"),
    "deescalate": ("降级", "de-escalated"),
    "resolve": ("已恢复", "resolved"),
    "acknowledge": ("已确认", "acknowledged"),
    "suspect": ("传感器疑似故障", "sensor suspect"),
    "late": ("补传数据超限", "late readings over the limit"),
}
KINDS = ("generic", "wecom", "dingtalk", "feishu")


def _single(payload: dict[str, Any]) -> Message:
    return Message("hzm-s3-o42", 3, (Notification.from_payload(payload),), NOW_MS / 1000, LINKS)


def _as_before(payload: dict[str, Any]) -> None:
    """The generic body keeps every key and value it had (the text aside), and every receiver
    the title, as the legacy request for the same payload."""
    _, _, old = legacy.build_request("generic", "https://h/x", None, payload, NOW_MS)
    before = json.loads(old)
    request = build_request("generic", "https://h/x", "k", _single(payload), NOW_MS)
    now = json.loads(request.body)
    assert {k: now[k] for k in before if k != "text"} == {
        k: v for k, v in before.items() if k != "text"
    }
    # in the order they had: the new keys are added among them by jsonb's order, and after them
    assert [k for k in now if k in before and k != "text"] == [k for k in before if k != "text"]
    title = before["title"]
    for kind in KINDS[1:]:
        body = build_request(kind, "https://h/x", "k", _single(payload), NOW_MS).body.decode()  # type: ignore[arg-type]
        assert json.dumps(title, ensure_ascii=False)[1:-1] in body


@pytest.mark.parametrize(("grade", "action"), list(itertools.product(GRADE_TEXTS, ACTION_TEXTS)))
def test_every_grade_and_action_label_is_unchanged(grade: int, action: str) -> None:
    grade_zh, grade_en = GRADE_TEXTS[grade]
    action_zh, action_en = ACTION_TEXTS[action]
    for payload in (PAYLOAD, PAYLOAD_V2):
        changed = {**payload, "grade": grade, "grade_to": grade, "action": action}
        body = build_request("dingtalk", "https://d", None, _single(changed), NOW_MS).body
        title = f"【{grade_zh} {action_zh}】光谷一号地块 S1/crane-1"
        assert body.decode().startswith(
            f'{{"msgtype":"markdown","markdown":{{"title":"{title}","text":"#### {title}\\n\\n'
            f"[{grade_en} {action_en}]\\n\\n起重力矩 102%"
        )
        _as_before(changed)


@pytest.mark.parametrize(
    "numbers",
    [
        {"value": None, "threshold": None},  # an acknowledgement: no reading value
        {"value": 1, "threshold": 0.9},  # jsonb writes 1.0 as 1
        {"value": 1e-07, "threshold": 100000000000000000000},
        {"value": "NaN", "threshold": "Infinity"},  # jsonb's spelling of non-finite floats
        {"value": "-Infinity", "threshold": -0.5},
    ],
    ids=["null", "int", "exponent", "nan", "minus-infinity"],
)
def test_number_shapes_reach_the_generic_receiver_as_before(numbers: dict[str, Any]) -> None:
    for payload in (PAYLOAD, PAYLOAD_V2):
        _as_before({**payload, **numbers})


def test_payloads_written_by_the_trigger_make_the_same_requests(
    db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1", region="420106"))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO webhook_subscriptions (name, kind, url, min_grade) "
            "VALUES ('all', 'generic', 'http://x', 1)"
        )
        alert_id = open_alert(conn, grade=2)
        transition(conn, alert_id, "escalate", 2, 4)
        conn.execute(
            "INSERT INTO alert_transitions (alert_id, action, grade_from, grade_to, reading_at, "
            "value, threshold, message_zh, message_en, actor) VALUES "
            "(%s, 'acknowledge', 4, 4, now(), NULL, 'NaN', '张三 已确认：', "
            "'acknowledged by 张三: ', '张三')",
            (alert_id,),
        )
        transition(conn, alert_id, "resolve", 4, 0)
        payloads = [
            r[0]
            for r in conn.execute("SELECT payload FROM outbox WHERE kind = 'alert' ORDER BY id")
        ]
    assert [p["action"] for p in payloads] == ["open", "escalate", "acknowledge", "resolve"]
    assert payloads[2]["threshold"] == "NaN"
    for payload in payloads:
        assert list(payload) == list(PAYLOAD_V2)  # the keys of 0017, in jsonb's order
        assert payload["work_code"] == "TC1"
        assert payload["hazard_kind"] == "tower_crane"
        assert Notification.from_payload(payload).to_payload() == payload
        _as_before(payload)
