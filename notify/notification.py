"""What the notifier delivers, typed once from the outbox payload; pure.

An outbox row is one thing to tell one subscription: an alert transition (`Notification`, payload
built by the 0005/0017 trigger through the `notify_transition_payloads` view), a reminder or an
escalation of an alert (the same payload with `notice` and its details, added by the notifier),
or a hazard event (`HazardNotification`, built by the 0018 trigger). Payloads arrive as
psycopg's `json.loads` of the jsonb and are parsed and checked here, when the notifier first
takes the row: one that does not parse is a `NotificationError` naming the key and the problem,
which the notifier settles as failed for good (see `notify.outbox`) instead of retrying it
forever. Keys the notifier does not know are ignored, so that a migration adding one to a
trigger never makes a running notifier refuse every alert; keys added since 0005 (the work,
`opened_at`, the notice) are optional, so rows queued before 0017 still parse.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict, cast, get_args

from hazmon.vocabulary import Grade, HazardLevel, TransitionAction, WebhookKind

OutboxKind = Literal["alert", "remind", "escalate", "hazard"]
"""`outbox.kind`: an alert transition, a reminder or an escalation of an alert, a hazard event."""
Notice = Literal["transition", "remind", "escalate"]
"""What an alert notification says: a transition happened, it is still not acknowledged
(a reminder), or it went up the ladder unacknowledged (an escalation)."""
HazardNotice = Literal["register", "assign", "remind", "overdue", "escalate", "supervise"]
"""The `hazard_events` actions that notify (the contract with the hazard loop, migration 0018)."""
DueKind = Literal["rectification", "verification"]
"""What a hazard's `remind`/`overdue` event is due for (its `data.kind`)."""
LadderLevel = Literal["site", "county", "city", "province"]
"""Where an escalation went (`alert_escalations.level`, `notify.escalation.Level`)."""

_ACTIONS: frozenset[str] = frozenset(get_args(TransitionAction))
_NOTICES: frozenset[str] = frozenset(get_args(Notice))
_HAZARD_NOTICES: frozenset[str] = frozenset(get_args(HazardNotice))
_DUE_KINDS: frozenset[str] = frozenset(get_args(DueKind))
_LEVELS: frozenset[str] = frozenset(get_args(LadderLevel))
_HAZARD_LEVELS: frozenset[str] = frozenset(get_args(HazardLevel))
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


class Escalation(TypedDict):
    """The `escalation` key of an escalation's payload."""

    level: str
    after_s: int
    region_code: str


class NotificationPayload(TypedDict):
    """The outbox payload of an alert notification, keys in the order jsonb keeps them (shorter
    first, then bytewise): the order generic receivers have always got them in. The keys marked
    NotRequired came after 0005 (migration 0017, and the notifier's reminders and escalations)."""

    rule: str
    grade: int
    value: float | str | None
    action: str
    metric: str
    notice: NotRequired[str]
    work_id: NotRequired[int]
    alert_id: int
    grade_to: int
    reminder: NotRequired[int]
    opened_at: NotRequired[str]
    site_code: str
    site_name: str
    threshold: float | str | None
    work_code: NotRequired[str]
    work_name: NotRequired[str]
    escalation: NotRequired[Escalation]
    grade_from: int
    message_en: str
    message_zh: str
    reading_at: str
    device_code: str
    hazard_kind: NotRequired[str]
    region_code: str
    transition_id: int


