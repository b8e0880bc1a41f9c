"""When to deliver: retries, grouping into messages, and each robot's rate limit; pure, no I/O.

- `RetryPolicy`: backoff after a failed delivery, giving up, the lease, the batch.
- `plan_groups`: Alertmanager's grouping, per (subscription, group): the outbox rows of one work
  (alerts) or one site (hazard events) wait `group_wait_s` from the first before the group's
  first message, and `group_interval_s` after each message before the next, so that a storm of
  transitions becomes a few digests; a new red alert, an escalation or a new major hazard goes
  out at once (with whatever of its group is waiting). Alertmanager's `repeat_interval` is the
  reminder of `notify.escalation`. Defaults are Alertmanager's (30 s, 5 min).
- `RateLimit` and `plan_sends`: per target (one robot, one URL), messages leave in order, at
  most the robot's documented rate (`RATE_LIMITS`); the rest wait, never dropped.

`notify.service` carries these decisions out; `notify.outbox` stores them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hazmon.vocabulary import WebhookKind
from notify.notification import Pending, Subscription


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often, how long and how many.

    The delay after n failed deliveries is `first_s * 2**(n-1)`, capped at `max_s`, less up to
    `jitter` of it (the shape of `hazmon.backoff.Backoff`), so receivers that come back are not
    hit by every queued message at once. Tests shrink the constants.

    Attributes:
        first_s: delay after the first failure, s.
        max_s: the cap on any delay, s.
        jitter: the largest fraction taken off a delay at random, 0 to 1.
        timeout_s: the HTTP timeout of each phase (connect, write, read, pool), s.
        batch: rows claimed at a time.
        give_up_after: failed deliveries after which a row is settled as failed for good; None
            (the default) retries forever: an alert must reach its receivers even when a chat
            robot is down for a day, and `last_error` shows why it has not yet.
    """

    first_s: float = 5.0
    max_s: float = 900.0
    jitter: float = 0.2
    timeout_s: float = 10.0
    batch: int = 50
    give_up_after: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.first_s <= self.max_s:
            raise ValueError(f"need 0 < first_s <= max_s, got {self.first_s}, {self.max_s}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within 0..1, got {self.jitter}")
        if self.timeout_s <= 0 or self.batch < 1:
            raise ValueError(
                f"need timeout_s > 0 and batch >= 1, got {self.timeout_s}, {self.batch}"
            )
        if self.give_up_after is not None and self.give_up_after < 1:
            raise ValueError(f"give_up_after must be None or >= 1, got {self.give_up_after}")

    @property
    def lease_s(self) -> float:
        """How long a claimed row stays this notifier's, s: one request's worst case (connect,
        write and read, each up to `timeout_s`). The notifier renews it before each send, so a
        long batch never outlives it; a notifier that dies only delays its rows by this much."""
        return 3 * self.timeout_s

    def delay_s(self, failures: int, draw: float) -> float:
        """Seconds to wait after `failures` (>= 1) failed deliveries.

        Args:
            failures: failed deliveries so far, counting the one just made.
            draw: a uniform random number in [0, 1) choosing the jitter (0: the full delay).
        """
        base_s = min(self.max_s, self.first_s * 2.0 ** min(max(failures, 1) - 1, 30))
        return base_s * (1.0 - self.jitter * draw)

    def retry_in_s(self, failures: int, draw: float) -> float | None:
        """When to try again after `failures` failed deliveries, s; None: give up for good."""
        if self.give_up_after is not None and failures >= self.give_up_after:
            return None
        return self.delay_s(failures, draw)


MAX_ITEMS_PER_MESSAGE = 100
"""A group with more rows due at once becomes several messages of at most this many (the
generic receiver's JSON lists every item; the chat text shows the first few anyway)."""


@dataclass(frozen=True, slots=True)
class Group:
    """The unassigned outbox rows of one (subscription, group key), in outbox order.

    Attributes:
        key: `outbox.group_key` (`w:<work id>`, `h:<site id>`); None: rows that group with
            nothing (each becomes a message of its own at once).
        last_flush_s: when the group's last message was made, epoch s (None: never).
    """

    subscription: Subscription
    key: str | None
    rows: tuple[Pending, ...]
    last_flush_s: float | None = None


@dataclass(frozen=True, slots=True)
class Fold:
    """One message to make: these rows (outbox order) to one subscription, under `key`."""

    subscription: Subscription
    group_key: str | None
    rows: tuple[Pending, ...]

    @property
    def idempotency_key(self) -> str:
        """What receivers deduplicate on, the same however often the message is sent:
        `hzm-s<subscription>-o<outbox id>` for one row, and for a digest
        `hzm-s<subscription>-d<first>-<last>-<count>-<hash>`, the hash over its outbox ids (each
        row is one transition or event for this subscription: the key covers exactly them)."""
        ids = [r.outbox_id for r in self.rows]
        prefix = f"hzm-s{self.subscription.id}"
        if len(ids) == 1:
            return f"{prefix}-o{ids[0]}"
        digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:10]
        return f"{prefix}-d{ids[0]}-{ids[-1]}-{len(ids)}-{digest}"


@dataclass(frozen=True, slots=True)
class GroupPlan:
    """What to do with the rows of the groups looked at.

    Attributes:
        fold: messages to make now.
        wait: rows to look at again after a delay, s (their group is not due yet).
        cancel: reminders and escalations whose alert was acknowledged or resolved meanwhile.
    """

    fold: tuple[Fold, ...] = ()
    wait: tuple[tuple[tuple[Pending, ...], float], ...] = ()
    cancel: tuple[Pending, ...] = ()


