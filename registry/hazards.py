"""The hazard lifecycle (隐患排查治理闭环) as pure transitions: no I/O, plain values in and out.

    registered ──assign──▶ assigned ──rectify──▶ rectified ──verify──▶ verified ──close──▶ closed
                              ▲  │ (re-assign)                │
                              └──┴────────── reject ◀─────────┘

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
from typing import Any, Literal, get_args

HazardState = Literal["registered", "assigned", "rectified", "verified", "closed"]
HazardLevel = Literal["general", "major"]
HazardAction = Literal["register", "assign", "rectify", "verify", "reject", "close", "supervise"]
HAZARD_STATES: tuple[HazardState, ...] = get_args(HazardState)


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
