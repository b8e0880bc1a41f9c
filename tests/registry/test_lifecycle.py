"""The hazard lifecycle, its deadlines and the alert-to-hazard policy as pure transitions
(registry/lifecycle.py): no database."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from hazmon.vocabulary import HAZARD_STATES, Grade, HazardState
from registry import Hazard, HazardError, lifecycle
from registry.lifecycle import Actor, Deadlines, Plan

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
LATER = NOW + timedelta(days=7)
FIVE = Plan(
    measures="复紧附着螺栓并做扭矩检测",
    responsible_unit="甲建设",
    responsible_person="张工",
    funds_yuan=Decimal("5000.00"),
    deadline=LATER,
    emergency_plan="停止吊装，设警戒区",
)
ENTERPRISE = Actor("enterprise:张工#3", user_id=30, role="enterprise")
INSPECTOR = Actor("inspector:李工#2", user_id=20, role="inspector")
REGULATOR = Actor("regulator:王处#5", user_id=50, role="regulator")


def _then(hazard: Hazard, change: lifecycle.Change) -> Hazard:
    """The hazard after `change` (what the store writes back)."""
    f = change.fields
    plan = Plan(**{k: f.get(k, getattr(hazard.plan, k)) for k in Plan.__dataclass_fields__})
    return replace(
        hazard,
        state=change.state,
        level=f.get("level", hazard.level),
        listed_supervision=f.get("listed_supervision", hazard.listed_supervision),
        rectified_by=f.get("rectified_by", hazard.rectified_by),
        rectified_by_user=f.get("rectified_by_user", hazard.rectified_by_user),
        plan=plan,
    )


def test_the_closed_loop_with_a_plan_a_rejection_and_listed_supervision() -> None:
    hazard = Hazard("registered", "major", region_code="420106")
    steps: list[lifecycle.Change] = []

    def do(change: lifecycle.Change) -> None:
        nonlocal hazard
        steps.append(change)
        hazard = _then(hazard, change)

    do(lifecycle.plan(hazard, Plan(measures="复紧", responsible_unit="甲建设"), now=NOW))
    do(lifecycle.assign(hazard, hazard.plan.merged(**FIVE.columns()), now=NOW))
    do(
        lifecycle.supervise(
            hazard,
            authority="武汉市住建局",
            level="city",
            due=LATER,
            now=NOW,
            caller_region="42",
        )
    )
    do(lifecycle.rectify(hazard, actor=ENTERPRISE, now=NOW))
    do(lifecycle.reject(hazard, actor=INSPECTOR))
    assert (hazard.state, hazard.rectified_by) == ("assigned", None)
    do(lifecycle.rectify(hazard, actor=ENTERPRISE, now=NOW))
    do(lifecycle.verify(hazard, actor=INSPECTOR, now=NOW))
    do(lifecycle.close(hazard, now=NOW))
    assert [(c.action, c.state, c.round) for c in steps] == [
        ("plan", "registered", None),
        ("assign", "assigned", "open"),
        ("supervise", "assigned", None),
        ("rectify", "rectified", "report"),
        ("reject", "assigned", "reject"),
        ("rectify", "rectified", "report"),
        ("verify", "verified", "accept"),
        ("close", "closed", None),
    ]
    assert hazard.listed_supervision
    assign = steps[1]
    assert assign.data["due"] == assign.data["deadline"] == LATER.isoformat()
    assert assign.data["kind"] == "rectification"
    assert assign.data["funds_yuan"] == "5000.00"
    supervise = steps[2]
    assert supervise.data == {
        "listed_supervision": True,
        "supervising_authority": "武汉市住建局",
        "level": "city",
        "region_code": "4201",
        "due": LATER.isoformat(),
    }
    assert steps[3].fields["verification_due"] == NOW + timedelta(days=10)
    assert steps[-1].fields == {"closed_at": NOW}


# --- every action in every state ---------------------------------------------------------------

Action = Callable[[Hazard], lifecycle.Change]
ACTIONS: dict[str, Action] = {
    "plan": lambda h: lifecycle.plan(h, FIVE, now=NOW),
    "assign": lambda h: lifecycle.assign(h, FIVE, now=NOW),
    "rectify": lambda h: lifecycle.rectify(h, actor=ENTERPRISE, now=NOW),
    "verify": lambda h: lifecycle.verify(h, actor=INSPECTOR, now=NOW),
    "reject": lambda h: lifecycle.reject(h, actor=INSPECTOR),
    "close": lambda h: lifecycle.close(h, now=NOW),
    "supervise": lambda h: lifecycle.supervise(
        h, authority="厅", level="province", due=LATER, now=NOW, caller_region=None
    ),
}
LEGAL: dict[tuple[str, str], str] = {
    ("registered", "plan"): "registered",
    ("assigned", "plan"): "assigned",
    ("registered", "assign"): "assigned",
    ("assigned", "assign"): "assigned",
    ("assigned", "rectify"): "rectified",
    ("rectified", "verify"): "verified",
    ("rectified", "reject"): "assigned",
    ("verified", "close"): "closed",
    **{(state, "supervise"): state for state in HAZARD_STATES if state != "closed"},
}
"""(state, action) → the state after it; every pair not listed is refused."""


@pytest.mark.parametrize("state", HAZARD_STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_in_every_state(state: HazardState, action: str) -> None:
    hazard = Hazard(state, "major", rectified_by="enterprise:张工#3", rectified_by_user=30)
    legal = LEGAL.get((state, action))
    if legal is None:
        with pytest.raises(HazardError):
            ACTIONS[action](hazard)
    else:
        assert ACTIONS[action](hazard).state == legal


# --- the verifier is another user ----------------------------------------------------------


def test_the_rectifiers_user_cannot_verify_or_reject_with_another_token() -> None:
    hazard = Hazard("rectified", "general", rectified_by="admin:张#7", rectified_by_user=4)
    same_user_other_token = Actor("admin:张#8", user_id=4, role="admin")
    for act in (
        lambda: lifecycle.verify(hazard, actor=same_user_other_token, now=NOW),
        lambda: lifecycle.reject(hazard, actor=same_user_other_token),
    ):
        with pytest.raises(HazardError, match="another user"):
            act()
    # the same name on another user's token is another person
    namesake = Actor("admin:张#9", user_id=5, role="admin")
    assert lifecycle.verify(hazard, actor=namesake, now=NOW).fields["verified_by_user"] == 5


def test_without_users_on_record_the_labels_are_compared() -> None:
    legacy = Hazard("rectified", "general", rectified_by="enterprise:甲#3")
    with pytest.raises(HazardError, match="rectifier"):
        lifecycle.verify(legacy, actor=Actor("enterprise:甲#3", user_id=9), now=NOW)
    assert lifecycle.verify(legacy, actor=Actor("inspector:李#2", 2), now=NOW).state == "verified"


def test_rectify_records_the_user_and_reject_forgets_them() -> None:
    change = lifecycle.rectify(Hazard("assigned", "major"), actor=ENTERPRISE, now=NOW)
    assert change.fields["rectified_by"] == ENTERPRISE.label
    assert change.fields["rectified_by_user"] == 30
    assert change.data == {"verification_due": (NOW + timedelta(days=10)).isoformat()}
    back = lifecycle.reject(_then(Hazard("assigned", "major"), change), actor=INSPECTOR)
    assert back.fields["rectified_by_user"] is None
    assert back.fields["verification_due"] is None


# --- the plan and the five items -----------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "empty", "named"),
    [
        ("measures", "", "措施"),
        ("responsible_unit", " ", "责任"),
        ("responsible_person", "", "责任"),
        ("funds_yuan", None, "资金"),
        ("funds_yuan", Decimal("0"), "资金"),
        ("deadline", None, "时限"),
        ("emergency_plan", "", "预案"),
    ],
)
def test_a_major_hazard_is_assigned_only_with_all_five_items(
    item: str, empty: Any, named: str
) -> None:
    incomplete = replace(FIVE, **{item: empty})
    with pytest.raises(HazardError, match=named) as refused:
        lifecycle.assign(Hazard("registered", "major"), incomplete, now=NOW)
    assert "五到位" in str(refused.value)
    # a plan may be drafted incomplete
    assert lifecycle.plan(Hazard("registered", "major"), incomplete, now=NOW).action == "plan"


def test_a_general_hazard_needs_responsibility_and_a_deadline_only() -> None:
    minimal = Plan(responsible_unit="甲建设", responsible_person="张工", deadline=LATER)
    assert lifecycle.assign(Hazard("registered", "general"), minimal, now=NOW).state == "assigned"
    with pytest.raises(HazardError, match="时限"):
        lifecycle.assign(Hazard("registered", "general"), replace(minimal, deadline=None), now=NOW)
    with pytest.raises(HazardError, match="future"):
        lifecycle.assign(Hazard("registered", "general"), replace(minimal, deadline=NOW), now=NOW)
    with pytest.raises(HazardError, match="future"):
        lifecycle.plan(Hazard("registered", "general"), replace(minimal, deadline=NOW), now=NOW)


def test_reassigning_and_replanning_an_assigned_hazard_revise_its_round() -> None:
    assigned = Hazard("assigned", "major", plan=FIVE)
    later = FIVE.merged(deadline=LATER + timedelta(days=3), responsible_person="赵工")
    assert lifecycle.assign(assigned, later, now=NOW).round == "update"
    assert lifecycle.plan(assigned, later, now=NOW).round == "update"
    assert FIVE.merged(measures=None, funds_yuan=None) == FIVE


# --- verification over an open alert ---------------------------------------------------------


def test_a_sensor_hazard_is_not_verified_while_its_alert_is_open() -> None:
    open_alert = Hazard(
        "rectified", "major", source="sensor", alert_id=77, alert_open=True, rectified_by="e#1"
    )
    with pytest.raises(HazardError, match="alert 77 is still open"):
        lifecycle.verify(open_alert, actor=INSPECTOR, now=NOW)
    with pytest.raises(HazardError, match="only admin or regulator"):
        lifecycle.verify(open_alert, actor=INSPECTOR, now=NOW, override_reason="传感器损坏已更换")
    with pytest.raises(HazardError, match="still open"):
        lifecycle.verify(open_alert, actor=REGULATOR, now=NOW, override_reason="  ")
    change = lifecycle.verify(
        open_alert, actor=REGULATOR, now=NOW, override_reason="传感器损坏，人工复测合格"
    )
    assert (change.action, change.state, change.round) == ("verify_override", "verified", "accept")
    assert change.data == {"reason": "传感器损坏，人工复测合格", "alert_id": 77}
    resolved = replace(open_alert, alert_open=False)
    assert lifecycle.verify(resolved, actor=INSPECTOR, now=NOW).action == "verify"


# --- listed supervision ----------------------------------------------------------------------


def test_only_open_major_hazards_go_under_listed_supervision_once() -> None:
    def supervise(h: Hazard, **kw: Any) -> lifecycle.Change:
        args: dict[str, Any] = {
            "authority": "厅",
            "level": "province",
            "due": LATER,
            "now": NOW,
            "caller_region": None,
            **kw,
        }
        return lifecycle.supervise(h, **args)

    site = "420106"
    with pytest.raises(HazardError, match="major"):
        supervise(Hazard("registered", "general", region_code=site))
    with pytest.raises(HazardError, match="already"):
        supervise(Hazard("assigned", "major", listed_supervision=True, region_code=site))
    with pytest.raises(HazardError, match="future"):
        supervise(Hazard("assigned", "major", region_code=site), due=NOW)
    major = Hazard("rectified", "major", region_code=site)
    assert supervise(major, level="county").fields["supervision_region"] == "420106"
    assert supervise(major, level="city", caller_region="4201").data["region_code"] == "4201"
    # a city office cannot list at province level, nor another city's hazard
    with pytest.raises(HazardError, match="outside the caller's scope"):
        supervise(major, level="province", caller_region="4201")
    with pytest.raises(HazardError, match="outside"):
        supervise(major, level="county", caller_region="4403")


# --- deadlines: reminders, overdue, escalation -------------------------------------------------

DUE = datetime(2026, 12, 10, 9, tzinfo=UTC)
POLICY = lifecycle.DeadlinePolicy(remind_before=timedelta(days=1), escalate_after=timedelta(days=3))


def _sweep(d: Deadlines, now: datetime, written: set[tuple[str, str, str, str]]) -> list[str]:
    """Run the sweep's decision at `now`, "write" its events; return their descriptions."""
    changes = lifecycle.deadline_changes(d, now=now, written=frozenset(written), policy=POLICY)
    for c in changes:
        written.add(lifecycle.sweep_key(c.action, c.data))
    return [f"{c.action} {c.data['kind']} {c.data.get('to_region', '')}".strip() for c in changes]