def group_due_s(first_s: float, last_flush_s: float | None, sub: Subscription) -> float:
    """When a group whose oldest waiting row was queued at `first_s` is due, epoch s.

    Alertmanager's rule: a group that sent a message less than `group_interval_s` before that row
    came sends the next one `group_interval_s` after it; otherwise the row starts the group
    afresh and waits `group_wait_s`.
    """
    if last_flush_s is not None and first_s < last_flush_s + sub.group_interval_s:
        return last_flush_s + sub.group_interval_s
    return first_s + sub.group_wait_s


def plan_groups(groups: Sequence[Group], now_s: float) -> GroupPlan:
    """Which groups become messages now, which wait and until when, which rows are void.

    Args:
        groups: each group's unassigned rows (at least one of them due).
        now_s: the time, epoch s.
    """
    fold: list[Fold] = []
    wait: list[tuple[tuple[Pending, ...], float]] = []
    cancel: list[Pending] = []
    for group in groups:
        live: list[Pending] = []
        for row in group.rows:
            (cancel if row.alert_open is False else live).append(row)
        if not live:
            continue
        if group.key is None:
            fold.extend(Fold(group.subscription, None, (row,)) for row in live)
            continue
        due_s = group_due_s(min(r.created_s for r in live), group.last_flush_s, group.subscription)
        if any(r.item.immediate for r in live) or now_s >= due_s:
            for start in range(0, len(live), MAX_ITEMS_PER_MESSAGE):
                chunk = tuple(live[start : start + MAX_ITEMS_PER_MESSAGE])
                fold.append(Fold(group.subscription, group.key, chunk))
        else:
            wait.append((tuple(live), due_s - now_s))
    return GroupPlan(tuple(fold), tuple(wait), tuple(cancel))


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `count` messages per `window_s` seconds, for each of `windows`, to one target.

    A sliding window over the start times of the target's recent sends: never more than `count`
    in any `window_s`, which also keeps a robot counting per calendar minute within its limit.
    """

    windows: tuple[tuple[int, float], ...] = ()

    def __post_init__(self) -> None:
        if any(count < 1 or window_s <= 0 for count, window_s in self.windows):
            raise ValueError(f"need count >= 1 and window_s > 0, got {self.windows}")

    @property
    def horizon_s(self) -> float:
        """How far back the sends that matter reach, s."""
        return max((w for _, w in self.windows), default=0.0)

    def wait_s(self, recent_s: Sequence[float], now_s: float) -> float:
        """How long until one more send is allowed, s (0: now).

        Args:
            recent_s: start times of the target's recent sends, epoch s.
            now_s: the time, epoch s.
        """
        wait = 0.0
        for count, window_s in self.windows:
            inside = sorted(t for t in recent_s if t > now_s - window_s)
            if len(inside) >= count:
                # the send that leaves the window first frees the slot
                wait = max(wait, inside[len(inside) - count] + window_s - now_s)
        return wait

    def recorded(self, recent_s: Sequence[float], sent_s: float) -> tuple[float, ...]:
        """`recent_s` with a send at `sent_s`, less what no window needs any more."""
        return tuple(sorted(t for t in (*recent_s, sent_s) if t > sent_s - self.horizon_s))


# 企业微信 群机器人: "每个机器人发送的消息不能超过20条/分钟"
#   (developer.work.weixin.qq.com/document/path/91770, 消息发送频率限制);
# 钉钉 自定义机器人: "每个机器人每分钟最多发送20条消息到群里，如果超过20条，会限流10分钟"
#   (open.dingtalk.com/document/robots/custom-robot-access);
# 飞书 自定义机器人: "单租户单机器人 100 次/分钟，5 次/秒"
#   (open.feishu.cn/document/client-docs/bot-v3/add-custom-bot).
# Each window is a second longer than documented: our clock starts a send before the robot's
# receives it.
RATE_LIMITS: Mapping[WebhookKind, RateLimit] = {
    "generic": RateLimit(),
    "wecom": RateLimit(((20, 61.0),)),
    "dingtalk": RateLimit(((20, 61.0),)),
    "feishu": RateLimit(((100, 61.0), (5, 2.0))),
}
THROTTLED_RETRY_S: Mapping[WebhookKind, float] = {
    "generic": 60.0,
    "wecom": 60.0,
    "dingtalk": 600.0,  # the robot is throttled for 10 minutes (custom-robot-access)
    "feishu": 60.0,
}
"""The least wait before trying again after a robot said "too many" (a backoff applies too)."""


@dataclass(frozen=True, slots=True)
class SendPlan:
    """What one target may send now.

    Attributes:
        send: how many of its queued messages, from the head, may go now (in order).
        later_s: when to look at the target again if that is not all of them, s from now.
        limited: whether its rate limit is what holds the rest back.
    """

    send: int
    later_s: float | None = None
    limited: bool = False


def plan_sends(
    due_s: Sequence[float], recent_s: Sequence[float], limit: RateLimit, now_s: float
) -> SendPlan:
    """How many of one target's queued messages to send now, in order.

    Args:
        due_s: each queued message's next attempt time, epoch s, in queue order (a message
            waiting for its retry holds back every message behind it: order per target).
        recent_s: start times of the target's recent sends, epoch s.
        limit: the target's rate limit.
        now_s: the time, epoch s.
    """
    recent = list(recent_s)
    for index, message_due_s in enumerate(due_s):
        if message_due_s > now_s:
            return SendPlan(index, message_due_s - now_s)
        wait_s = limit.wait_s(recent, now_s)
        if wait_s > 0:
            return SendPlan(index, wait_s, limited=True)
        recent = list(limit.recorded(recent, now_s))
    return SendPlan(len(due_s))
