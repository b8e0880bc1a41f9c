"""`Notification.from_payload`: good payloads parse and write back as they came, bad ones are a
`NotificationError` naming the key; pure."""

from __future__ import annotations

import math
from typing import Any, get_type_hints

import pytest

from hazmon.vocabulary import Grade
from notify import (
    HazardNotification,
    Notification,
    NotificationError,
    NotificationPayload,
    parse_item,
)
from notify.notification import OPTIONAL_KEYS
from tests.notify.test_golden import HAZARD, PAYLOAD, PAYLOAD_V2


def test_a_payload_parses_into_typed_fields_and_writes_back_unchanged() -> None:
    n = Notification.from_payload(PAYLOAD)
    assert n.grade is Grade.ORANGE
    assert n.grade_from is Grade.NORMAL
    assert n.action == "open"
    assert (n.alert_id, n.transition_id) == (17, 42)
    assert n.reading_time.isoformat() == "2026-03-01T08:30:00.250000+00:00"
    assert n.to_payload() == PAYLOAD
    assert list(n.to_payload()) == list(PAYLOAD)
    assert type(n.to_payload()["threshold"]) is int  # jsonb's 1, not 1.0


def test_the_payload_shape_keeps_jsonbs_key_order() -> None:
    # jsonb stores object keys shorter first, then bytewise: the generic body's order
    keys = list(get_type_hints(NotificationPayload))
    assert keys == sorted(keys, key=lambda k: (len(k), k.encode()))
    assert [k for k in keys if k not in OPTIONAL_KEYS] == list(PAYLOAD)
    notices = {"notice", "reminder", "escalation"}
    assert [k for k in keys if k not in notices] == list(PAYLOAD_V2)


def test_a_payload_of_migration_0017_parses_with_its_work() -> None:
    n = Notification.from_payload(PAYLOAD_V2)
    assert (n.work_id, n.work_code, n.work_name, n.hazard_kind) == (
        5,
        "TC1",
        "1号塔吊",
        "tower_crane",
    )
    assert n.notice == "transition"
    assert n.to_payload() == PAYLOAD_V2
    assert list(n.to_payload()) == list(PAYLOAD_V2)


def test_reminders_and_escalations_carry_their_notice() -> None:
    remind = Notification.from_payload({**PAYLOAD_V2, "notice": "remind", "reminder": 2})
    assert (remind.notice, remind.reminder, remind.immediate) == ("remind", 2, False)
    escalation: dict[str, Any] = {"level": "city", "after_s": 3600, "region_code": "4201"}
    bad_level = {**escalation, "level": "x"}
    up = Notification.from_payload({**PAYLOAD_V2, "notice": "escalate", "escalation": escalation})
    assert up.escalation == escalation
    assert up.immediate
    assert list(up.to_payload()) == sorted(up.to_payload(), key=lambda k: (len(k), k.encode()))
    assert parse_item("escalate", up.to_payload()) == up
    with pytest.raises(NotificationError, match="escalation"):
        Notification.from_payload({**PAYLOAD_V2, "notice": "escalate"})
    with pytest.raises(NotificationError, match="a remind row holds a 'transition' notice"):
        parse_item("remind", PAYLOAD_V2)
    with pytest.raises(NotificationError, match="unknown level"):
        Notification.from_payload({**PAYLOAD_V2, "notice": "escalate", "escalation": bad_level})


