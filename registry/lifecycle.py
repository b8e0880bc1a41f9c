"""The hazard lifecycle (隐患排查治理闭环) as pure transitions: no I/O, plain values in and out.

    register ──▶ registered ──assign──▶ assigned ──rectify──▶ rectified ──verify──▶ verified ──close──▶ closed
                  (plan)                  ▲  │ (plan, re-assign)          │
                                          └──┴────────── reject ◀─────────┘

- register: a hazard found by a sensor alarm (an alert), an inspection or a report enters the
  loop as `registered`, general (一般隐患) or major (重大事故隐患, 建质规〔2022〕2号);
- raise_level: a general hazard becomes major (its alert escalated to red);
- plan (整改方案): measures, responsible unit and person, funds, deadline, emergency plan, drafted
  or revised while the hazard is registered or assigned;
- assign (下达整改): the plan in force, due by a future deadline. A general hazard needs a unit, a
  person and the deadline; a major one all five items the Hubei listed-supervision rules ask
  (措施、责任、资金、时限、预案 "五到位", notes §6.2 [S26]) before it can be assigned;
- rectify: the responsible side reports the fix; the actor is recorded as the rectifier, and
  the verification falls due `VERIFICATION_DAYS` later (Hubei: within 10 days of the report);
- verify (复查验收) or reject: by another *user* than the rectifier, whatever tokens either holds.
  A sensor-born hazard is not verified while its alert is open (the sensor still breaches),
  unless a supervisor (admin, regulator) overrides with a reason (`verify_override`). Rejection
  sends the hazard back to `assigned` for a new round of rectification;
- close (销号): only a verified hazard leaves the open list;
- supervise (挂牌督办): a major hazard that is not closed may be put under listed supervision,
  once, by an authority of the province, city or county it lies in, with a due date; the caller's
  own scope must contain that authority's division. The state does not change.

The deadline sweep's decisions (`deadline_changes`: reminders, overdue marks and escalation to
the next level up) are here too, as a pure function of a hazard's deadlines and the clock.

Each function returns a `Change`: the new state, the hazard columns to update, the effect on the
current rectification round and the data of the `hazard_events` row that records it. An action
not allowed in the current state, or by this actor, raises `HazardError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from hazmon.vocabulary import (
    HAZARD_STATES,
    SUPERVISION_PREFIX_DIGITS,
    DeadlineKind,
    Grade,
    HazardAction,
    HazardLevel,
    HazardSource,
    HazardState,
    SupervisionLevel,
)

ENGINE_ACTOR = "hazmon-engine"
"""Who registers and raises the hazards of alerts (`hazards.found_by`, `hazard_events.actor`)."""
VERIFICATION_DAYS: Mapping[HazardLevel, int] = {"major": 10, "general": 10}
"""Days from the rectification report to the verification's deadline. Major: the Hubei rules on
listed supervision of major hazards, on-site acceptance within 10 days of the unit's request
(notes §6.2 [S26], confidence M). General: no source; the same 10 days, so that no report waits
unverified without a deadline."""
OVERRIDERS = frozenset({"admin", "regulator"})
"""Roles that may verify a sensor-born hazard over its open alert, with a reason: the supervising
authority (监督站), not the inspector who verifies."""

RoundEffect = Literal["open", "update", "report", "accept", "reject"]
"""What an action does to the hazard's current rectification round (`rectifications`): open a
new round with the plan in force, update the open round's plan, record the report, accept it, or
reject it (and open the next round with the same plan)."""


class HazardError(ValueError):
    """An action the hazard's current state or the actor does not allow."""

    def __init__(self, action: HazardAction, reason: str) -> None:
        super().__init__(f"cannot {action}: {reason}")
        self.action = action
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the audit trail's label (`role:name#token`), their user and role.

    Two actors are the same person when both have a user and it is the same user; an actor
    without one (the engine, an event written before users existed) is compared by label.
    """

    label: str
    user_id: int | None = None
    role: str = ""

    def same_person(self, label: str | None, user_id: int | None) -> bool:
        """Whether this actor is the one recorded as (`label`, `user_id`)."""
        if self.user_id is not None and user_id is not None:
            return self.user_id == user_id
        return label is not None and self.label == label


@dataclass(frozen=True, slots=True)
class Plan:
    """A rectification plan (整改方案): what the 整改措施清单 lists for a hazard.

    Attributes:
        measures: 整改措施, what is to be done.
        responsible_unit: 责任单位.
        responsible_person: 责任人.
        funds_yuan: 整改资金, in yuan (None: not stated).
        deadline: 整改期限 (aware).
        emergency_plan: 应急预案, the safety measures while the hazard lasts.
    """

    measures: str = ""
    responsible_unit: str = ""
    responsible_person: str = ""
    funds_yuan: Decimal | None = None
    deadline: datetime | None = None
    emergency_plan: str = ""

    def merged(self, **changes: Any) -> Plan:
        """This plan with the items in `changes` that are not None replaced."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def missing(self, level: HazardLevel) -> list[str]:
        """The items an assignment of a hazard of `level` still lacks, as named in Chinese.

        General: 责任 (unit and person) and 时限. Major, the five (五到位): 措施, 责任, 资金
        (a positive amount), 时限, 预案.
        """
        missing = []
        if level == "major" and not self.measures.strip():
            missing.append("措施 measures")
        if not (self.responsible_unit.strip() and self.responsible_person.strip()):
            missing.append("责任 responsible unit and person")
        if level == "major" and not (self.funds_yuan is not None and self.funds_yuan > 0):
            missing.append("资金 funds")
        if self.deadline is None:
            missing.append("时限 deadline")
        if level == "major" and not self.emergency_plan.strip():
            missing.append("预案 emergency plan")
        return missing

    def columns(self) -> dict[str, Any]:
        """The hazard columns this plan sets."""
        return {
            "measures": self.measures,
            "responsible_unit": self.responsible_unit,
            "responsible_person": self.responsible_person,
            "funds_yuan": self.funds_yuan,
            "deadline": self.deadline,
            "emergency_plan": self.emergency_plan,
        }

    def record(self) -> dict[str, Any]:
        """The plan as JSON for the event's data."""
        return {
            **self.columns(),
            "funds_yuan": str(self.funds_yuan) if self.funds_yuan is not None else None,
            "deadline": self.deadline.isoformat() if self.deadline else None,
        }