OPTIONAL_KEYS = frozenset(
    {
        "notice",
        "work_id",
        "reminder",
        "opened_at",
        "work_code",
        "work_name",
        "escalation",
        "hazard_kind",
    }
)
"""The payload keys added after 0005 (NotRequired above: with postponed annotations Python 3.11
does not see them as optional)."""


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
    work_id: int | None = None
    work_code: str | None = None
    work_name: str | None = None
    hazard_kind: str | None = None
    opened_at: str | None = None
    """When the alert opened (ISO 8601), for "open for N minutes" in reminders."""
    notice: Notice = "transition"
    reminder: int | None = None
    """A reminder's number (1, 2, ...) for this alert and subscription."""
    escalation: Escalation | None = None

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
        reading_at = _time(p, "reading_at")
        notice = _optional_text(p, "notice") or "transition"
        if notice not in _NOTICES:
            raise NotificationError("notice", f"unknown notice {notice!r}")
        escalation = _escalation(p) if "escalation" in p else None
        if (notice == "escalate") != (escalation is not None):
            raise NotificationError(
                "escalation", "an escalation notice and its details go together"
            )
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
            work_id=_optional_id(p, "work_id"),
            work_code=_optional_text(p, "work_code"),
            work_name=_optional_text(p, "work_name"),
            hazard_kind=_optional_text(p, "hazard_kind"),
            opened_at=_optional_time(p, "opened_at"),
            notice=cast(Notice, notice),
            reminder=_optional_id(p, "reminder"),
            escalation=escalation,
        )

    @property
    def immediate(self) -> bool:
        """A new red alert (opened red, or raised to red) or an escalation: sent at once,
        whatever the grouping times."""
        if self.notice == "escalate":
            return True
        return (
            self.notice == "transition"
            and self.action in ("open", "escalate")
            and self.grade_to is Grade.RED
            and self.grade_from < Grade.RED
        )

    @property
    def severity(self) -> int:
        """What a digest sorts by, worst first: the grade."""
        return int(self.grade)

    def to_payload(self) -> NotificationPayload:
        """The payload again, as it was built (the generic receiver's JSON): keys added since
        0005 only where the payload had them."""
        payload: dict[str, Any] = {
            "rule": self.rule,
            "grade": int(self.grade),
            "value": _json_number(self.value),
            "action": self.action,
            "metric": self.metric,
            "notice": None if self.notice == "transition" else self.notice,
            "work_id": self.work_id,
            "alert_id": self.alert_id,
            "grade_to": int(self.grade_to),
            "reminder": self.reminder,
            "opened_at": self.opened_at,
            "site_code": self.site_code,
            "site_name": self.site_name,
            "threshold": _json_number(self.threshold),
            "work_code": self.work_code,
            "work_name": self.work_name,
            "escalation": self.escalation,
            "grade_from": int(self.grade_from),
            "message_en": self.message_en,
            "message_zh": self.message_zh,
            "reading_at": self.reading_at,
            "device_code": self.device_code,
            "hazard_kind": self.hazard_kind,
            "region_code": self.region_code,
            "transition_id": self.transition_id,
        }
        return cast(
            NotificationPayload,
            {k: v for k, v in payload.items() if v is not None or k not in OPTIONAL_KEYS},
        )


@dataclass(frozen=True, slots=True)
class HazardNotification:
    """One hazard event (`hazard_events` row) to tell the receivers of one subscription about.

    Times (`at`, `deadline`, `due`) are kept as the ISO 8601 text jsonb wrote. `payload` is the
    payload as it came, what a generic receiver gets.
    """

    hazard_event_id: int
    hazard_id: int
    action: HazardNotice
    actor: str
    note: str
    at: str
    title: str
    level: HazardLevel
    state: str
    site_code: str
    site_name: str
    region_code: str
    payload: Mapping[str, object]
    deadline: str | None = None
    responsible_unit: str | None = None
    responsible_person: str | None = None
    supervising_authority: str | None = None
    alert_id: int | None = None
    work_code: str | None = None
    work_name: str | None = None
    due: str | None = None
    due_kind: DueKind | None = None
    to_region: str | None = None
    reason: str | None = None

    @property
    def immediate(self) -> bool:
        """A major hazard registered, or a hazard escalated: sent at once."""
        return self.action == "escalate" or (self.action == "register" and self.level == "major")

    @property
    def severity(self) -> int:
        """Sorted as alerts become hazards: a major hazard as red (4), a general one as orange."""
        return int(Grade.RED) if self.level == "major" else int(Grade.ORANGE)

    @classmethod
    def from_payload(cls, payload: object) -> HazardNotification:
        """Parse and check a hazard event's outbox payload (migration 0018).

        Raises:
            NotificationError: a key is missing or has the wrong type or value.
        """
        if not isinstance(payload, Mapping):
            raise NotificationError(None, f"must be a JSON object, got {_json_type(payload)}")
        p = cast(Mapping[str, object], payload)
        action = _text(p, "action")
        if action not in _HAZARD_NOTICES:
            raise NotificationError("action", f"not a hazard action that notifies: {action!r}")
        level = _text(p, "level")
        if level not in _HAZARD_LEVELS:
            raise NotificationError("level", f"unknown hazard level {level!r}")
        data = _get(p, "data")
        if not isinstance(data, Mapping):
            raise NotificationError("data", f"must be a JSON object, got {_json_type(data)}")
        d = cast(Mapping[str, object], data)
        due_kind = _optional_text(d, "kind")
        if due_kind is not None and due_kind not in _DUE_KINDS:
            raise NotificationError("data", f"unknown kind {due_kind!r} of a due date")
        return cls(
            hazard_event_id=_id(p, "hazard_event_id"),
            hazard_id=_id(p, "hazard_id"),
            action=cast(HazardNotice, action),
            actor=_text(p, "actor"),
            note=_text(p, "note"),
            at=_time(p, "at"),
            title=_text(p, "hazard_title"),
            level=cast(HazardLevel, level),
            state=_text(p, "state"),
            site_code=_text(p, "site_code"),
            site_name=_text(p, "site_name"),
            region_code=_text(p, "region_code"),
            payload=p,
            deadline=_optional_time(p, "deadline"),
            responsible_unit=_optional_text(p, "responsible_unit"),
            responsible_person=_optional_text(p, "responsible_person"),
            supervising_authority=_optional_text(p, "supervising_authority"),
            alert_id=_optional_id(p, "alert_id"),
            work_code=_optional_text(p, "work_code"),
            work_name=_optional_text(p, "work_name"),
            due=_optional_time(d, "due"),
            due_kind=cast(DueKind | None, due_kind),
            to_region=_optional_text(d, "to_region"),
            reason=_optional_text(d, "reason"),
        )


