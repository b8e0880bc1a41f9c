"""Webhook request bodies and signatures for each kind of receiver; pure, no I/O.

- generic: the alert as JSON, signed with HMAC-SHA256 over `"{timestamp}.{body}"` in
  `X-Hazmon-Signature: sha256=<hex>` with `X-Hazmon-Timestamp` (receivers reject stale stamps).
- wecom (企业微信群机器人): markdown message; the key is part of the URL.
- dingtalk (钉钉自定义机器人): markdown message; with a secret, `timestamp` (ms) and `sign` =
  base64(HMAC-SHA256(secret, "{timestamp}\\n{secret}")) are added to the URL query.
- feishu (飞书自定义机器人): text message; with a secret, `timestamp` (s) and `sign` =
  base64(HMAC-SHA256(key="{timestamp}\\n{secret}", msg="")) are in the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote_plus, urlsplit

WebhookKind = Literal["generic", "wecom", "dingtalk", "feishu"]

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


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What to POST: URL, headers and body bytes."""

    url: str
    headers: dict[str, str]
    body: bytes


def alert_text(payload: dict[str, Any]) -> tuple[str, str]:
    """A title and a bilingual text (Chinese first, English beside) for an alert transition."""
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
    kind: WebhookKind, url: str, secret: str | None, payload: dict[str, Any], now_ms: int
) -> WebhookRequest:
    """The HTTP request delivering `payload` to a receiver of this kind."""
    title, text = alert_text(payload)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if kind == "generic":
        body = _dumps({**payload, "title": title, "text": text})
        if secret:
            stamp = str(now_ms // 1000)
            headers["X-Hazmon-Timestamp"] = stamp
            headers["X-Hazmon-Signature"] = "sha256=" + sign_generic(secret, stamp, body)
        return WebhookRequest(url, headers, body)
    if kind == "wecom":
        return WebhookRequest(
            url, headers, _dumps({"msgtype": "markdown", "markdown": {"content": text}})
        )
    if kind == "dingtalk":
        body = _dumps({"msgtype": "markdown", "markdown": {"title": title, "text": text}})
        if secret:
            stamp = str(now_ms)
            digest = hmac.new(
                secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256
            ).digest()
            separator = "&" if urlsplit(url).query else "?"
            url = f"{url}{separator}timestamp={stamp}&sign={quote_plus(base64.b64encode(digest))}"
        return WebhookRequest(url, headers, body)
    message: dict[str, Any] = {"msg_type": "text", "content": {"text": text}}
    if secret:
        stamp = str(now_ms // 1000)
        digest = hmac.new(f"{stamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
        message = {"timestamp": stamp, "sign": base64.b64encode(digest).decode(), **message}
    return WebhookRequest(url, headers, _dumps(message))


def sign_generic(secret: str, stamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"{stamp}.{body}"`: what a generic receiver recomputes to verify."""
    return hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def accepted(kind: WebhookKind, status: int, body: bytes) -> str | None:
    """None if the receiver accepted the message, else why not.

    WeCom and DingTalk answer HTTP 200 with a non-zero `errcode` on failure, Feishu with a
    non-zero `code`: a 200 alone is not a delivery.
    """
    if not 200 <= status < 300:
        return f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
    if kind == "generic":
        return None
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return f"unreadable answer: {body[:200].decode('utf-8', 'replace')}"
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if code not in (0, "0"):
        return f"receiver refused: {json.dumps(answer, ensure_ascii=False)[:200]}"
    return None


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
