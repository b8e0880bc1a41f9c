"""The outbox's SQL, the only SQL of the notifier: claim due rows, renew, settle; sync psycopg.

Each function runs in its own transaction on the caller's connection and commits it, so a lease
or an outcome is on record before the next network wait.

A row is pending while `delivered_at` and `failed_at` are both NULL. Claiming pushes its
`next_attempt_at` past the lease under `FOR UPDATE SKIP LOCKED`: several notifiers can run side by
side, and one that dies mid-delivery only delays its rows. That `next_attempt_at` is the lease's
token: `renew` before each send succeeds only while the row still carries it, so a row whose
lease ran out and was claimed by another notifier is skipped rather than sent twice at once.

A row is failed for good (`failed_at`, migration 0012) when its payload is not a notification
(`last_error` says why; it is never retried) or when the policy gives up on it. To retry such a
row once the cause is fixed: `UPDATE outbox SET failed_at = NULL, next_attempt_at = now()
WHERE id = ...`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import psycopg

from hazmon.vocabulary import WebhookKind
from notify.notification import Delivery, Notification, NotificationError, Subscription

_CLAIM_SQL = """
UPDATE outbox o SET next_attempt_at = now() + make_interval(secs => %(lease_s)s)
FROM webhook_subscriptions w
WHERE w.id = o.subscription_id AND o.id IN (
    SELECT id FROM outbox
    WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING o.id, o.attempts, o.next_attempt_at, w.id, w.kind, w.url, w.secret, o.payload
"""
_INVALID_SQL = """
UPDATE outbox SET failed_at = now(), last_error = %(error)s WHERE id = %(id)s
"""
_RENEW_SQL = """
UPDATE outbox SET next_attempt_at = now() + make_interval(secs => %(lease_s)s)
WHERE id = %(id)s AND next_attempt_at = %(token)s
  AND delivered_at IS NULL AND failed_at IS NULL
RETURNING next_attempt_at
"""
_HOLD_SQL = """
UPDATE outbox SET next_attempt_at = now() + make_interval(secs => %(delay_s)s)
WHERE id = %(id)s AND next_attempt_at = %(token)s AND delivered_at IS NULL AND failed_at IS NULL
"""
# Delivered wins over anything a notifier whose lease had run out wrote meanwhile.
_DELIVERED_SQL = """
UPDATE outbox SET delivered_at = now(), failed_at = NULL, attempts = attempts + 1,
    last_error = NULL
WHERE id = %(id)s AND delivered_at IS NULL
"""
_RETRY_SQL = """
UPDATE outbox SET attempts = attempts + 1, last_error = %(error)s,
    next_attempt_at = now() + make_interval(secs => %(delay_s)s)
WHERE id = %(id)s AND delivered_at IS NULL AND failed_at IS NULL
"""
_GIVE_UP_SQL = """
UPDATE outbox SET attempts = attempts + 1, last_error = %(error)s, failed_at = now()
WHERE id = %(id)s AND delivered_at IS NULL AND failed_at IS NULL
"""

ERROR_MAX_CHARS = 1000
"""`last_error` is cut to this length."""


@dataclass(frozen=True, slots=True)
class Invalid:
    """A claimed row whose payload is not a notification, already settled as failed for good."""

    outbox_id: int
    kind: WebhookKind
    error: NotificationError


@dataclass(frozen=True, slots=True)
class Claim:
    """The rows of one claim, in outbox order: deliverable ones, and invalid ones settled."""

    due: tuple[Delivery, ...]
    invalid: tuple[Invalid, ...]

    def __len__(self) -> int:
        return len(self.due) + len(self.invalid)


def claim(conn: psycopg.Connection[Any], *, lease_s: float, limit: int) -> Claim:
    """Lease up to `limit` due rows for `lease_s` seconds and parse their payloads.

    A payload that does not parse is settled in the same transaction: `failed_at` set, the
    problem in `last_error`, `attempts` unchanged (nothing was sent).
    """
    due: list[Delivery] = []
    invalid: list[Invalid] = []
    with conn.transaction():
        rows = conn.execute(_CLAIM_SQL, {"lease_s": lease_s, "limit": limit}).fetchall()
        for outbox_id, attempts, token, sub_id, kind, url, secret, payload in sorted(
            rows, key=lambda r: int(r[0])
        ):
            # kind is checked by the table (webhook_subscriptions.kind CHECK)
            subscription = Subscription(sub_id, cast(WebhookKind, kind), url, secret)
            try:
                notification = Notification.from_payload(payload)
            except NotificationError as exc:
                error = f"invalid payload: {exc}"[:ERROR_MAX_CHARS]
                conn.execute(_INVALID_SQL, {"id": outbox_id, "error": error})
                invalid.append(Invalid(outbox_id, subscription.kind, exc))
                continue
            due.append(Delivery(outbox_id, attempts, token, subscription, notification))
    return Claim(tuple(due), tuple(invalid))


def renew(conn: psycopg.Connection[Any], delivery: Delivery, *, lease_s: float) -> Delivery | None:
    """Extend the lease on a claimed row before sending it; None if it is no longer ours (the
    lease ran out and another notifier claimed it, or it was settled meanwhile)."""
    with conn.transaction():
        row = conn.execute(
            _RENEW_SQL,
            {"id": delivery.outbox_id, "token": delivery.leased_until, "lease_s": lease_s},
        ).fetchone()
    if row is None:
        return None
    return Delivery(
        delivery.outbox_id,
        delivery.attempts,
        cast(datetime, row[0]),
        delivery.subscription,
        delivery.notification,
    )


def hold(conn: psycopg.Connection[Any], held: Sequence[tuple[Delivery, float]]) -> None:
    """Put claimed rows back for later, each after its delay in s, without counting an attempt
    (the policy decided not to send them yet)."""
    if not held:
        return
    with conn.transaction():
        for delivery, delay_s in held:
            conn.execute(
                _HOLD_SQL,
                {"id": delivery.outbox_id, "token": delivery.leased_until, "delay_s": delay_s},
            )


def settle(
    conn: psycopg.Connection[Any],
    delivery: Delivery,
    error: str | None,
    retry_in_s: float | None = None,
) -> None:
    """Record one delivery attempt: delivered (`error` None), to be retried in `retry_in_s`
    seconds, or (`retry_in_s` None) failed for good."""
    params: dict[str, object]
    if error is None:
        sql, params = _DELIVERED_SQL, {"id": delivery.outbox_id}
    elif retry_in_s is None:
        sql, params = _GIVE_UP_SQL, {"id": delivery.outbox_id, "error": error[:ERROR_MAX_CHARS]}
    else:
        sql = _RETRY_SQL
        params = {"id": delivery.outbox_id, "error": error[:ERROR_MAX_CHARS], "delay_s": retry_in_s}
    with conn.transaction():
        conn.execute(sql, params)
