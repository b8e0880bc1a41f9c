"""The notifier's loop: fold due outbox rows into messages, watch open alerts for reminders and
escalations, send each target's messages in order within its rate limit, settle the outcomes.

The SQL is in `notify.outbox`, the request formats in `notify.formats`, the decisions in
`notify.policy` (retries, grouping, rate limits) and `notify.escalation` (reminders, the
ladder); this module holds the loop, its HTTP client, its clock and its metrics. Delivery is at
least once: a notifier that dies between a POST and its settle sends that message again after
the target's lease, with the same idempotency key (`Idempotency-Key` for generic receivers, and
in every body), which receivers deduplicate on.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

from hazmon.backoff import Backoff
from hazmon.db import DatabaseError, connect
from hazmon.links import LinkSigner
from hazmon.settings import NotifySettings
from hazmon.vocabulary import WEBHOOK_KINDS, WebhookKind
from notify import outbox
from notify.escalation import plan_watch
from notify.formats import Message, accepted, build_request, throttled
from notify.notification import Delivery
from notify.outbox import GroupPlanner, TargetLease, WatchPlanner
from notify.policy import (
    RATE_LIMITS,
    THROTTLED_RETRY_S,
    RateLimit,
    RetryPolicy,
    plan_groups,
    plan_sends,
)

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 3600.0
"""A receiver's `Retry-After` is honoured up to this, s."""