def test_rectification_deadline_reminds_marks_overdue_and_escalates_once_each() -> None:
    d = Deadlines("assigned", "420106", deadline=DUE)
    written: set[tuple[str, str, str, str]] = set()
    assert _sweep(d, DUE - timedelta(days=2), written) == []
    assert _sweep(d, DUE - timedelta(hours=20), written) == ["remind rectification"]
    assert _sweep(d, DUE - timedelta(hours=19), written) == []
    assert _sweep(d, DUE, written) == ["overdue rectification"]
    assert _sweep(d, DUE + timedelta(days=2), written) == []
    assert _sweep(d, DUE + timedelta(days=3), written) == ["escalate rectification 4201"]
    assert _sweep(d, DUE + timedelta(days=5), written) == []
    assert _sweep(d, DUE + timedelta(days=6), written) == ["escalate rectification 42"]
    assert _sweep(d, DUE + timedelta(days=60), written) == []  # nothing above a province


def test_a_late_first_sweep_writes_everything_due_at_once() -> None:
    d = Deadlines("assigned", "420106", deadline=DUE)
    got = _sweep(d, DUE + timedelta(days=7), set())
    assert got == [
        "overdue rectification",
        "escalate rectification 4201",
        "escalate rectification 42",
    ]


def test_verification_deadline_and_the_supervising_level() -> None:
    # under listed supervision by the city, escalation goes to the province
    d = Deadlines(
        "rectified", "420106", deadline=DUE, verification_due=DUE, supervision_region="4201"
    )
    written: set[tuple[str, str, str, str]] = set()
    assert _sweep(d, DUE + timedelta(days=4), written) == [
        "overdue verification",
        "escalate verification 42",
    ]
    change = lifecycle.deadline_changes(
        d, now=DUE + timedelta(days=4), written=frozenset(), policy=POLICY
    )[1]
    assert change.data == {
        "due": DUE.isoformat(),
        "kind": "verification",
        "to_region": "42",
        "reason": "verification overdue since 2026-12-10T09:00:00+00:00 by more than 3 days",
    }
    # a site registered at city level (420100) starts from the city
    city = Deadlines("assigned", "420100", deadline=DUE)
    assert _sweep(city, DUE + timedelta(days=3), set())[-1] == "escalate rectification 42"


