"""Design values and overrides are checked with the resolution the engine uses, and a work the
engine cannot resolve is isolated instead of stopping the engine (issue: "No message, value or
client can stop hazmon", item 4)."""

from __future__ import annotations

from typing import Any

import pytest

from rules import Engine, Override, ProfileError, SeriesInfo, check_work, resolve_series
from rules.profiles import shipped_profiles

CRANE = {"rated_load_t": 8, "rated_moment_tm": 160, "rated_curve": "2.5:8,16:8,50:2.3"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"rated_curve": "a"}, "rated_curve"),
        ({"rated_curve": "10:2,5:3"}, "rated_curve"),  # radii not increasing
        ({"rated_curve": "2000:1"}, "rated_curve"),  # a radius no crane has
        ({"rated_curve": "x" * 5000}, "rated_curve"),  # longer than any curve
        ({"rated_load_t": 10**400}, "rated_load_t"),  # 400 digits
        ({"rated_load_t": -8}, "rated_load_t"),
        ({"rated_load_t": 0}, "rated_load_t"),
        ({"rated_load_t": 1e300}, "rated_load_t"),
        ({"rated_load_t": "8"}, "rated_load_t"),
        ({"free_standing": 1}, "free_standing"),
        ({"no_such_param": 1}, "no_such_param"),
    ],
)
def test_a_design_value_the_engine_cannot_use_is_refused_naming_it(
    params: dict[str, Any], field: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        check_work("tower_crane", {**CRANE, **params})
    assert caught.value.field == field


def test_good_design_values_pass_and_say_which_rules_will_not_apply() -> None:
    assert check_work("tower_crane", CRANE) == []
    notes = check_work("excavation", {"pit_grade": 1})
    assert any("strut_force_kn" in note for note in notes), notes


@pytest.mark.parametrize(
    "override",
    [
        {"window_s": 1e300},  # would overflow the engine's int64 microseconds
        {"count": 10**6},
        {"debounce": 10**400},
        {"levels": {"red": 10**400}},
        {"levels": {"red": "high"}},
        {"levels": {"yellow": 30, "red": 10}},  # not ascending
    ],
)
def test_a_work_override_the_engine_cannot_use_is_refused(override: dict[str, Any]) -> None:
    rule = "wall_top_h_rate" if "window_s" in override or "count" in override else "wall_top_h"
    if "count" in override:
        rule = "wall_top_h_stuck"
    rows = [Override(rule, "top_disp_h_mm", override, work_id=1)]
    with pytest.raises(ProfileError) as caught:
        check_work("excavation", {"pit_grade": 1, "design_depth_m": 12}, rows)
    assert caught.value.field is None


def test_an_unknown_hazard_kind_is_refused() -> None:
    with pytest.raises(ProfileError, match="unknown hazard kind"):
        check_work("bridge", {})


def _series(sid: int, work_id: int, metric: str, params: dict[str, Any], kind: str) -> SeriesInfo:
    return SeriesInfo(sid, sid, work_id, "S1", f"D{sid}", kind, metric, params, 1.0)


def test_the_engine_isolates_the_works_it_cannot_resolve_and_grades_the_others() -> None:
    good = _series(1, 1, "moment_ratio", CRANE, "tower_crane")
    bad_curve = _series(2, 2, "load_t", {**CRANE, "rated_curve": "a"}, "tower_crane")
    huge = _series(3, 3, "load_t", {"rated_load_t": 10**400}, "tower_crane")
    unknown_kind = _series(4, 4, "x", {}, "bridge")
    unknown_metric = _series(5, 5, "no_metric", {}, "tower_crane")
    bad_override = _series(6, 6, "top_disp_h_mm", {"pit_grade": 1}, "excavation")
    overrides = [Override("wall_top_h_rate", "top_disp_h_mm", {"window_s": 1e300}, work_id=6)]
    series = [good, bad_curve, huge, unknown_kind, unknown_metric, bad_override]
    engine = Engine(series, shipped_profiles(), overrides)
    assert sorted(engine.isolated) == [2, 3, 4, 5, 6]
    assert "rated curve" in engine.isolated[2]
    assert [s.series_id for s in engine.series] == [1]
    assert engine.rules_of(1), "the good work keeps its rules"
    resolution = resolve_series(series, shipped_profiles(), _catalogue(), overrides)
    assert sorted(resolution.isolated) == sorted(engine.isolated)
    assert sorted(resolution.rules) == [1]


def test_isolation_passed_in_by_the_caller_leaves_those_works_out() -> None:
    engine = Engine(
        [_series(1, 1, "moment_ratio", CRANE, "tower_crane")],
        shipped_profiles(),
        isolated={1: "design values of work TC1: cannot be read"},
    )
    assert engine.series == []
    assert engine.isolated == {1: "design values of work TC1: cannot be read"}


def _catalogue() -> Any:
    from hazmon.catalogue import catalogue

    return catalogue()


def test_works_with_the_same_parameters_share_their_resolved_rules() -> None:
    pit = {"pit_grade": 2, "support_type": "bored_pile", "design_depth_m": 12}
    series = [
        _series(1, 1, "top_disp_h_mm", pit, "excavation"),
        _series(2, 2, "top_disp_h_mm", dict(pit), "excavation"),
        # a float or a bool is not the int it equals (they resolve differently)
        _series(3, 3, "top_disp_h_mm", {**pit, "pit_grade": 2.0}, "excavation"),
        _series(4, 4, "top_disp_h_mm", {**pit, "pit_grade": True}, "excavation"),
        _series(5, 5, "top_disp_h_mm", dict(pit), "excavation"),
    ]
    overrides = [Override("wall_top_h", "top_disp_h_mm", {"debounce": 3}, series_id=2)]
    rules = resolve_series(series, shipped_profiles(), _catalogue(), overrides).rules
    alone = {
        s.series_id: resolve_series([s], shipped_profiles(), _catalogue(), overrides).rules[
            s.series_id
        ]
        for s in series
    }
    assert rules == alone  # the same rules as resolved one by one
    assert rules[1] is not rules[2]  # each series its own list
    first, second = rules[1][0], rules[2][0]
    assert first.rule == second.rule == "wall_top_h"
    assert (first.debounce, second.debounce) == (1, 3)  # series 2 has its own override
    assert all(a is b for a, b in zip(rules[1], rules[5], strict=True))  # shared objects
    # the table matches 2.0 as 2, but the labels take an int pit grade only
    assert rules[1][0].labels[2][0] == "二级基坑预警值"
    assert rules[3][0].labels[2][0] == rules[4][0].labels[2][0] == "一级基坑预警值"
