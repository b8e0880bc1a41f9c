"""Golden requests: what each kind of receiver gets for a fixed outbox payload and time, pinned
byte for byte (URL, header order, body, signatures) as main `fa86b7a` sent them, and compared
with the frozen reference `tests.notify.legacy` on every grade, action, number shape and on
payloads written by the 0005 trigger itself."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import psycopg
import pytest

from notify import Notification, build_request
from tests.notify import legacy
from tests.support.alerts import open_alert, transition
from tests.support.inventories import crane_site, load

# An outbox payload as psycopg hands it over: keys in jsonb's order (shorter first, then
# bytewise), numbers as json.loads reads them (jsonb writes 1.0 as 1, so `threshold` is an int).
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
NOW_MS = 1_772_353_800_123
JSON = ("Content-Type", "application/json; charset=utf-8")
TEXT = (
    "【橙色预警（II级） 新报警】光谷一号地块 S1/crane-1\\n[ORANGE (II) opened]\\n"
    "起重力矩 102%\\nmoment 102 %\\n时间 / at: 2026-03-01T08:30:00.25+00:00"
)
TITLE = "【橙色预警（II级） 新报警】光谷一号地块 S1/crane-1"
GENERIC_BODY = (
    '{"rule":"moment_ratio","grade":3,"value":1.02,"action":"open","metric":"moment_ratio",'
    '"alert_id":17,"grade_to":3,"site_code":"S1","site_name":"光谷一号地块","threshold":1,'
    '"grade_from":0,"message_en":"moment 102 %","message_zh":"起重力矩 102%",'
    '"reading_at":"2026-03-01T08:30:00.25+00:00","device_code":"crane-1",'
    f'"region_code":"420106","transition_id":42,"title":"{TITLE}","text":"{TEXT}"}}'
)
DINGTALK_BODY = f'{{"msgtype":"markdown","markdown":{{"title":"{TITLE}","text":"{TEXT}"}}}}'
FEISHU_TEXT = f'"msg_type":"text","content":{{"text":"{TEXT}"}}}}'

GOLDEN = [
    (
        ("generic", "https://hooks.example.cn/hazmon", None),
        ("https://hooks.example.cn/hazmon", [JSON], GENERIC_BODY),
    ),
    (
        ("generic", "https://hooks.example.cn/hazmon", "s3cret"),
        (
            "https://hooks.example.cn/hazmon",
            [
                JSON,
                ("X-Hazmon-Timestamp", "1772353800"),
                (
                    "X-Hazmon-Signature",
                    "sha256=5b9088ce18f74115dcb9c923681e4f7d74f580bcbd09623bade4436270544863",
                ),
            ],
            GENERIC_BODY,
        ),
    ),
    (
        ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc", None),
        (
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",
            [JSON],
            f'{{"msgtype":"markdown","markdown":{{"content":"{TEXT}"}}}}',
        ),
    ),
    (
        ("dingtalk", "https://oapi.dingtalk.com/robot/send", None),
        ("https://oapi.dingtalk.com/robot/send", [JSON], DINGTALK_BODY),
    ),
    (
        ("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=tok", "sec+/="),
        (
            "https://oapi.dingtalk.com/robot/send?access_token=tok&timestamp=1772353800123"
            "&sign=c01vEn9t26D6r0VgnnwKG7xP9qlFlwqFJ4obV5BpXhk%3D",
            [JSON],
            DINGTALK_BODY,
        ),
    ),
    (
        ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/xyz", None),
        ("https://open.feishu.cn/open-apis/bot/v2/hook/xyz", [JSON], "{" + FEISHU_TEXT),
    ),
    (
        ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/xyz", "sec"),
        (
            "https://open.feishu.cn/open-apis/bot/v2/hook/xyz",
            [JSON],
            '{"timestamp":"1772353800","sign":"/+asWfrHL4ohR2DKDsUfKB9ZVkZ46AOY/7vfeu3dGXg=",'
            + FEISHU_TEXT,
        ),
    ),
]

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


def _request(
    kind: str, url: str, secret: str | None, payload: dict[str, Any], now_ms: int
) -> tuple[str, list[tuple[str, str]], bytes]:
    """Today's request through the public surface (the payload parsed, as at claim), as
    (URL, headers in order, body)."""
    notification = Notification.from_payload(payload)
    request = build_request(kind, url, secret, notification, now_ms)  # type: ignore[arg-type]
    return request.url, list(request.headers.items()), request.body


def _legacy(
    kind: str, url: str, secret: str | None, payload: dict[str, Any], now_ms: int
) -> tuple[str, list[tuple[str, str]], bytes]:
    old_url, headers, body = legacy.build_request(kind, url, secret, payload, now_ms)
    return old_url, list(headers.items()), body


@pytest.mark.parametrize(("target", "expected"), GOLDEN, ids=lambda v: "-".join(map(str, v[:3])))
def test_each_kind_gets_the_pinned_request(
    target: tuple[str, str, str | None], expected: tuple[str, list[tuple[str, str]], str]
) -> None:
    kind, url, secret = target
    want_url, want_headers, want_body = expected
    assert _request(kind, url, secret, PAYLOAD, NOW_MS) == (
        want_url,
        want_headers,
        want_body.encode(),
    )
    assert _legacy(kind, url, secret, PAYLOAD, NOW_MS) == _request(
        kind, url, secret, PAYLOAD, NOW_MS
    )


@pytest.mark.parametrize(("grade", "action"), list(itertools.product(GRADE_TEXTS, ACTION_TEXTS)))
def test_every_grade_and_action_label_is_unchanged(grade: int, action: str) -> None:
    payload = {**PAYLOAD, "grade": grade, "grade_to": grade, "action": action}
    grade_zh, grade_en = GRADE_TEXTS[grade]
    action_zh, action_en = ACTION_TEXTS[action]
    title = f"【{grade_zh} {action_zh}】光谷一号地块 S1/crane-1"
    _, _, body = _request("dingtalk", "https://d", None, payload, NOW_MS)
    assert body.decode().startswith(
        f'{{"msgtype":"markdown","markdown":{{"title":"{title}","text":"{title}\\n'
        f"[{grade_en} {action_en}]\\n起重力矩 102%"
    )
    for kind, secret in itertools.product(KINDS, (None, "k")):
        assert _request(kind, "https://h/x?a=1", secret, payload, NOW_MS) == _legacy(
            kind, "https://h/x?a=1", secret, payload, NOW_MS
        )


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
    payload = {**PAYLOAD, **numbers}
    for kind, secret in itertools.product(KINDS, (None, "k")):
        assert _request(kind, "https://h/x", secret, payload, NOW_MS) == _legacy(
            kind, "https://h/x", secret, payload, NOW_MS
        )


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
        payloads = [r[0] for r in conn.execute("SELECT payload FROM outbox ORDER BY id")]
    assert [p["action"] for p in payloads] == ["open", "escalate", "acknowledge", "resolve"]
    assert payloads[2]["threshold"] == "NaN"
    for payload in payloads:
        for kind, secret in itertools.product(KINDS, (None, "k")):
            assert _request(kind, "https://h/x", secret, payload, NOW_MS) == _legacy(
                kind, "https://h/x", secret, payload, NOW_MS
            )