Item = Notification | HazardNotification
"""One thing a message tells: an alert notification or a hazard event."""


def parse_item(kind: OutboxKind, payload: object) -> Item:
    """The item of an outbox row of `kind`.

    Raises:
        NotificationError: the payload is not one.
    """
    if kind == "hazard":
        return HazardNotification.from_payload(payload)
    item = Notification.from_payload(payload)
    expected = {"alert": "transition", "remind": "remind", "escalate": "escalate"}[kind]
    if item.notice != expected:
        raise NotificationError("notice", f"a {kind} row holds a {item.notice!r} notice")
    return item


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where a notification goes: a row of `webhook_subscriptions` (its secret may be None),
    with the numbers the notifier's policy reads (defaults: the columns', migration 0017).

    Attributes:
        group_wait_s: how long a new group waits for more before its first message, s.
        group_interval_s: how long after a group's message the next one waits, s.
    """

    id: int
    kind: WebhookKind
    url: str
    secret: str | None
    name: str = ""
    group_wait_s: int = 30
    group_interval_s: int = 300


@dataclass(frozen=True, slots=True)
class Pending:
    """An outbox row not yet folded into a message: its item for one subscription.

    Attributes:
        outbox_id: `outbox.id`.
        kind: `outbox.kind`.
        created_s: when it was queued, epoch s (`outbox.created_at`).
        item: what it tells.
        alert_open: for a reminder or an escalation, whether its alert is still open (not
            acknowledged, not resolved): if not, the row is cancelled rather than sent.
    """

    outbox_id: int
    kind: OutboxKind
    created_s: float
    item: Item
    alert_open: bool | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message to send: its idempotency key, its subscription, and its rows, in outbox order.

    `attempts` counts the deliveries tried before; `created_s` is when the message was made,
    epoch s (the time it shows and the base of its links' expiry).
    """

    message_id: int
    key: str
    attempts: int
    created_s: float
    subscription: Subscription
    items: tuple[Item, ...]
    outbox_ids: tuple[int, ...]

    @property
    def notification(self) -> Item:
        """The first item (a single message's only one)."""
        return self.items[0]


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


def _optional_text(p: Mapping[str, object], key: str) -> str | None:
    return None if p.get(key) is None else _text(p, key)


def _time(p: Mapping[str, object], key: str) -> str:
    value = _text(p, key)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise NotificationError(key, f"not an ISO 8601 time: {value[:40]!r}") from None
    return value


def _optional_time(p: Mapping[str, object], key: str) -> str | None:
    return None if p.get(key) is None else _time(p, key)


def _optional_id(p: Mapping[str, object], key: str) -> int | None:
    return None if p.get(key) is None else _id(p, key)


def _escalation(p: Mapping[str, object]) -> Escalation:
    value = _get(p, "escalation")
    if not isinstance(value, Mapping):
        raise NotificationError("escalation", f"must be a JSON object, got {_json_type(value)}")
    e = cast(Mapping[str, object], value)
    level = e.get("level")
    if level not in _LEVELS:
        raise NotificationError("escalation", f"unknown level {level!r}")
    after_s = e.get("after_s")
    region = e.get("region_code")
    if not isinstance(after_s, int) or isinstance(after_s, bool) or not isinstance(region, str):
        raise NotificationError("escalation", "needs an integer after_s and a region_code")
    return Escalation(level=str(level), after_s=after_s, region_code=region)


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
