"""The hazard lifecycle and the alert-to-hazard policy as pure transitions (registry/lifecycle.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hazmon.vocabulary import Grade
from registry import Hazard, HazardError, lifecycle

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
LATER = NOW + timedelta(days=7)


def _then(hazard: Hazard, change: lifecycle.Change) -> Hazard:
    """The hazard after `change` (what the API writes back)."""
    return Hazard(
        change.state,
        hazard.level,
        change.fields.get("listed_supervision", hazard.listed_supervision),
        change.fields.get("rectified_by", hazard.rectified_by),
    )


def test_the_closed_loop_with_a_rejection() -> None:
    hazard = Hazard("registered", "major")
    steps: list[tuple[str, lifecycle.Change]] = []

    def do(name: str, change: lifecycle.Change) -> None:
        nonlocal hazard
        steps.append((name, change))
        hazard = _then(hazard, change)

    do("assign", lifecycle.assign(hazard, unit="甲建设", person="张工", deadline=LATER, now=NOW))
    do("supervise", lifecycle.supervise(hazard, authority="湖北省住建厅"))
    do("rectify", lifecycle.rectify(hazard, actor="enterprise:甲#3"))
    do("reject", lifecycle.reject(hazard, actor="inspector:李#2"))
    assert hazard.state == "assigned"
    assert hazard.rectified_by is None
    do("rectify", lifecycle.rectify(hazard, actor="enterprise:甲#3"))
    do("verify", lifecycle.verify(hazard, actor="inspector:李#2"))
    do("close", lifecycle.close(hazard, now=NOW))
    assert [c.state for _, c in steps] == [
        "assigned", "assigned", "rectified", "assigned", "rectified", "verified", "closed",
    ]  # fmt: skip
    assert hazard.listed_supervision
    assert steps[0][1].data["deadline"] == LATER.isoformat()
    assert steps[-1][1].fields == {"closed_at": NOW}


def test_the_rectifier_cannot_verify_or_reject_their_own_work() -> None:
    hazard = Hazard("rectified", "general", rectified_by="enterprise:甲#3")
    for act in (lifecycle.verify, lifecycle.reject):
        with pytest.raises(HazardError, match="rectifier"):
            act(hazard, actor="enterprise:甲#3")


@pytest.mark.parametrize(
    ("state", "action"),
    [
        ("registered", lambda h: lifecycle.rectify(h, actor="x")),
        ("registered", lambda h: lifecycle.verify(h, actor="x")),
        ("assigned", lambda h: lifecycle.close(h, now=NOW)),
        ("rectified", lambda h: lifecycle.close(h, now=NOW)),
        ("rectified", lambda h: lifecycle.assign(h, unit="u", person="p", deadline=LATER, now=NOW)),
        ("verified", lambda h: lifecycle.rectify(h, actor="x")),
        ("closed", lambda h: lifecycle.assign(h, unit="u", person="p", deadline=LATER, now=NOW)),
        ("closed", lambda h: lifecycle.supervise(h, authority="厅")),
    ],
)
def test_actions_out_of_order_are_refused(state: str, action: object) -> None:
    assert callable(action)
    with pytest.raises(HazardError):
        action(Hazard(state, "major"))  # type: ignore[arg-type]


def test_assignment_needs_a_future_deadline_and_names() -> None:
    hazard = Hazard("registered", "general")
    with pytest.raises(HazardError, match="future"):
        lifecycle.assign(hazard, unit="u", person="p", deadline=NOW, now=NOW)
    with pytest.raises(HazardError, match="responsible"):
        lifecycle.assign(hazard, unit=" ", person="p", deadline=LATER, now=NOW)


def test_only_open_major_hazards_go_under_listed_supervision_once() -> None:
    with pytest.raises(HazardError, match="major"):
        lifecycle.supervise(Hazard("registered", "general"), authority="厅")
    with pytest.raises(HazardError, match="already"):
        lifecycle.supervise(Hazard("assigned", "major", listed_supervision=True), authority="厅")
    change = lifecycle.supervise(Hazard("rectified", "major"), authority="厅")
    assert change.state == "rectified"
    assert change.fields == {"listed_supervision": True, "supervising_authority": "厅"}


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


def test_levels_of_alerts_follow_the_colours() -> None:
    assert [lifecycle.level_of_alert(g) for g in Grade] == [None, None, None, "general", "major"]
