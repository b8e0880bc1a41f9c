"""The notifier: alert transitions from the outbox to webhooks (generic, WeCom, DingTalk, Feishu)."""

from notify.formats import (
    WebhookKind,
    WebhookRequest,
    accepted,
    alert_text,
    build_request,
    sign_generic,
)
from notify.service import Notifier, RetryPolicy

__all__ = [
    "Notifier",
    "RetryPolicy",
    "WebhookKind",
    "WebhookRequest",
    "accepted",
    "alert_text",
    "build_request",
    "sign_generic",
]