def test_a_hazard_event_parses_with_its_due_date() -> None:
    h = parse_item("hazard", HAZARD)
    assert isinstance(h, HazardNotification)
    assert (h.hazard_id, h.action, h.level, h.due_kind) == (9, "remind", "major", "rectification")
    assert h.due == "2026-03-02T18:00:00+08:00"
    assert h.title == HAZARD["hazard_title"]
    assert h.severity == 4
    assert not h.immediate
    assert parse_item("hazard", {**HAZARD, "action": "escalate", "data": {"to_region": "4201"}})
    assert parse_item("hazard", {**HAZARD, "action": "register"}).immediate  # major
    assert not parse_item("hazard", {**HAZARD, "action": "register", "level": "general"}).immediate


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"action": "close"}, "action"),  # not a hazard action that notifies
        ({"level": "minor"}, "level"),
        ({"data": []}, "data"),
        ({"data": {"kind": "inspection"}}, "data"),
        ({"at": "soon"}, "at"),
        ({"hazard_id": "9"}, "hazard_id"),
    ],
)
def test_a_bad_hazard_payload_names_its_key(change: dict[str, Any], key: str) -> None:
    with pytest.raises(NotificationError) as caught:
        HazardNotification.from_payload({**HAZARD, **change})
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("spelling", "check"),
    [("NaN", math.isnan), ("Infinity", lambda v: v == math.inf), ("-Infinity", lambda v: v < 0)],
)
def test_jsonb_non_finite_numbers_are_floats_and_go_back_as_written(
    spelling: str, check: Any
) -> None:
    n = Notification.from_payload({**PAYLOAD, "value": spelling, "threshold": None})
    assert isinstance(n.value, float)
    assert check(n.value)
    assert n.threshold is None
    assert n.to_payload()["value"] == spelling


def test_unknown_keys_are_ignored() -> None:
    # a migration may add a key to the trigger before the notifier knows it
    n = Notification.from_payload({**PAYLOAD, "crane_model": "QTZ80"})
    assert n.to_payload() == PAYLOAD


def test_a_person_acknowledging_is_a_notification_without_values() -> None:
    n = Notification.from_payload(
        {**PAYLOAD, "action": "acknowledge", "grade_from": 3, "value": None, "threshold": None}
    )
    assert n.value is None
    assert n.action == "acknowledge"


BAD: list[tuple[Any, str | None, str]] = [
    (["not", "an", "object"], None, "must be a JSON object, got array"),
    ("text", None, "must be a JSON object, got string"),
    (None, None, "must be a JSON object, got null"),
    ({**PAYLOAD, "grade": "3"}, "grade", "must be an integer, got string"),
    ({**PAYLOAD, "grade": 3.0}, "grade", "must be an integer, got number"),
    ({**PAYLOAD, "grade": True}, "grade", "must be an integer, got boolean"),
    ({**PAYLOAD, "grade": 5, "grade_to": 5}, "grade", "not a grade (0 to 4): 5"),
    ({**PAYLOAD, "grade": 0, "grade_to": 0}, "grade", "at least blue (1), got 0"),
    ({**PAYLOAD, "grade": 4}, "grade", "higher of grade_from (0) and grade_to (3), got 4"),
    ({**PAYLOAD, "grade_to": -1}, "grade_to", "not a grade (0 to 4): -1"),
    ({**PAYLOAD, "alert_id": 0}, "alert_id", "must be a positive id, got 0"),
    ({**PAYLOAD, "transition_id": None}, "transition_id", "must be an integer, got null"),
    ({**PAYLOAD, "action": "explode"}, "action", "unknown transition action 'explode'"),
    ({**PAYLOAD, "site_name": 7}, "site_name", "must be a string, got number"),
    ({**PAYLOAD, "message_zh": None}, "message_zh", "must be a string, got null"),
    ({**PAYLOAD, "value": "1.02"}, "value", "must be a number or null, got string"),
    ({**PAYLOAD, "threshold": [1]}, "threshold", "must be a number or null, got array"),
    ({**PAYLOAD, "value": False}, "value", "must be a number or null, got boolean"),
    ({**PAYLOAD, "reading_at": "yesterday"}, "reading_at", "not an ISO 8601 time: 'yesterday'"),
    ({**PAYLOAD, "reading_at": "infinity"}, "reading_at", "not an ISO 8601 time"),
]
MISSING: list[tuple[Any, str | None, str]] = [
    ({k: v for k, v in PAYLOAD.items() if k != key}, key, "missing") for key in PAYLOAD
]


@pytest.mark.parametrize(("payload", "key", "reason"), BAD + MISSING)
def test_a_bad_payload_names_its_key_and_problem(
    payload: Any, key: str | None, reason: str
) -> None:
    with pytest.raises(NotificationError) as caught:
        Notification.from_payload(payload)
    assert caught.value.key == key
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"payload key {key!r}: " if key else "payload: ")