class NotifyMetrics:
    """The notifier's metrics (`hazmon_notify_*`), labelled by receiver kind only.

    Attributes:
        deliveries: attempts by `result`: `ok`, `failed` (retried or given up), `invalid` (a
            payload that is not a notification, settled without being sent).
        messages: messages made, by `shape` (`single`, `digest`): what was queued to send.
        sent: messages delivered. retried: failed attempts that will be tried again.
        failed: notifications settled as failed for good (given up, or invalid).
        digested: notifications folded into digests.
        reminders, escalated: reminders and escalation messages queued.
        cancelled: reminders and escalations void before they went (acknowledged meanwhile).
        rate_limited: times a target's next message waited for its robot's rate limit.
        queued: notifications not yet delivered (a gauge).
        oldest_age: the age of the oldest of them, s (0 when none).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, text: str, *labels: str) -> Counter:
            return Counter(f"hazmon_notify_{name}", text, ["kind", *labels], registry=registry)

        self.deliveries = counter(
            "deliveries", "webhook delivery attempts by receiver kind and result", "result"
        )
        self.messages = counter("messages", "messages made, single or digest", "shape")
        self.sent = counter("sent", "messages delivered")
        self.retried = counter("retried", "failed delivery attempts scheduled again")
        self.failed = counter("failed", "notifications failed for good (given up or invalid)")
        self.digested = counter("digested", "notifications folded into digest messages")
        self.reminders = counter("reminders", "reminders of unacknowledged alerts queued")
        self.escalated = counter("escalated", "escalation messages of unacknowledged red alerts")
        self.cancelled = counter("cancelled", "reminders and escalations void before sending")
        self.rate_limited = counter(
            "rate_limited", "times a target's next message waited for its rate limit"
        )
        self.queued = Gauge(
            "hazmon_notify_queued",
            "notifications not yet delivered",
            ["kind"],
            registry=registry,
        )
        self.oldest_age = Gauge(
            "hazmon_notify_oldest_undelivered_age_seconds",
            "age of the oldest notification not yet delivered",
            registry=registry,
        )


class Notifier:
    """Deliver due notifications until stopped.

    Args:
        database_url: the database holding the outbox.
        policy: backoff, giving up, lease and batch size.
        links: mints the signed links in messages (None: messages without links).
        time_zone: the zone times are shown in (IANA name).
        clock: the time, epoch s; every decision and every time stored uses it (tests move it).
        group_planner: the grouping decision (`notify.policy.plan_groups`).
        watch_planner: the reminder and escalation decision (`notify.escalation.plan_watch`).
        rate_limits: per receiver kind (`notify.policy.RATE_LIMITS`).
        throttled_retry_s: least wait after a robot said "too many", per kind.
        watch_interval_s: how often open alerts are looked at for reminders and escalations, s
            (of `clock`).
        registry: where the `hazmon_notify_*` metrics are registered.
    """

    def __init__(
        self,
        database_url: str,
        *,
        policy: RetryPolicy | None = None,
        links: LinkSigner | None = None,
        time_zone: str = "Asia/Shanghai",
        clock: Callable[[], float] = time.time,
        group_planner: GroupPlanner = plan_groups,
        watch_planner: WatchPlanner = plan_watch,
        rate_limits: Mapping[WebhookKind, RateLimit] = RATE_LIMITS,
        throttled_retry_s: Mapping[WebhookKind, float] = THROTTLED_RETRY_S,
        watch_interval_s: float = 5.0,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._database_url = database_url
        self.policy = policy or RetryPolicy()
        self.links = links
        self.time_zone = ZoneInfo(time_zone)
        self.clock = clock
        self._group_planner = group_planner
        self._watch_planner = watch_planner
        self._rate_limits = rate_limits
        self._throttled_retry_s = throttled_retry_s
        self._watch_interval_s = watch_interval_s
        self._next_watch_s = float("-inf")
        self._next_stats_s = float("-inf")
        self._rng = random.Random()
        self.metrics = NotifyMetrics(registry)
        self.deliveries = self.metrics.deliveries

    @classmethod
    def from_settings(
        cls, settings: NotifySettings, *, registry: CollectorRegistry = REGISTRY
    ) -> Notifier:
        """The notifier of `hazmon notify`: its timeout, links and time zone from `settings`."""
        links = None
        if settings.link_secret is None:
            log.warning("HAZMON_LINK_SECRET is not set: messages carry no links")
        else:
            links = LinkSigner(settings.link_secret, settings.public_base_url, settings.link_ttl_s)
        return cls(
            settings.database_url,
            policy=RetryPolicy(timeout_s=settings.timeout_s),
            links=links,
            time_zone=settings.time_zone,
            registry=registry,
        )

    def run(self, stop: threading.Event, poll_interval_s: float = 0.5) -> None:
        """Poll the outbox and deliver, reconnecting to the database with backoff."""
        backoff = Backoff()
        with httpx.Client(timeout=self.policy.timeout_s) as http:
            while not stop.is_set():
                try:
                    with connect(self._database_url) as conn:
                        backoff.reset()
                        while not stop.is_set():
                            if self.deliver_due(conn, http) == 0:
                                stop.wait(poll_interval_s)
                except (DatabaseError, psycopg.OperationalError) as exc:
                    delay = backoff.next_delay_s()
                    log.warning(
                        "notifier: database unavailable",
                        extra={"error": str(exc).strip()[:300], "retry_in_s": round(delay, 2)},
                    )
                    stop.wait(delay)

    def deliver_due(self, conn: psycopg.Connection[Any], http: httpx.Client) -> int:
        """One round: fold what is due into messages, queue due reminders and escalations, send
        what the targets may take now. Returns how much was done (0: nothing was due)."""
        done = self.compose(conn)
        if self.clock() >= self._next_watch_s:
            done += self.watch(conn)
            self._next_watch_s = self.clock() + self._watch_interval_s
        done += self.send_due(conn, http)
        if time.monotonic() >= self._next_stats_s:
            self.refresh_gauges(conn)
            self._next_stats_s = time.monotonic() + 1.0
        return done

    def compose(self, conn: psycopg.Connection[Any]) -> int:
        """Fold the due groups into messages; return the rows looked at."""
        composed = outbox.compose(
            conn, now_s=self.clock(), plan=self._group_planner, limit=self.policy.batch
        )
        for bad in composed.invalid:
            self.metrics.deliveries.labels(kind=bad.kind, result="invalid").inc()
            self.metrics.failed.labels(kind=bad.kind).inc()
            log.error(
                "outbox payload is not a notification; settled as failed, never sent",
                extra={"outbox_id": bad.outbox_id, "kind": bad.kind, "error": str(bad.error)},
            )
        for made in composed.made:
            kind = made.fold.subscription.kind
            count = len(made.fold.rows)
            self.metrics.messages.labels(kind=kind, shape="digest" if count > 1 else "single").inc()
            if count > 1:
                self.metrics.digested.labels(kind=kind).inc(count)
        for _, kind in composed.cancelled:
            self.metrics.cancelled.labels(kind=kind).inc()
        return composed.touched

    def watch(self, conn: psycopg.Connection[Any]) -> int:
        """Queue the reminders and escalations due now; return how many rows were queued."""
        done = outbox.watch(conn, now_s=self.clock(), plan=self._watch_planner)
        for kind in done.reminders:
            self.metrics.reminders.labels(kind=kind).inc()
        for kind in done.escalations:
            self.metrics.escalated.labels(kind=kind).inc()
        for step in done.plan.steps:
            log.warning(
                "red alert not acknowledged: escalated",
                extra={
                    "alert_id": step.alert_id,
                    "level": step.level.code,
                    "after_s": step.after_s,
                    "subscriptions": len(step.subscription_ids),
                },
            )
        return len(done.reminders) + len(done.escalations)

    def send_due(self, conn: psycopg.Connection[Any], http: httpx.Client) -> int:
        """Lease the targets with a due message and send their queues; return attempts made."""
        policy = self.policy
        leases = outbox.lease_targets(
            conn, now_s=self.clock(), lease_s=policy.lease_s, limit=policy.batch
        )
        return sum(self._drain(conn, http, lease) for lease in leases)

    def refresh_gauges(self, conn: psycopg.Connection[Any]) -> None:
        """Set `hazmon_notify_queued` and the oldest undelivered notification's age."""
        queue = outbox.queued(conn)
        for kind in WEBHOOK_KINDS:
            self.metrics.queued.labels(kind=kind).set(queue.by_kind.get(kind, 0))
        age_s = 0.0 if queue.oldest_s is None else max(0.0, self.clock() - queue.oldest_s)
        self.metrics.oldest_age.set(age_s)

    def _drain(self, conn: psycopg.Connection[Any], http: httpx.Client, lease: TargetLease) -> int:
        """Send one target's messages in order while its head is due and its limit allows."""
        policy = self.policy
        queued = outbox.queue(conn, lease.target, limit=policy.batch)
        attempts = 0
        not_before_s = self.clock()
        recent = lease.recent_s
        for index, entry in enumerate(queued):
            now_s = self.clock()
            if entry.delivery is None:  # its rows stopped parsing: nothing sensible to send
                outbox.settle(conn, entry.message_id, entry.error or "unreadable", now_s=now_s)
                continue
            delivery = entry.delivery
            kind = delivery.subscription.kind
            limit = self._rate_limits.get(kind, RateLimit())
            plan = plan_sends([q.due_s for q in queued[index:]], recent, limit, now_s)
            if plan.send == 0:
                not_before_s = now_s + (plan.later_s or 0.0)
                if plan.limited:
                    self.metrics.rate_limited.labels(kind=kind).inc()
                break
            recent = limit.recorded(recent, now_s)
            renewed = outbox.reserve(conn, lease, recent, now_s=now_s, lease_s=policy.lease_s)
            if renewed is None:
                log.info("target lease lost, not sending", extra={"message_id": entry.message_id})
                return attempts
            lease = renewed
            error, retry_after_s = self._send(http, delivery)
            attempts += 1
            failures = delivery.attempts + 1
            retry_in_s = None if error is None else policy.retry_in_s(failures, self._rng.random())
            if retry_in_s is not None and retry_after_s is not None:
                retry_in_s = max(retry_in_s, retry_after_s)
            outbox.settle(conn, delivery.message_id, error, retry_in_s, now_s=self.clock())
            self._count(delivery, error, retry_in_s)
            if error is not None and retry_in_s is not None:
                not_before_s = self.clock() + retry_in_s
                break  # the head waits for its retry, and every message behind it
        else:
            not_before_s = self.clock()
        outbox.release(conn, lease, not_before_s=not_before_s)
        return attempts

    def _count(self, delivery: Delivery, error: str | None, retry_in_s: float | None) -> None:
        kind = delivery.subscription.kind
        self.metrics.deliveries.labels(kind=kind, result="ok" if error is None else "failed").inc()
        if error is None:
            self.metrics.sent.labels(kind=kind).inc()
            return
        if retry_in_s is not None:
            self.metrics.retried.labels(kind=kind).inc()
        else:
            self.metrics.failed.labels(kind=kind).inc(len(delivery.outbox_ids))
        log.warning(
            "webhook delivery failed; will retry"
            if retry_in_s is not None
            else "webhook delivery failed; giving up",
            extra={
                "message_id": delivery.message_id,
                "kind": kind,
                "attempts": delivery.attempts + 1,
                "error": error[:300],
            },
        )

    def _send(self, http: httpx.Client, delivery: Delivery) -> tuple[str | None, float | None]:
        """POST one message; return why it failed (None: delivered) and the least wait before
        trying again that the receiver asked for (a rate limit), if any."""
        target = delivery.subscription
        message = Message(
            delivery.key,
            target.id,
            delivery.items,
            delivery.created_s,
            self.links,
            self.time_zone,
        )
        request = build_request(
            target.kind, target.url, target.secret, message, int(self.clock() * 1000)
        )
        try:
            response = http.post(request.url, content=request.body, headers=request.headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # a bad stored URL fails its rows only
            return f"{type(exc).__name__}: {exc}", None
        error = accepted(target.kind, response.status_code, response.content)
        if error is None or not throttled(response.status_code, response.content):
            return error, None
        wait_s = self._throttled_retry_s.get(target.kind, 60.0)
        with contextlib.suppress(KeyError, ValueError):
            wait_s = max(wait_s, min(float(response.headers["Retry-After"]), MAX_RETRY_AFTER_S))
        return f"throttled: {error}", wait_s
