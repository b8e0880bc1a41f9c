"""The webhook requests as main `fa86b7a` built them from the raw outbox payload, frozen here as
the reference the golden tests compare today's `notify.formats` against (a plain reference, as
`tests/support/reference.py` is for the rules). Do not "fix" this file: it is the old wire."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote_plus, urlsplit

GRADE_LABELS = {
    1: ("蓝色预警（IV级）", "BLUE (IV)"),
    2: ("黄色预警（III级）", "YELLOW (III)"),
    3: ("橙色预警（II级）", "ORANGE (II)"),
    4: ("红色预警（I级）", "RED (I)"),
}
ACTION_LABELS = {
    "open": ("新报警", "opened"),
    "escalate": ("升级", "escalated"),
    "deescalate": ("降级", "de-escalated"),
    "resolve": ("已恢复", "resolved"),
    "acknowledge": ("已确认", "acknowledged"),
    "suspect": ("传感器疑似故障", "sensor suspect"),
    "late": ("补传数据超限", "late readings over the limit"),
}


def alert_text(payload: dict[str, Any]) -> tuple[str, str]:
    grade_zh, grade_en = GRADE_LABELS.get(int(payload.get("grade", 0)), ("预警", "ALERT"))
    action = str(payload.get("action", ""))
    action_zh, action_en = ACTION_LABELS.get(action, (action, action))
    where = (
        f"{payload.get('site_name', '')} {payload.get('site_code')}/{payload.get('device_code')}"
    )
    title = f"【{grade_zh} {action_zh}】{where}"
    text = (
        f"{title}\n[{grade_en} {action_en}]\n"
        f"{payload.get('message_zh', '')}\n{payload.get('message_en', '')}\n"
        f"时间 / at: {payload.get('reading_at', '')}"
    )
    return title, text


def build_request(
    kind: str, url: str, secret: str | None, payload: dict[str, Any], now_ms: int
) -> tuple[str, dict[str, str], bytes]:
    title, text = alert_text(payload)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if kind == "generic":
        body = _dumps({**payload, "title": title, "text": text})
        if secret:
            stamp = str(now_ms // 1000)
            headers["X-Hazmon-Timestamp"] = stamp
            headers["X-Hazmon-Signature"] = (
                "sha256="
                + hmac.new(
                    secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
                ).hexdigest()
            )
        return url, headers, body
    if kind == "wecom":
        return url, headers, _dumps({"msgtype": "markdown", "markdown": {"content": text}})
    if kind == "dingtalk":
        body = _dumps({"msgtype": "markdown", "markdown": {"title": title, "text": text}})
        if secret:
            stamp = str(now_ms)
            digest = hmac.new(
                secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256
            ).digest()
            separator = "&" if urlsplit(url).query else "?"
            url = f"{url}{separator}timestamp={stamp}&sign={quote_plus(base64.b64encode(digest))}"
        return url, headers, body
    message: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
    if secret:
        stamp = str(now_ms // 1000)
        digest = hmac.new(f"{stamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
        message = {"timestamp": stamp, "sign": base64.b64encode(digest).decode(), **message}
    return url, headers, _dumps(message)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
