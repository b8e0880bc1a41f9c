"""When to deliver: the retry policy and the "what to send now" decision; pure, no I/O.

`RetryPolicy` holds the numbers (backoff, giving up, lease, batch) and turns them into delays.
`plan_sends` decides, for the rows one claim returned, which to send now and which to put back
for later without an attempt. Today it sends them all, in outbox order. It is the seam for what
comes next (issue "One shape for the next features"): Alertmanager-style grouping (group_wait,
group_interval, repeat_interval) and per-robot rate limits (钉钉 allows a robot about 20 messages
a minute) are decisions over the same input and output, taken here, tested here, and carried out
by `notify.service` without a change to the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from notify.notification import Delivery


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


@dataclass(frozen=True, slots=True)
class SendPlan:
    """What to do with the rows of one claim.

    Attributes:
        send: deliver now, in this order.
        later: put back, each with its delay in s, without counting an attempt.
    """

    send: tuple[Delivery, ...]
    later: tuple[tuple[Delivery, float], ...] = ()


Planner = Callable[[Sequence[Delivery], float], SendPlan]
"""`plan(claimed, now_s)`: the rows claimed (outbox order) and the time (s since the epoch) in,
a `SendPlan` out, with every claimed row in exactly one of its parts."""


def plan_sends(claimed: Sequence[Delivery], now_s: float) -> SendPlan:
    """Today's plan: send every claimed row now, in outbox order (no grouping, no rate limit)."""
    return SendPlan(send=tuple(claimed))
