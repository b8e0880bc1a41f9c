"""The notifier's SQL, all of it: fold outbox rows into messages, lease targets, settle, watch
the open alerts for reminders and escalations; sync psycopg.

Each function runs in its own transaction on the caller's connection and commits it, so a
decision or an outcome is on record before the next network wait. Every time is the caller's
clock (`now_s`, epoch s), written with `to_timestamp`: the policy's decisions and what they are
measured against come from one clock, which tests move forward.

- **Folding** (`compose`): the subscriptions with a due unassigned row are locked one notifier
  at a time (`FOR NO KEY UPDATE SKIP LOCKED`, which the triggers' inserts do not wait for), so
  that a subscription's messages are made in the order of their rows; their rows are parsed
  (a payload that is not a notification is settled as failed for good, `failed_at` and
  `last_error`, never retried), and the policy's plan stored: a `notify_messages` row per
  message with its rows' `message_id`, a later `next_attempt_at` for rows that wait, or
  `cancelled_at` for reminders and escalations overtaken by an acknowledgement.
- **Sending** (`lease_targets`, `queue`, `reserve`, `settle`, `release`): a target (one URL: one
  robot) with a due head message is leased like the outbox rows were (`leased_until` is the
  lease's token, pushed one lease ahead before each send, which also records the send's start
  in `recent_sends` for the rate limit), its messages sent in order, each outcome settled on the
  message and mirrored on its outbox rows (`attempts`, `last_error`, `delivered_at`,
  `failed_at`), as operators have always read them.
- **Watching** (`watch`): under a transaction-level advisory lock (one notifier at a time), the
  open alerts at orange and red, who was told, and the escalations so far go to the policy;
  reminders and escalations come back as outbox rows (deduplicated per subscription by
  `dedupe_key`) and `alert_escalations` rows.

A message failed for good can be sent again: `UPDATE notify_messages SET failed_at = NULL,
next_attempt_at = now() WHERE id = ...` (its rows follow it when it is delivered).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import psycopg
from psycopg.types.json import Jsonb

from hazmon.vocabulary import Grade, WebhookKind
from notify.escalation import Level, Told, Watched, Watcher, WatchPlan
from notify.notification import (
    Delivery,
    Item,
    NotificationError,
    OutboxKind,
    Pending,
    Subscription,
    parse_item,
)
from notify.policy import Fold, Group, GroupPlan

ERROR_MAX_CHARS = 1000
"""`last_error` is cut to this length."""
WATCH_LOCK = 0x687A6D6E  # "hzmn": pg_try_advisory_xact_lock key of the reminder/escalation pass

_UNASSIGNED = (
    "o.message_id IS NULL AND o.delivered_at IS NULL AND o.failed_at IS NULL "
    "AND o.cancelled_at IS NULL"
)
_SUBSCRIPTION_COLUMNS = "w.id, w.kind, w.url, w.secret, w.name, w.group_wait_s, w.group_interval_s"

_DUE_GROUPS_SQL = f"""
SELECT o.subscription_id, o.group_key FROM outbox o
WHERE {_UNASSIGNED} AND o.next_attempt_at <= to_timestamp(%(now)s)
GROUP BY o.subscription_id, o.group_key
ORDER BY min(o.id)
LIMIT %(limit)s
"""
# NO KEY UPDATE: it does not wait for, nor hold up, the transactions inserting outbox rows
# (their foreign key takes KEY SHARE on the subscription).
_LOCK_SUBSCRIPTIONS_SQL = """
SELECT id FROM webhook_subscriptions WHERE id = ANY(%s) ORDER BY id
FOR NO KEY UPDATE SKIP LOCKED
"""
_LAST_FLUSH_SQL = """
SELECT g.subscription_id, g.group_key, extract(epoch FROM g.last_flush_at)::float8
FROM notify_groups g
JOIN unnest(%(subs)s::int[], %(keys)s::text[]) AS k (sub, key)
  ON g.subscription_id = k.sub AND g.group_key = k.key
"""
_GROUP_ROWS_SQL = f"""
SELECT o.id, o.subscription_id, o.group_key, o.kind, extract(epoch FROM o.created_at)::float8,
       o.payload, a.state