def test_a_new_deadline_gets_its_own_events_and_other_states_none() -> None:
    written: set[tuple[str, str, str, str]] = set()
    _sweep(Deadlines("assigned", "420106", deadline=DUE), DUE, written)
    moved = DUE + timedelta(days=5)
    assert _sweep(Deadlines("assigned", "420106", deadline=moved), moved, written) == [
        "overdue rectification"
    ]
    for state in ("registered", "verified", "closed"):
        assert _sweep(Deadlines(state, "420106", deadline=DUE), DUE, set()) == []
    # rectified: the rectification deadline no longer binds
    assert _sweep(Deadlines("rectified", "420106", deadline=DUE), DUE, set()) == []


def test_due_is_written_in_utc_whatever_the_zone() -> None:
    shanghai = DUE.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    change = lifecycle.deadline_changes(
        Deadlines("assigned", "420106", deadline=shanghai), now=DUE, written=frozenset()
    )[0]
    assert change.data["due"] == "2026-12-10T09:00:00+00:00"


# --- the alert-to-hazard policy --------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "grade", "existing", "expected"),
    [
        ("open", Grade.YELLOW, None, None),
        ("open", Grade.ORANGE, None, ("register", "general")),
        ("open", Grade.RED, None, ("register", "major")),
        ("escalate", Grade.ORANGE, None, ("register", "general")),
        ("escalate", Grade.RED, Hazard("assigned", "general"), ("raise_level", "major")),
        ("escalate", Grade.RED, Hazard("closed", "general"), ("raise_level", "major")),
        ("escalate", Grade.RED, Hazard("registered", "major"), None),
        ("escalate", Grade.ORANGE, Hazard("registered", "general"), None),
        ("deescalate", Grade.ORANGE, Hazard("registered", "major"), None),
        ("resolve", Grade.NORMAL, Hazard("registered", "major"), None),
        ("late", Grade.RED, None, None),
        ("suspect", Grade.RED, None, None),
    ],
)
def test_alert_hazard_policy(
    action: str, grade: Grade, existing: Hazard | None, expected: tuple[str, str] | None
) -> None:
    change = lifecycle.alert_hazard_change(action, grade, existing, alert_id=7)
    if expected is None:
        assert change is None
        return
    assert change is not None
    assert (change.action, change.fields["level"]) == expected
    assert change.data["alert_id"] == 7
    assert change.state == (existing.state if existing else "registered")
    if change.action == "register":
        assert change.fields["source"] == "sensor"


def test_levels_of_alerts_follow_the_colours() -> None:
    assert [lifecycle.level_of_alert(g) for g in Grade] == [None, None, None, "general", "major"]


def test_hazard_from_row_reads_the_plan_and_the_alert() -> None:
    row = {
        "state": "rectified",
        "level": "major",
        "listed_supervision": False,
        "rectified_by": "x",
        "rectified_by_user": 3,
        "measures": "m",
        "responsible_unit": "u",
        "responsible_person": "p",
        "funds_yuan": Decimal("1.50"),
        "deadline": LATER,
        "emergency_plan": "e",
        "source": "sensor",
        "alert_id": 9,
        "alert_open": True,
        "region_code": "420106",
    }
    hazard = lifecycle.hazard_from_row(row)
    assert hazard.plan == Plan("m", "u", "p", Decimal("1.50"), LATER, "e")
    assert (hazard.alert_open, hazard.rectified_by_user, hazard.region_code) == (True, 3, "420106")
