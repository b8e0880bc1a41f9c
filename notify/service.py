"""The notifier's loop: claim due outbox rows, send each to its webhook, settle the outcome.

The SQL is in `notify.outbox`, the request formats in `notify.formats`, the numbers and the
"what to send now" decision in `notify.policy`; this module holds the loop, its HTTP client and
its metrics. Delivery is at least once (a notifier that dies between the POST and the settle
sends that row again after its lease): receivers get `transition_id` to drop repeats.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

import httpx
import psycopg
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from hazmon.backoff import Backoff
from hazmon.db import DatabaseError, connect
from notify import outbox
from notify.formats import accepted, build_request
from notify.notification import Delivery
from notify.policy import Planner, RetryPolicy, plan_sends

log = logging.getLogger(__name__)


class Notifier:
    """Deliver due outbox rows until stopped.

    Args:
        database_url: the database holding the outbox.
        policy: backoff, giving up, lease and batch size.
        planner: which claimed rows to send now (`notify.policy.plan_sends`: all of them).
        registry: where `hazmon_notify_deliveries_total{kind,result}` is registered; `result` is
            `ok`, `failed` (retried or given up) or `invalid` (a payload that is not a
            notification, settled without being sent).
    """

    def __init__(
        self,
        database_url: str,
        *,
        policy: RetryPolicy | None = None,
        planner: Planner = plan_sends,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._database_url = database_url
        self.policy = policy or RetryPolicy()
        self._planner = planner
        self._rng = random.Random()
        self.deliveries = Counter(
            "hazmon_notify_deliveries",
            "webhook delivery attempts by receiver kind and result",
            ["kind", "result"],
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
        """Claim one batch of due rows and deliver what the planner sends now; return how many
        rows were claimed."""
        policy = self.policy
        claimed = outbox.claim(conn, lease_s=policy.lease_s, limit=policy.batch)
        for bad in claimed.invalid:
            self.deliveries.labels(kind=bad.kind, result="invalid").inc()
            log.error(
                "outbox payload is not a notification; settled as failed, never sent",
                extra={"outbox_id": bad.outbox_id, "kind": bad.kind, "error": str(bad.error)},
            )
        plan = self._planner(claimed.due, time.time())
        outbox.hold(conn, plan.later)
        for delivery in plan.send:
            leased = outbox.renew(conn, delivery, lease_s=policy.lease_s)
            if leased is None:
                log.info("lease lost, not sending", extra={"outbox_id": delivery.outbox_id})
                continue
            error = self._send(http, leased)
            failures = leased.attempts + 1
            retry_in_s = None if error is None else policy.retry_in_s(failures, self._rng.random())
            outbox.settle(conn, leased, error, retry_in_s)
            kind = leased.subscription.kind
            self.deliveries.labels(kind=kind, result="ok" if error is None else "failed").inc()
            if error is not None:
                log.warning(
                    "webhook delivery failed; will retry"
                    if retry_in_s is not None
                    else "webhook delivery failed; giving up",
                    extra={
                        "outbox_id": leased.outbox_id,
                        "kind": kind,
                        "attempts": failures,
                        "error": error[:300],
                    },
                )
        return len(claimed)

    def _send(self, http: httpx.Client, delivery: Delivery) -> str | None:
        target = delivery.subscription
        request = build_request(
            target.kind,
            target.url,
            target.secret,
            delivery.notification,
            time.time_ns() // 1_000_000,
        )
        try:
            response = http.post(request.url, content=request.body, headers=request.headers)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # a bad stored URL fails its rows only
            return f"{type(exc).__name__}: {exc}"
        return accepted(target.kind, response.status_code, response.content)