FROM outbox o
JOIN unnest(%(subs)s::int[], %(keys)s::text[]) AS k (sub, key)
  ON o.subscription_id = k.sub AND o.group_key = k.key
LEFT JOIN alerts a ON a.id = o.alert_id
WHERE {_UNASSIGNED}
ORDER BY o.id
"""
_LONE_ROWS_SQL = f"""
SELECT o.id, o.subscription_id, o.group_key, o.kind, extract(epoch FROM o.created_at)::float8,
       o.payload, a.state
FROM outbox o LEFT JOIN alerts a ON a.id = o.alert_id
WHERE {_UNASSIGNED} AND o.group_key IS NULL AND o.subscription_id = ANY(%(subs)s)
  AND o.next_attempt_at <= to_timestamp(%(now)s)
ORDER BY o.id
LIMIT %(limit)s
"""
_SUBSCRIPTIONS_SQL = (
    f"SELECT {_SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions w WHERE w.id = ANY(%s)"
)
_INVALID_SQL = """
UPDATE outbox SET failed_at = to_timestamp(%(now)s), last_error = %(error)s WHERE id = %(id)s
"""
_NEW_MESSAGE_SQL = """
INSERT INTO notify_messages (subscription_id, idempotency_key, group_key, items, created_at,
                             next_attempt_at)
VALUES (%(sub)s, %(key)s, %(group)s, %(items)s, to_timestamp(%(now)s), to_timestamp(%(now)s))
ON CONFLICT (idempotency_key) DO UPDATE SET items = notify_messages.items
RETURNING id
"""
_ASSIGN_SQL = "UPDATE outbox SET message_id = %(message)s WHERE id = ANY(%(rows)s)"
_FLUSHED_SQL = """
INSERT INTO notify_groups (subscription_id, group_key, last_flush_at)
VALUES (%(sub)s, %(key)s, to_timestamp(%(now)s))
ON CONFLICT (subscription_id, group_key) DO UPDATE SET last_flush_at = excluded.last_flush_at
"""
_WAIT_SQL = """
UPDATE outbox SET next_attempt_at = to_timestamp(%(at)s) WHERE id = ANY(%(rows)s)
"""
_CANCEL_SQL = """
UPDATE outbox SET cancelled_at = to_timestamp(%(now)s),
    last_error = 'cancelled: the alert was acknowledged or resolved before this went out'
WHERE id = ANY(%(rows)s)
"""

_DUE_TARGETS_SQL = """
WITH heads AS (
    SELECT DISTINCT ON (w.target) w.target, m.id, m.next_attempt_at
    FROM notify_messages m JOIN webhook_subscriptions w ON w.id = m.subscription_id
    WHERE m.delivered_at IS NULL AND m.failed_at IS NULL
    ORDER BY w.target, m.id)
SELECT target FROM heads WHERE next_attempt_at <= to_timestamp(%(now)s) ORDER BY id
"""
_ENSURE_TARGETS_SQL = """
INSERT INTO notify_targets (target) SELECT unnest(%(targets)s::text[]) ON CONFLICT DO NOTHING
"""
_LEASE_TARGETS_SQL = """
UPDATE notify_targets t SET leased_until = to_timestamp(%(now)s + %(lease_s)s)
WHERE t.target IN (
    SELECT target FROM notify_targets
    WHERE target = ANY(%(targets)s) AND leased_until <= to_timestamp(%(now)s)
      AND not_before <= to_timestamp(%(now)s)
    ORDER BY array_position(%(targets)s, target)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED)
RETURNING t.target, t.leased_until, t.recent_sends
"""
_QUEUE_SQL = f"""
SELECT m.id, m.idempotency_key, m.attempts, extract(epoch FROM m.created_at)::float8,
       extract(epoch FROM m.next_attempt_at)::float8, {_SUBSCRIPTION_COLUMNS}
