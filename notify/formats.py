"""Webhook request bodies and signatures for each kind of receiver, from a `Notification`; pure.

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
from typing import Any
from urllib.parse import quote_plus, urlsplit

from hazmon.vocabulary import ACTION_LABELS, WebhookKind
from notify.notification import Notification


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What to POST: URL, headers and body bytes."""

    url: str
    headers: dict[str, str]
    body: bytes


def alert_text(notification: Notification) -> tuple[str, str]:
    """A title and a bilingual text (Chinese first, English beside) for an alert transition."""
    n = notification
    action_zh, action_en = ACTION_LABELS[n.action]
    title = f"【{n.grade.warning_zh} {action_zh}】{n.site_name} {n.site_code}/{n.device_code}"
    text = (
        f"{title}\n[{n.grade.label_en.upper()} {action_en}]\n"
        f"{n.message_zh}\n{n.message_en}\n"
        f"时间 / at: {n.reading_at}"
    )
    return title, text


def build_request(
    kind: WebhookKind, url: str, secret: str | None, notification: Notification, now_ms: int
) -> WebhookRequest:
    """The HTTP request delivering `notification` to a receiver of this kind.

    Args:
        kind: the receiver's kind.
        url: the subscription's URL (DingTalk's signature is appended to its query).
        secret: the signing secret, or None to send unsigned.
        notification: what to say.
        now_ms: the time of sending, in ms since the epoch (the signatures' timestamp).
    """
    title, text = alert_text(notification)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if kind == "generic":
        body = _dumps({**notification.to_payload(), "title": title, "text": text})
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
        answer = None
    if not isinstance(answer, dict):  # a JSON array or scalar is no robot's answer either
        return f"unreadable answer: {body[:200].decode('utf-8', 'replace')}"
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if code not in (0, "0"):
        return f"receiver refused: {json.dumps(answer, ensure_ascii=False)[:200]}"
    return None


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