@dataclass(frozen=True, slots=True)
class Hazard:
    """What the transitions need to know about a hazard."""

    state: HazardState
    level: HazardLevel
    listed_supervision: bool = False
    rectified_by: str | None = None
    rectified_by_user: int | None = None
    plan: Plan = field(default_factory=Plan)
    source: HazardSource = "report"
    alert_id: int | None = None
    alert_open: bool = False
    """The hazard's alert is open or acknowledged: its sensor still breaches."""
    region_code: str = ""
    """The six-digit division of the hazard's site."""

    def __post_init__(self) -> None:
        if self.state not in HAZARD_STATES:
            raise ValueError(f"unknown hazard state {self.state!r}")


def hazard_from_row(row: Mapping[str, Any]) -> Hazard:
    """The `Hazard` of a row read through the API's HAZARDS resource (or with its columns)."""
    return Hazard(
        state=row["state"],
        level=row["level"],
        listed_supervision=bool(row.get("listed_supervision")),
        rectified_by=row.get("rectified_by"),
        rectified_by_user=row.get("rectified_by_user"),
        plan=Plan(
            measures=row.get("measures") or "",
            responsible_unit=row.get("responsible_unit") or "",
            responsible_person=row.get("responsible_person") or "",
            funds_yuan=row.get("funds_yuan"),
            deadline=row.get("deadline"),
            emergency_plan=row.get("emergency_plan") or "",
        ),
        source=row.get("source") or "report",
        alert_id=row.get("alert_id"),
        alert_open=bool(row.get("alert_open")),
        region_code=row.get("region_code") or "",
    )


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of one action: new state, hazard columns to set, round effect, event data."""

    action: HazardAction
    state: HazardState
    fields: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    round: RoundEffect | None = None


def _require(hazard: Hazard, action: HazardAction, *allowed: HazardState) -> None:
    if hazard.state not in allowed:
        raise HazardError(
            action, f"the hazard is {hazard.state}, the action needs {' or '.join(allowed)}"
        )


def register(level: HazardLevel, source: HazardSource = "report", **data: Any) -> Change:
    """A new hazard enters the loop as `registered`, general or major; `data` goes on record."""
    if level not in ("general", "major"):
        raise HazardError("register", f"unknown level {level!r}")
    if source not in ("sensor", "inspection", "report"):
        raise HazardError("register", f"unknown source {source!r}")
    return Change(
        "register", "registered", {"level": level, "source": source}, {**data, "level": level}
    )


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

    An alert opening or escalating to orange or red registers its hazard (source `sensor`);
    escalating to red raises the existing hazard to major rather than registering a second one.
    Anything else (de-escalation, resolution, acknowledgement, a late reading) leaves the hazard
    as it is: only its own loop closes a hazard.

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
        return register(level, "sensor", **data)
    if level == "major" and existing.level != "major":
        return raise_level(existing, **data)
    return None


def _check_deadline(action: HazardAction, deadline: datetime | None, now: datetime) -> None:
    if deadline is not None and deadline <= now:
        raise HazardError(action, "the deadline must be in the future")


def plan(hazard: Hazard, new: Plan, *, now: datetime) -> Change:
    """Draft or revise the rectification plan of a registered or assigned hazard.

    A draft need not be complete (`assign` checks that); a deadline in it must be in the future.
    Revising an assigned hazard's plan updates its current round.
    """
    _require(hazard, "plan", "registered", "assigned")
    _check_deadline("plan", new.deadline, now)
    return Change(
        "plan",
        hazard.state,
        new.columns(),
        new.record(),
        round="update" if hazard.state == "assigned" else None,
    )


def assign(hazard: Hazard, new: Plan, *, now: datetime) -> Change:
    """Assign the rectification with the plan `new` (the hazard's plan with the changes made).

    Re-assigning an assigned hazard (a new person or deadline) revises its current round.

    Raises:
        HazardError: not registered or assigned; a deadline not in the future; a plan lacking
            an item its level needs (`Plan.missing`: the five for a major hazard).
    """
    _require(hazard, "assign", "registered", "assigned")
    _check_deadline("assign", new.deadline, now)
    missing = new.missing(hazard.level)
    if missing:
        what = (
            "a major hazard's plan needs all five items (五到位)"
            if hazard.level == "major"
            else ("a responsible unit and person and a deadline are required")
        )
        raise HazardError("assign", f"{what}; missing: {', '.join(missing)}")
    assert new.deadline is not None
    record = new.record()
    return Change(
        "assign",
        "assigned",
        new.columns(),
        {**record, "due": record["deadline"], "kind": "rectification"},
        round="open" if hazard.state == "registered" else "update",
    )


def rectify(hazard: Hazard, *, actor: Actor, now: datetime) -> Change:
    """Report the rectification done; `actor` becomes the rectifier and the verification falls
    due `VERIFICATION_DAYS[level]` days from now."""
    _require(hazard, "rectify", "assigned")
    due = now + timedelta(days=VERIFICATION_DAYS[hazard.level])
    return Change(
        "rectify",
        "rectified",
        {
            "rectified_by": actor.label,
            "rectified_by_user": actor.user_id,
            "rectified_at": now,
            "verification_due": due,
        },
        {"verification_due": due.isoformat()},
        round="report",
    )


def _check_verifier(hazard: Hazard, action: HazardAction, actor: Actor) -> None:
    _require(hazard, action, "rectified")
    if actor.same_person(hazard.rectified_by, hazard.rectified_by_user):
        raise HazardError(
            action, "the rectifier cannot verify their own rectification (another user must)"
        )


def verify(
    hazard: Hazard, *, actor: Actor, now: datetime, override_reason: str | None = None
) -> Change:
    """Accept the rectification (复查验收); `actor` must be another user than the rectifier.

    A sensor-born hazard whose alert is still open is refused, unless `actor` is one of the
    OVERRIDERS and gives `override_reason`: then the action is `verify_override` and the reason
    and the alert go on record.
    """
    _check_verifier(hazard, "verify", actor)
    fields = {"verified_by": actor.label, "verified_by_user": actor.user_id, "verified_at": now}
    reason = (override_reason or "").strip()
    if not hazard.alert_open:
        return Change("verify", "verified", fields, round="accept")
    if not reason:
        raise HazardError(
            "verify",
            f"its alert {hazard.alert_id} is still open (the sensor still breaches); an admin or "
            "regulator may verify over it with a reason (override_reason)",
        )
    if actor.role not in OVERRIDERS:
        raise HazardError(
            "verify_override",
            f"only {' or '.join(sorted(OVERRIDERS))} may verify over an open alert",
        )
    return Change(
        "verify_override",
        "verified",
        fields,
        {"reason": reason, "alert_id": hazard.alert_id},
        round="accept",
    )


def reject(hazard: Hazard, *, actor: Actor) -> Change:
    """Refuse the rectification and send the hazard back to `assigned` for another round."""
    _check_verifier(hazard, "reject", actor)
    return Change(
        "reject",
        "assigned",
        {
            "rectified_by": None,
            "rectified_by_user": None,
            "rectified_at": None,
            "verification_due": None,
        },
        round="reject",
    )


def close(hazard: Hazard, *, now: datetime) -> Change:
    """Close out (销号) a verified hazard."""
    _require(hazard, "close", "verified")
    return Change("close", "closed", {"closed_at": now})


def supervision_region(region_code: str, level: SupervisionLevel) -> str:
    """The division of `level` a six-digit `region_code` lies in, as a prefix ('4201')."""
    return region_code[: SUPERVISION_PREFIX_DIGITS[level]]


def supervise(
    hazard: Hazard,
    *,
    authority: str,
    level: SupervisionLevel,
    due: datetime,
    now: datetime,
    caller_region: str | None,
) -> Change:
    """Put a major, open hazard under listed supervision (挂牌督办) by `authority`.

    Args:
        authority: the supervising authority's name (武汉市住建局).
        level: province, city or county: the authority's division is the one of that level
            the hazard's site lies in.
        due: when the hazard must be closed out (督办期限), in the future.
        now: the time of the action.
        caller_region: the caller's scope prefix, which must contain the authority's division
            (a county office cannot list at province level); None for an unscoped caller.
    """
    if hazard.level != "major":
        raise HazardError("supervise", "only a major hazard can be put under listed supervision")
    if hazard.state == "closed":
        raise HazardError("supervise", "the hazard is closed")
    if hazard.listed_supervision:
        raise HazardError("supervise", "the hazard is already under listed supervision")
    if not authority.strip():
        raise HazardError("supervise", "a supervising authority is required")
    if due <= now:
        raise HazardError("supervise", "the due date must be in the future")
    region = supervision_region(hazard.region_code, level)
    if caller_region is not None and not region.startswith(caller_region):
        raise HazardError(
            "supervise",
            f"a {level} authority of division {region} is outside the caller's scope "
            f"{caller_region}",
        )
    fields = {
        "listed_supervision": True,
        "supervising_authority": authority,
        "supervision_level": level,
        "supervision_region": region,
        "supervision_due": due,
        "supervised_at": now,
    }
    data = {
        "listed_supervision": True,
        "supervising_authority": authority,
        "level": level,
        "region_code": region,
        "due": due.isoformat(),
    }
    return Change("supervise", hazard.state, fields, data)


def evidence(hazard: Hazard, **data: Any) -> Change:
    """Record a file attached to the hazard (or its rectification) in its audit trail."""
    return Change("evidence", hazard.state, {}, data)


# --- deadlines: reminders, overdue marks and escalation (the sweep) --------------------------


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    """When the sweep reminds and escalates; tests shrink or shift these.

    Attributes:
        remind_before: how long before a deadline the reminder goes out (no source: one day,
            enough to act on a notice that arrives during the working day).
        escalate_after: how long a deadline may be overdue before the hazard is escalated one
            level up, and again after each further period (no source: three days, then the
            next level; a county hazard overdue 3 days goes to the city, 6 days to the province).
    """

    remind_before: timedelta = timedelta(days=1)
    escalate_after: timedelta = timedelta(days=3)


DEFAULT_POLICY = DeadlinePolicy()


@dataclass(frozen=True, slots=True)
class Deadlines:
    """What the sweep knows of an open hazard: its state, deadlines and where it is supervised."""

    state: HazardState
    region_code: str
    """The site's six-digit division."""
    deadline: datetime | None = None
    """The rectification deadline, which binds while the hazard is assigned."""
    verification_due: datetime | None = None
    """The verification deadline, which binds while the hazard is rectified."""
    supervision_region: str | None = None
    """The division of the authority that lists it (挂牌督办), if any."""


def _next_levels_up(base: str) -> list[str]:
    """The divisions above `base` (a 2/4/6-digit prefix), nearest first: '420106' → 4201, 42."""
    base = base.rstrip()
    levels = []
    while len(base) > 2:
        base = base[:-2]
        levels.append(base)
    return levels


def _base_division(d: Deadlines) -> str:
    """The division responsible now: the listing authority's, else the site's county, written as
    its significant prefix (a city-level code 420100 is the city 4201)."""
    code = d.supervision_region or d.region_code
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def deadline_changes(
    d: Deadlines,
    *,
    now: datetime,
    written: frozenset[tuple[str, str, str, str]],
    policy: DeadlinePolicy = DEFAULT_POLICY,
) -> list[Change]:
    """The reminder, overdue and escalation events due for one hazard at `now`, not yet written.

    The binding deadline is the rectification's while the hazard is assigned and the
    verification's while it is rectified; none otherwise. Before it by `policy.remind_before` a
    `remind`; at it an `overdue`; and after each further `policy.escalate_after` an `escalate`
    to the next division up (county → city → province; from the listing authority's level if the
    hazard is under listed supervision). Each event is keyed by (action, kind, due, to_region):
    a key in `written` is not written again, so the sweep is idempotent, and a new deadline
    (a re-assignment) gets its own events.

    Args:
        d: the hazard's deadlines.
        now: the sweep's clock.
        written: keys of the sweep events the hazard already has.
        policy: lead and escalation periods.
    """
    kind: DeadlineKind
    if d.state == "assigned" and d.deadline is not None:
        kind, due = "rectification", d.deadline
    elif d.state == "rectified" and d.verification_due is not None:
        kind, due = "verification", d.verification_due
    else:
        return []
    due_text = due.astimezone(UTC).isoformat()  # one spelling whatever the session's zone
    changes: list[Change] = []

    def add(action: HazardAction, to_region: str = "", **extra: Any) -> None:
        if (action, kind, due_text, to_region) in written:
            return
        data = {"due": due_text, "kind": kind, **extra}
        if to_region:
            data["to_region"] = to_region
        changes.append(Change(action, d.state, {}, data))

    if now < due - policy.remind_before:
        return []
    if now < due:
        add("remind")
        return changes
    add("overdue")
    overdue_for = now - due
    steps: Sequence[str] = _next_levels_up(_base_division(d))
    for n, region in enumerate(steps, start=1):
        if overdue_for < n * policy.escalate_after:
            break
        days = (n * policy.escalate_after).total_seconds() / 86400
        add(
            "escalate",
            region,
            reason=f"{kind} overdue since {due_text} by more than {days:g} days",
        )
    return changes


def sweep_key(action: str, data: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """The key `deadline_changes` compares with, of a written sweep event."""
    return (
        action,
        str(data.get("kind", "")),
        str(data.get("due", "")),
        str(data.get("to_region", "")),
    )
