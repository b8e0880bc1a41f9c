"""The notifier: alert transitions and hazard events from the outbox to webhooks (generic,
WeCom, DingTalk, Feishu), grouped, rate-limited, reminded and escalated.

`notification` (the typed payloads), `formats` (requests per receiver kind), `policy` (retries,
grouping, rate limits) and `escalation` (reminders, the ladder) are pure; `outbox` holds the
SQL and `service` the loop.
"""

from notify.escalation import Level, Watched, Watcher, WatchPlan, level_of, plan_watch
from notify.formats import (
    Document,
    Message,
    WebhookRequest,
    accepted,
    alert_text,
    build_request,
    render,
    sign_generic,
    throttled,
)
from notify.notification import (
    Delivery,
    HazardNotification,
    Item,
    Notification,
    NotificationError,
    NotificationPayload,
    NotifyError,
    Pending,
    Subscription,
    parse_item,
)
from notify.policy import (
    RATE_LIMITS,
    Fold,
    Group,
    GroupPlan,
    RateLimit,
    RetryPolicy,
    SendPlan,
    group_due_s,
    plan_groups,
    plan_sends,
)
from notify.service import Notifier, NotifyMetrics

__all__ = [
    "RATE_LIMITS",
    "Delivery",
    "Document",
    "Fold",
    "Group",
    "GroupPlan",
    "HazardNotification",
    "Item",
    "Level",
    "Message",
    "Notification",
    "NotificationError",
    "NotificationPayload",
    "Notifier",
    "NotifyError",
    "NotifyMetrics",
    "Pending",
    "RateLimit",
    "RetryPolicy",
    "SendPlan",
    "Subscription",
    "WatchPlan",
    "Watched",
    "Watcher",
    "WebhookRequest",
    "accepted",
    "alert_text",
    "build_request",
    "group_due_s",
    "level_of",
    "parse_item",
    "plan_groups",
    "plan_sends",
    "plan_watch",
    "render",
    "sign_generic",
    "throttled",
]
