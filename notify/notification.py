"""What the notifier delivers: a typed `Notification` read once from the outbox payload; pure.

The payload is built in SQL by the 0005 trigger (`jsonb_build_object` over the transition, its
alert, series, device and site) and arrives as psycopg's `json.loads` of the jsonb. It is parsed
and checked here, at claim: a payload that does not parse is an `NotificationError` naming the
key and the problem, which the notifier settles as failed for good (see `notify.outbox`) instead
of retrying it forever. Keys the notifier does not know are ignored, so that a migration adding
one to the trigger never makes a running notifier refuse every alert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict, cast, get_args

from hazmon.vocabulary import Grade, TransitionAction, WebhookKind

_ACTIONS: frozenset[str] = frozenset(get_args(TransitionAction))
# jsonb writes the non-finite doubles as these strings (it has no NaN or Infinity numbers).
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class NotifyError(Exception):
    """Root of the notifier's errors."""


class NotificationError(NotifyError):
    """An outbox payload that is not a notification: `key` (None: the payload as a whole) and
    `reason` say what is wrong."""

    def __init__(self, key: str | None, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"payload key {key!r}: {reason}" if key else f"payload: {reason}")


class NotificationPayload(TypedDict):
    """The outbox payload as the 0005 trigger builds it, keys in the order jsonb keeps them
    (shorter first, then bytewise): the order generic receivers have always got them in."""

    rule: str
    grade: int
    value: float | str | None
    action: str
    metric: str
    alert_id: int
    grade_to: int
    site_code: str
    site_name: str
    threshold: float | str | None
    grade_from: int
    message_en: str
    message_zh: str
    reading_at: str
    device_code: str
    region_code: str
    transition_id: int


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert transition to tell the receivers of one subscription about.

    `value` and `threshold` are kept as JSON read them (an `int` where jsonb wrote a whole
    number: it writes 1.0 as 1; NaN and infinities as floats), so that `to_payload` writes them
    back byte for byte. `reading_at` is the text PostgreSQL wrote (ISO 8601 in the writing
    session's time zone), shown verbatim in messages; `reading_time` is it as a datetime.
    """

    alert_id: int
    transition_id: int
    action: TransitionAction
    grade: Grade
    """The higher of `grade_from` and `grade_to`: what subscriptions filter on (`min_grade`)
    and what the message title shows."""
    grade_to: Grade
    grade_from: Grade
    rule: str
    site_code: str
    site_name: str
    region_code: str
    device_code: str
    metric: str
    value: float | None
    threshold: float | None
    reading_at: str
    message_zh: str
    message_en: str

    def __post_init__(self) -> None:
        if self.grade is Grade.NORMAL:
            raise NotificationError("grade", "a notification is at least blue (1), got 0")
        if self.grade != max(self.grade_from, self.grade_to):
            raise NotificationError(
                "grade",
                f"must be the higher of grade_from ({int(self.grade_from)}) and grade_to "
                f"({int(self.grade_to)}), got {int(self.grade)}",
            )

    @property
    def reading_time(self) -> datetime:
        """`reading_at` as an aware datetime."""
        return datetime.fromisoformat(self.reading_at)

    @classmethod
    def from_payload(cls, payload: object) -> Notification:
        """Parse and check an outbox payload.

        Raises:
            NotificationError: a key is missing or has the wrong type or value.
        """
        if not isinstance(payload, Mapping):
            raise NotificationError(None, f"must be a JSON object, got {_json_type(payload)}")
        p = cast(Mapping[str, object], payload)
        action = _text(p, "action")
        if action not in _ACTIONS:
            raise NotificationError("action", f"unknown transition action {action!r}")
        reading_at = _text(p, "reading_at")
        try:
            datetime.fromisoformat(reading_at)
        except ValueError:
            raise NotificationError(
                "reading_at", f"not an ISO 8601 time: {reading_at[:40]!r}"
            ) from None
        return cls(
            alert_id=_id(p, "alert_id"),
            transition_id=_id(p, "transition_id"),
            action=cast(TransitionAction, action),
            grade=_grade(p, "grade"),
            grade_to=_grade(p, "grade_to"),
            grade_from=_grade(p, "grade_from"),
            rule=_text(p, "rule"),
            site_code=_text(p, "site_code"),
            site_name=_text(p, "site_name"),
            region_code=_text(p, "region_code"),
            device_code=_text(p, "device_code"),
            metric=_text(p, "metric"),
            value=_number(p, "value"),
            threshold=_number(p, "threshold"),
            reading_at=reading_at,
            message_zh=_text(p, "message_zh"),
            message_en=_text(p, "message_en"),
        )

    def to_payload(self) -> NotificationPayload:
        """The payload again, as the trigger built it (the generic receiver's JSON)."""
        return NotificationPayload(
            rule=self.rule,
            grade=int(self.grade),
            value=_json_number(self.value),
            action=self.action,
            metric=self.metric,
            alert_id=self.alert_id,
            grade_to=int(self.grade_to),
            site_code=self.site_code,
            site_name=self.site_name,
            threshold=_json_number(self.threshold),
            grade_from=int(self.grade_from),
            message_en=self.message_en,
            message_zh=self.message_zh,
            reading_at=self.reading_at,
            device_code=self.device_code,
            region_code=self.region_code,
            transition_id=self.transition_id,
        )


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where a notification goes: a row of `webhook_subscriptions` (its secret may be None)."""

    id: int
    kind: WebhookKind
    url: str
    secret: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed outbox row: its notification for one subscription, and the lease on it.

    `attempts` counts the deliveries tried before this claim; `leased_until` is the row's
    `next_attempt_at` as the claim (or the last renewal) set it, which `notify.outbox` compares to
    know the row is still this notifier's.
    """

    outbox_id: int
    attempts: int
    leased_until: datetime
    subscription: Subscription
    notification: Notification


def _get(p: Mapping[str, object], key: str) -> object:
    try:
        return p[key]
    except KeyError:
        raise NotificationError(key, "missing") from None


def _text(p: Mapping[str, object], key: str) -> str:
    value = _get(p, key)
    if not isinstance(value, str):
        raise NotificationError(key, f"must be a string, got {_json_type(value)}")
    return value


def _int(p: Mapping[str, object], key: str) -> int:
    value = _get(p, key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise NotificationError(key, f"must be an integer, got {_json_type(value)}")
    return value


def _id(p: Mapping[str, object], key: str) -> int:
    value = _int(p, key)
    if value <= 0:
        raise NotificationError(key, f"must be a positive id, got {value}")
    return value


def _grade(p: Mapping[str, object], key: str) -> Grade:
    value = _int(p, key)
    try:
        return Grade(value)
    except ValueError:
        raise NotificationError(key, f"not a grade (0 to 4): {value}") from None


def _number(p: Mapping[str, object], key: str) -> float | None:
    value = _get(p, key)
    if value is None:
        return None
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise NotificationError(key, f"must be a number or null, got {_json_type(value)}")
    return value


def _json_number(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, Mapping) else type(value).__name__