FROM notify_messages m JOIN webhook_subscriptions w ON w.id = m.subscription_id
WHERE w.target = %(target)s AND m.delivered_at IS NULL AND m.failed_at IS NULL
ORDER BY m.id
LIMIT %(limit)s
"""
_ITEMS_SQL = """
SELECT message_id, id, kind, payload FROM outbox WHERE message_id = ANY(%s) ORDER BY id
"""
_RESERVE_SQL = """
UPDATE notify_targets
SET leased_until = to_timestamp(%(now)s + %(lease_s)s), recent_sends = %(recent)s
WHERE target = %(target)s AND leased_until = %(token)s
RETURNING leased_until
"""
_RELEASE_SQL = """
UPDATE notify_targets SET leased_until = '-infinity', not_before = to_timestamp(%(not_before)s)
WHERE target = %(target)s AND leased_until = %(token)s
"""
# Delivered wins over anything a notifier whose lease had run out wrote meanwhile.
_DELIVERED_SQL = (
    """UPDATE notify_messages SET delivered_at = to_timestamp(%(now)s), failed_at = NULL,
           attempts = attempts + 1, last_error = NULL
       WHERE id = %(id)s AND delivered_at IS NULL""",
    """UPDATE outbox SET delivered_at = to_timestamp(%(now)s), failed_at = NULL,
           attempts = attempts + 1, last_error = NULL
       WHERE message_id = %(id)s AND delivered_at IS NULL""",
)
_RETRY_SQL = (
    """UPDATE notify_messages SET attempts = attempts + 1, last_error = %(error)s,
           next_attempt_at = to_timestamp(%(now)s + %(delay_s)s)
       WHERE id = %(id)s AND delivered_at IS NULL AND failed_at IS NULL""",
    """UPDATE outbox SET attempts = attempts + 1, last_error = %(error)s
       WHERE message_id = %(id)s AND delivered_at IS NULL AND failed_at IS NULL""",
)
_GIVE_UP_SQL = (
    """UPDATE notify_messages SET attempts = attempts + 1, last_error = %(error)s,
           failed_at = to_timestamp(%(now)s)
       WHERE id = %(id)s AND delivered_at IS NULL AND failed_at IS NULL""",
    """UPDATE outbox SET attempts = attempts + 1, last_error = %(error)s,
           failed_at = to_timestamp(%(now)s)
       WHERE message_id = %(id)s AND delivered_at IS NULL AND failed_at IS NULL""",
)

_WATCHED_SQL = """
SELECT a.id, a.grade, d.site_id, s.region_code,
       (SELECT extract(epoch FROM max(t.recorded_at))::float8 FROM alert_transitions t
        WHERE t.alert_id = a.id AND t.grade_to = 4 AND t.grade_from < 4
          AND t.action IN ('open', 'escalate')),
       (SELECT max(t.id) FROM alert_transitions t WHERE t.alert_id = a.id)
FROM alerts a
JOIN series se ON se.id = a.series_id
JOIN devices d ON d.id = se.device_id
JOIN sites s ON s.id = d.site_id
WHERE a.state = 'open' AND a.grade >= 3
ORDER BY a.id
"""
_TOLD_SQL = """
SELECT o.alert_id, o.subscription_id, extract(epoch FROM max(o.delivered_at))::float8,
       bool_or(o.delivered_at IS NULL AND o.failed_at IS NULL AND o.cancelled_at IS NULL),
       count(*) FILTER (WHERE o.kind = 'remind')
FROM outbox o WHERE o.alert_id = ANY(%s)
GROUP BY o.alert_id, o.subscription_id
"""
_WATCHERS_SQL = """
SELECT id, site_id, region_code, repeat_interval_s, repeat_min_grade, escalate_after_s
FROM webhook_subscriptions WHERE enabled ORDER BY id
"""
_ESCALATED_SQL = """
SELECT alert_id, level, extract(epoch FROM escalated_at)::float8
FROM alert_escalations WHERE alert_id = ANY(%s)
"""
_REMIND_SQL = """
INSERT INTO outbox (subscription_id, alert_id, kind, group_key, dedupe_key, payload, created_at,
                    next_attempt_at)
SELECT %(sub)s, p.alert_id, 'remind', 'w:' || p.work_id, %(dedupe)s,
       p.payload || jsonb_build_object('notice', 'remind', 'reminder', %(number)s),
       to_timestamp(%(now)s), to_timestamp(%(now)s)
