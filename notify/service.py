"""The notifier: deliver outbox rows to webhooks, retrying with backoff until they are accepted.

Rows are claimed with a lease (their `next_attempt_at` pushed past the delivery timeout under
`FOR UPDATE SKIP LOCKED`, then committed) so that several notifiers can run side by side and a
notifier that dies mid-delivery only delays a message, never loses it. Delivery is at least
once: receivers get `transition_id` to drop repeats.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from hazmon.backoff import Backoff
from hazmon.db import DatabaseError, connect
from notify.formats import WebhookKind, accepted, build_request

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay before attempt n+1: `first_s * 2**n`, capped at `max_s`, less up to 20 % jitter."""

    first_s: float = 5.0
    max_s: float = 900.0
    timeout_s: float = 10.0
    batch: int = 50

    def delay_s(self, attempts: int) -> float:
        """Seconds to wait after `attempts` failed deliveries."""
        return Backoff(
            initial_s=self.first_s, max_s=self.max_s, jitter=0.2, attempt=min(attempts - 1, 30)
        ).next_delay_s()


@dataclass(frozen=True, slots=True)
class _Due:
    outbox_id: int
    attempts: int
    kind: WebhookKind
    url: str
    secret: str | None
    payload: dict[str, Any]


class Notifier:
    """Deliver due outbox rows until stopped."""

    def __init__(
        self,
        database_url: str,
        *,
        policy: RetryPolicy | None = None,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._database_url = database_url
        self.policy = policy or RetryPolicy()
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
        """Claim and deliver one batch of due rows; return how many were attempted."""
        due = self._claim(conn)
        for row in due:
            error = self._send(http, row)
            self._settle(conn, row, error)
        return len(due)

    def _claim(self, conn: psycopg.Connection[Any]) -> list[_Due]:
        lease_s = self.policy.timeout_s * 3
        with conn.transaction():
            rows = conn.execute(
                """UPDATE outbox o SET next_attempt_at = now() + make_interval(secs => %s)
                   FROM webhook_subscriptions w
                   WHERE w.id = o.subscription_id AND o.id IN (
                       SELECT id FROM outbox
                       WHERE delivered_at IS NULL AND next_attempt_at <= now()
                       ORDER BY next_attempt_at, id
                       LIMIT %s FOR UPDATE SKIP LOCKED)
                   RETURNING o.id, o.attempts, w.kind, w.url, w.secret, o.payload""",
                (lease_s, self.policy.batch),
            ).fetchall()
        return [_Due(*row) for row in sorted(rows, key=lambda r: r[0])]

    def _send(self, http: httpx.Client, row: _Due) -> str | None:
        request = build_request(
            row.kind, row.url, row.secret, row.payload, time.time_ns() // 1_000_000
        )
        try:
            response = http.post(request.url, content=request.body, headers=request.headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return accepted(row.kind, response.status_code, response.content)

    def _settle(self, conn: psycopg.Connection[Any], row: _Due, error: str | None) -> None:
        with conn.transaction():
            if error is None:
                conn.execute(
                    "UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, "
                    "last_error = NULL WHERE id = %s",
                    (row.outbox_id,),
                )
            else:
                conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = %s, "
                    "next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
                    (error[:1000], self.policy.delay_s(row.attempts + 1), row.outbox_id),
                )
        self.deliveries.labels(kind=row.kind, result="ok" if error is None else "failed").inc()
        if error is not None:
            log.warning(
                "webhook delivery failed; will retry",
                extra={
                    "outbox_id": row.outbox_id,
                    "kind": row.kind,
                    "attempts": row.attempts + 1,
                    "error": error[:300],
                },
            )
