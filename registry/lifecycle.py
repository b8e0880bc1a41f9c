"""The hazard lifecycle (隐患排查治理闭环) as pure transitions: no I/O, plain values in and out.

    register ──▶ registered ──assign──▶ assigned ──rectify──▶ rectified ──verify──▶ verified ──close──▶ closed
                                          ▲  │ (re-assign)                │
                                          └──┴────────── reject ◀─────────┘

- register: a hazard found by an inspection, the enterprise's own check or a significant alert
  enters the loop as `registered`, general (一般隐患) or major (重大事故隐患);
- raise_level: a general hazard becomes major (its alert escalated to red);
- assign (整改): a responsible unit, person and a deadline in the future; a hazard may be
  re-assigned (new person or deadline) while rectification is under way;
- rectify: the responsible side reports the fix; the actor is recorded as the rectifier;
- verify (复查验收) or reject: by someone other than the rectifier; rejection sends the hazard
  back to `assigned`;
- close (销号): only a verified hazard leaves the open list;
- supervise (挂牌督办): a major hazard (重大事故隐患) that is not closed may be put under listed
  supervision by an authority, once; it does not change the state.

Each function returns a `Change`: the new state, the hazard columns to update and the data of
the `hazard_events` row that records it. An action not allowed in the current state raises
`HazardError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hazmon.vocabulary import HAZARD_STATES, Grade, HazardAction, HazardLevel, HazardState

ENGINE_ACTOR = "hazmon-engine"
"""Who registers and raises the hazards of alerts (`hazards.found_by`, `hazard_events.actor`)."""


class HazardError(ValueError):
    """An action the hazard's current state or the actor does not allow."""

    def __init__(self, action: HazardAction, reason: str) -> None:
        super().__init__(f"cannot {action}: {reason}")
        self.action = action
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Hazard:
    """What the transitions need to know about a hazard."""

    state: HazardState
    level: HazardLevel
    listed_supervision: bool = False
    rectified_by: str | None = None

    def __post_init__(self) -> None:
        if self.state not in HAZARD_STATES:
            raise ValueError(f"unknown hazard state {self.state!r}")


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of one action: new state, hazard columns to set, and the event's data."""

    action: HazardAction
    state: HazardState
    fields: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)


def _require(hazard: Hazard, action: HazardAction, *allowed: HazardState) -> None:
    if hazard.state not in allowed:
        raise HazardError(
            action, f"the hazard is {hazard.state}, the action needs {' or '.join(allowed)}"
        )


def register(level: HazardLevel, **data: Any) -> Change:
    """A new hazard enters the loop as `registered`, general or major; `data` goes on record."""
    if level not in ("general", "major"):
        raise HazardError("register", f"unknown level {level!r}")
    return Change("register", "registered", {"level": level}, data)


def raise_level(hazard: Hazard, **data: Any) -> Change:
    """Make a general hazard major, in whatever state it is; `data` goes on record."""
    if hazard.level == "major":
        raise HazardError("raise_level", "the hazard is major already")
    return Change("raise_level", hazard.state, {"level": "major"}, {**data, "level": "major"})


def level_of_alert(grade: Grade) -> HazardLevel | None:
    """The hazard an alert of `grade` amounts to, None if it is not one by itself.

    Orange (II) is a general hazard (一般隐患); red (I) a major one (重大事故隐患): deformation
    beyond the alarm value is among the major-hazard situations of 建质规〔2022〕2号 (e.g. support
    deformation beyond the design control value), and major hazards go on to listed supervision.
    Yellow and blue stay alerts: an inspector registers a hazard from them when warranted.
    """
    if grade >= Grade.RED:
        return "major"
    if grade >= Grade.ORANGE:
        return "general"
    return None


def alert_hazard_change(
    action: str, grade_to: Grade, existing: Hazard | None, **data: Any
) -> Change | None:
    """What an alert transition does to the hazard registry: one hazard per alert.

    An alert opening or escalating to orange or red registers its hazard; escalating to red
    raises the existing hazard to major rather than registering a second one. Anything else
    (de-escalation, resolution, acknowledgement, a late reading) leaves the hazard as it is:
    only its own loop closes a hazard.

    Args:
        action: the transition's action.
        grade_to: the alert's grade after it.
        existing: the alert's hazard, if it has one.
        data: what the hazard event records (alert and transition ids, grade).
    """
    level = level_of_alert(grade_to)
    if action not in ("open", "escalate") or level is None:
        return None
    if existing is None:
        return register(level, **data)
    if level == "major" and existing.level != "major":
        return raise_level(existing, **data)
    return None


def assign(hazard: Hazard, *, unit: str, person: str, deadline: datetime, now: datetime) -> Change:
    """Assign rectification to a responsible unit and person, due by `deadline` (after `now`)."""
    _require(hazard, "assign", "registered", "assigned")
    if deadline <= now:
        raise HazardError("assign", "the deadline must be in the future")
    if not unit.strip() or not person.strip():
        raise HazardError("assign", "a responsible unit and person are required")
    fields = {"responsible_unit": unit, "responsible_person": person, "deadline": deadline}
    return Change("assign", "assigned", fields, {**fields, "deadline": deadline.isoformat()})


def rectify(hazard: Hazard, *, actor: str) -> Change:
    """Report the rectification done; `actor` becomes the rectifier."""
    _require(hazard, "rectify", "assigned")
    return Change("rectify", "rectified", {"rectified_by": actor})


def _check_verifier(hazard: Hazard, action: HazardAction, actor: str) -> None:
    _require(hazard, action, "rectified")
    if actor == hazard.rectified_by:
        raise HazardError(action, "the rectifier cannot verify their own rectification")


def verify(hazard: Hazard, *, actor: str) -> Change:
    """Accept the rectification (复查验收); `actor` must not be the rectifier."""
    _check_verifier(hazard, "verify", actor)
    return Change("verify", "verified", {"verified_by": actor})


def reject(hazard: Hazard, *, actor: str) -> Change:
    """Refuse the rectification and send the hazard back to `assigned`."""
    _check_verifier(hazard, "reject", actor)
    return Change("reject", "assigned", {"rectified_by": None})


def close(hazard: Hazard, *, now: datetime) -> Change:
    """Close out (销号) a verified hazard."""
    _require(hazard, "close", "verified")
    return Change("close", "closed", {"closed_at": now})


def supervise(hazard: Hazard, *, authority: str) -> Change:
    """Put a major hazard that is still open under listed supervision (挂牌督办) by `authority`."""
    if hazard.level != "major":
        raise HazardError("supervise", "only a major hazard can be put under listed supervision")
    if hazard.state == "closed":
        raise HazardError("supervise", "the hazard is closed")
    if hazard.listed_supervision:
        raise HazardError("supervise", "the hazard is already under listed supervision")
    if not authority.strip():
        raise HazardError("supervise", "a supervising authority is required")
    fields = {"listed_supervision": True, "supervising_authority": authority}
    return Change("supervise", hazard.state, fields, fields)
