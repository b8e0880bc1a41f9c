"""The notifier: alert transitions from the outbox to webhooks (generic, WeCom, DingTalk, Feishu).

`notification` (the typed payload), `formats` (requests per receiver kind) and `policy` (retry
numbers, what to send now) are pure; `outbox` holds the SQL and `service` the loop.
"""

from notify.formats import WebhookRequest, accepted, alert_text, build_request, sign_generic
from notify.notification import (
    Delivery,
    Notification,
    NotificationError,
    NotificationPayload,
    NotifyError,
    Subscription,
)
from notify.policy import Planner, RetryPolicy, SendPlan, plan_sends
from notify.service import Notifier

__all__ = [
    "Delivery",
    "Notification",
    "NotificationError",
    "NotificationPayload",
    "Notifier",
    "NotifyError",
    "Planner",
    "RetryPolicy",
    "SendPlan",
    "Subscription",
    "WebhookRequest",
    "accepted",
    "alert_text",
    "build_request",
    "plan_sends",
    "sign_generic",
]