FROM notify_transition_payloads p WHERE p.transition_id = %(transition)s
ON CONFLICT (subscription_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
"""
_ESCALATE_SQL = """
INSERT INTO alert_escalations (alert_id, level, region_code, after_s, reason, subscriptions,
                               escalated_at)
VALUES (%(alert)s, %(level)s, %(region)s, %(after_s)s, %(reason)s, %(count)s,
        to_timestamp(%(now)s))
ON CONFLICT (alert_id, level) DO NOTHING
RETURNING id
"""
_ESCALATE_OUTBOX_SQL = """
INSERT INTO outbox (subscription_id, alert_id, kind, group_key, dedupe_key, payload, created_at,
                    next_attempt_at)
SELECT sub, p.alert_id, 'escalate', 'w:' || p.work_id, %(dedupe)s,
       p.payload || jsonb_build_object('notice', 'escalate', 'escalation', %(escalation)s::jsonb),
       to_timestamp(%(now)s), to_timestamp(%(now)s)
FROM notify_transition_payloads p, unnest(%(subs)s::int[]) AS sub
WHERE p.transition_id = %(transition)s
ORDER BY sub
ON CONFLICT (subscription_id, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
"""

_QUEUED_SQL = """
SELECT w.kind, count(*), extract(epoch FROM min(o.created_at))::float8
FROM outbox o JOIN webhook_subscriptions w ON w.id = o.subscription_id
WHERE o.delivered_at IS NULL AND o.failed_at IS NULL AND o.cancelled_at IS NULL
GROUP BY w.kind
"""


@dataclass(frozen=True, slots=True)
class Invalid:
    """An outbox row whose payload is not a notification, already settled as failed for good."""

    outbox_id: int
    kind: WebhookKind
    error: NotificationError


@dataclass(frozen=True, slots=True)
class Made:
    """A message made by `compose`: its id and what it folded."""

    message_id: int
    fold: Fold


@dataclass(frozen=True, slots=True)
class Composed:
    """What one `compose` did."""

    made: tuple[Made, ...] = ()
    invalid: tuple[Invalid, ...] = ()
    waiting: int = 0
    cancelled: tuple[tuple[int, WebhookKind], ...] = ()

    @property
    def touched(self) -> int:
        """Rows looked at (0: nothing was due)."""
        return (
            sum(len(m.fold.rows) for m in self.made)
            + len(self.invalid)
            + self.waiting
            + len(self.cancelled)
        )


GroupPlanner = Callable[[Sequence[Group], float], GroupPlan]


def compose(
    conn: psycopg.Connection[Any], *, now_s: float, plan: GroupPlanner, limit: int
) -> Composed:
    """Fold the due groups' rows into messages as `plan` decides (see the module docstring).

    Args:
        now_s: the time, epoch s.
        plan: the grouping policy (`notify.policy.plan_groups`).
        limit: groups (and lone rows) looked at, at most.
    """
    with conn.transaction():
        due = conn.execute(_DUE_GROUPS_SQL, {"now": now_s, "limit": limit}).fetchall()
        if not due:
            return Composed()
        # one notifier folds a subscription's rows at a time: its messages are made, and so
        # numbered and sent, in the order of their rows
        wanted = sorted({int(s) for s, _ in due})
        mine = {int(r[0]) for r in conn.execute(_LOCK_SUBSCRIPTIONS_SQL, (wanted,)).fetchall()}
        keyed = [(int(s), str(k)) for s, k in due if k is not None and int(s) in mine]
        lone_subs = sorted({int(s) for s, k in due if k is None and int(s) in mine})
        last_flush: dict[tuple[int, str], float | None] = {}
        rows: list[tuple[Any, ...]] = []
        if keyed:
            params = {"subs": [s for s, _ in keyed], "keys": [k for _, k in keyed]}
            for sub, key, flushed_s in conn.execute(_LAST_FLUSH_SQL, params).fetchall():
                last_flush[(int(sub), str(key))] = flushed_s
            rows += conn.execute(_GROUP_ROWS_SQL, params).fetchall()
        if lone_subs:
            rows += conn.execute(
                _LONE_ROWS_SQL, {"subs": lone_subs, "now": now_s, "limit": limit}
            ).fetchall()
        if not rows:
            return Composed()
        wanted = sorted({int(r[1]) for r in rows})
        subs = {
            s.id: s
            for s in map(_subscription, conn.execute(_SUBSCRIPTIONS_SQL, (wanted,)).fetchall())
        }
        invalid: list[Invalid] = []
        grouped: dict[tuple[int, str | None], list[Pending]] = {}
        for outbox_id, sub_id, key, kind, created_s, payload, alert_state in sorted(
            rows, key=lambda r: int(r[0])
        ):
            subscription = subs[int(sub_id)]
            try:
                item = parse_item(cast(OutboxKind, kind), payload)
            except NotificationError as exc:
                error = f"invalid payload: {exc}"[:ERROR_MAX_CHARS]
                conn.execute(_INVALID_SQL, {"id": outbox_id, "error": error, "now": now_s})
                invalid.append(Invalid(int(outbox_id), subscription.kind, exc))
                continue
            alert_open = None if kind in ("alert", "hazard") else alert_state == "open"
            pending = Pending(int(outbox_id), cast(OutboxKind, kind), created_s, item, alert_open)
            # a lone row is a group of its own
            group_id = (subscription.id, key if key is not None else f"#{outbox_id}")
            grouped.setdefault(group_id, []).append(pending)
        groups = [
            Group(
                subs[sub_id],
                None if key is None or key.startswith("#") else key,
                tuple(pending),
                last_flush.get((sub_id, key)) if key is not None else None,
            )
            for (sub_id, key), pending in grouped.items()
        ]
        decided = plan(groups, now_s)
        made = [_make(conn, fold, now_s) for fold in decided.fold]
        for waiting, delay_s in decided.wait:
            conn.execute(_WAIT_SQL, {"at": now_s + delay_s, "rows": [r.outbox_id for r in waiting]})
        if decided.cancel:
            conn.execute(_CANCEL_SQL, {"now": now_s, "rows": [r.outbox_id for r in decided.cancel]})
        kinds = {r.outbox_id: g.subscription.kind for g in groups for r in g.rows}
        return Composed(
            tuple(made),
            tuple(invalid),
            sum(len(w) for w, _ in decided.wait),
            tuple((r.outbox_id, kinds[r.outbox_id]) for r in decided.cancel),
        )


def _make(conn: psycopg.Connection[Any], fold: Fold, now_s: float) -> Made:
    row = conn.execute(
        _NEW_MESSAGE_SQL,
        {
            "sub": fold.subscription.id,
            "key": fold.idempotency_key,
            "group": fold.group_key,
            "items": len(fold.rows),
            "now": now_s,
        },
    ).fetchone()
    assert row is not None
    message_id = int(row[0])
    conn.execute(_ASSIGN_SQL, {"message": message_id, "rows": [r.outbox_id for r in fold.rows]})
    if fold.group_key is not None:
        conn.execute(
            _FLUSHED_SQL, {"now": now_s, "sub": fold.subscription.id, "key": fold.group_key}
        )
    return Made(message_id, fold)


@dataclass(frozen=True, slots=True)
class TargetLease:
    """A target this notifier sends to until `token` (its `leased_until`), with the start times
    of its recent sends (epoch s)."""

    target: str
    token: datetime
    recent_s: tuple[float, ...]


def lease_targets(
    conn: psycopg.Connection[Any], *, now_s: float, lease_s: float, limit: int
) -> list[TargetLease]:
    """Lease up to `limit` targets whose head message is due, oldest head first; each is this
    notifier's for `lease_s` (renewed before each send by `reserve`)."""
    with conn.transaction():
        targets = [r[0] for r in conn.execute(_DUE_TARGETS_SQL, {"now": now_s}).fetchall()]
        if not targets:
            return []
        conn.execute(_ENSURE_TARGETS_SQL, {"targets": targets})
        rows = conn.execute(
            _LEASE_TARGETS_SQL,
            {"now": now_s, "lease_s": lease_s, "targets": targets, "limit": limit},
        ).fetchall()
    order = {t: i for i, t in enumerate(targets)}
    return sorted(
        (TargetLease(t, token, tuple(recent)) for t, token, recent in rows),
        key=lambda lease: order[lease.target],
    )


@dataclass(frozen=True, slots=True)
class Queued:
    """A message in a target's queue: what to send, and when it may be tried (epoch s)."""

    delivery: Delivery | None
    """None: its rows no longer parse (cannot happen unless a payload was edited)."""
    message_id: int
    due_s: float
    error: str | None = None


def queue(conn: psycopg.Connection[Any], target: str, *, limit: int) -> list[Queued]:
    """The first `limit` undelivered messages of a target, in order, with their items."""
    with conn.transaction():
        messages = conn.execute(_QUEUE_SQL, {"target": target, "limit": limit}).fetchall()
        items: dict[int, list[tuple[int, Item]]] = {}
        errors: dict[int, str] = {}
        if messages:
            for message_id, outbox_id, kind, payload in conn.execute(
                _ITEMS_SQL, ([int(m[0]) for m in messages],)
            ).fetchall():
                try:
                    item = parse_item(cast(OutboxKind, kind), payload)
                except NotificationError as exc:
                    errors[int(message_id)] = f"invalid payload: {exc}"
                    continue
                items.setdefault(int(message_id), []).append((int(outbox_id), item))
    queued: list[Queued] = []
    for message_id, key, attempts, created_s, due_s, *sub in messages:
        mine = items.get(int(message_id), [])
        error = errors.get(int(message_id)) or (None if mine else "a message without rows")
        delivery = (
            None
            if error
            else Delivery(
                int(message_id),
                key,
                int(attempts),
                created_s,
                _subscription(tuple(sub)),
                tuple(i for _, i in mine),
                tuple(o for o, _ in mine),
            )
        )
        queued.append(Queued(delivery, int(message_id), due_s, error))
    return queued


def reserve(
    conn: psycopg.Connection[Any],
    lease: TargetLease,
    recent_s: Sequence[float],
    *,
    now_s: float,
    lease_s: float,
) -> TargetLease | None:
    """Before a send: renew the target's lease and record the send in its recent sends.

    Returns the renewed lease, or None if the target is no longer this notifier's (its lease ran
    out and another notifier took it): then nothing is sent.
    """
    with conn.transaction():
        row = conn.execute(
            _RESERVE_SQL,
            {
                "target": lease.target,
                "token": lease.token,
                "now": now_s,
                "lease_s": lease_s,
                "recent": list(recent_s),
            },
        ).fetchone()
    if row is None:
        return None
    return TargetLease(lease.target, cast(datetime, row[0]), tuple(recent_s))


def release(conn: psycopg.Connection[Any], lease: TargetLease, *, not_before_s: float) -> None:
    """Give the target back; nobody sends to it before `not_before_s` (epoch s)."""
    with conn.transaction():
        conn.execute(
            _RELEASE_SQL,
            {"target": lease.target, "token": lease.token, "not_before": not_before_s},
        )


def settle(
    conn: psycopg.Connection[Any],
    message_id: int,
    error: str | None,
    retry_in_s: float | None = None,
    *,
    now_s: float,
) -> None:
    """Record one delivery attempt of a message (and on its outbox rows): delivered (`error`
    None), to be retried in `retry_in_s` seconds, or (`retry_in_s` None) failed for good."""
    params: dict[str, object] = {"id": message_id, "now": now_s}
    if error is None:
        statements = _DELIVERED_SQL
    elif retry_in_s is None:
        statements, params["error"] = _GIVE_UP_SQL, error[:ERROR_MAX_CHARS]
    else:
        statements = _RETRY_SQL
        params.update(error=error[:ERROR_MAX_CHARS], delay_s=retry_in_s)
    with conn.transaction():
        for statement in statements:
            conn.execute(statement, params)


@dataclass(frozen=True, slots=True)
class Watch:
    """What one `watch` pass queued: reminders, escalation steps, and by receiver kind."""

    plan: WatchPlan
    reminders: tuple[WebhookKind, ...] = ()
    escalations: tuple[WebhookKind, ...] = ()
    ran: bool = True


WatchPlanner = Callable[[Sequence[Watched], Sequence[Watcher], float], WatchPlan]


def watch(conn: psycopg.Connection[Any], *, now_s: float, plan: WatchPlanner) -> Watch:
    """Queue the reminders and escalations due now (`notify.escalation.plan_watch`).

    One notifier at a time (an advisory transaction lock); a second one returns at once with
    `ran` False. Reminders are deduplicated per (subscription, alert, number), escalations per
    (alert, level), so a pass repeated after a crash queues nothing twice.
    """
    with conn.transaction():
        locked = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (WATCH_LOCK,)).fetchone()
        if not (locked and locked[0]):
            return Watch(WatchPlan(), ran=False)
        alerts = conn.execute(_WATCHED_SQL).fetchall()
        if not alerts:
            return Watch(WatchPlan())
        ids = [int(a[0]) for a in alerts]
        told: dict[int, dict[int, Told]] = {}
        for alert_id, sub_id, delivered_s, pending, reminders in conn.execute(
            _TOLD_SQL, (ids,)
        ).fetchall():
            told.setdefault(int(alert_id), {})[int(sub_id)] = Told(
                delivered_s, bool(pending), int(reminders)
            )
        escalated: dict[int, dict[Level, float]] = {}
        for alert_id, level, at_s in conn.execute(_ESCALATED_SQL, (ids,)).fetchall():
            escalated.setdefault(int(alert_id), {})[_LEVELS[level]] = at_s
        watchers = [
            Watcher(int(i), site, region, repeat_s, int(min_grade), after_s)
            for i, site, region, repeat_s, min_grade, after_s in conn.execute(
                _WATCHERS_SQL
            ).fetchall()
        ]
        last_transition = {int(a[0]): int(a[5]) for a in alerts}
        watched = [
            Watched(
                int(alert_id),
                Grade(int(grade)),
                int(site_id),
                str(region),
                red_since_s,
                told.get(int(alert_id), {}),
                escalated.get(int(alert_id), {}),
            )
            for alert_id, grade, site_id, region, red_since_s, _ in alerts
        ]
        decided = plan(watched, watchers, now_s)
        kinds = dict(conn.execute("SELECT id, kind FROM webhook_subscriptions").fetchall())
        reminded: list[WebhookKind] = []
        for r in decided.reminders:
            cur = conn.execute(
                _REMIND_SQL,
                {
                    "sub": r.subscription_id,
                    "dedupe": f"remind:{r.alert_id}:{r.number}",
                    "number": r.number,
                    "now": now_s,
                    "transition": last_transition[r.alert_id],
                },
            )
            if cur.rowcount:
                reminded.append(kinds[r.subscription_id])
        escalated_to: list[WebhookKind] = []
        for step in decided.steps:
            recorded = conn.execute(
                _ESCALATE_SQL,
                {
                    "alert": step.alert_id,
                    "level": step.level.code,
                    "region": step.region_code,
                    "after_s": step.after_s,
                    "reason": step.reason,
                    "count": len(step.subscription_ids),
                    "now": now_s,
                },
            ).fetchone()
            if recorded is None:
                continue
            detail = {
                "level": step.level.code,
                "after_s": step.after_s,
                "region_code": step.region_code,
            }
            cur = conn.execute(
                _ESCALATE_OUTBOX_SQL,
                {
                    "subs": list(step.subscription_ids),
                    "dedupe": f"escalate:{step.alert_id}:{step.level.code}",
                    "escalation": Jsonb(detail),
                    "now": now_s,
                    "transition": last_transition[step.alert_id],
                },
            )
            escalated_to += [kinds[s] for s in step.subscription_ids][: cur.rowcount]
    return Watch(decided, tuple(reminded), tuple(escalated_to))


_LEVELS = {level.code: level for level in Level if level is not Level.NATIONAL}


@dataclass(frozen=True, slots=True)
class Queue:
    """Undelivered notifications (outbox rows) by receiver kind, and the oldest one's time."""

    by_kind: dict[WebhookKind, int]
    oldest_s: float | None


def queued(conn: psycopg.Connection[Any]) -> Queue:
    """How much is waiting to be delivered."""
    with conn.transaction():
        rows = conn.execute(_QUEUED_SQL).fetchall()
    return Queue(
        {cast(WebhookKind, kind): int(n) for kind, n, _ in rows},
        min((oldest for _, _, oldest in rows if oldest is not None), default=None),
    )


def _subscription(row: Sequence[Any]) -> Subscription:
    sub_id, kind, url, secret, name, wait_s, interval_s = row
    # kind is checked by the table (webhook_subscriptions.kind CHECK)
    return Subscription(
        int(sub_id), cast(WebhookKind, kind), url, secret, name, int(wait_s), int(interval_s)
    )
