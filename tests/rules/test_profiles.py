"""Default profiles against the standards' numbers, one table per hazard kind, and the checks
that make bad configuration fail loudly."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules import ProfileError, load_profiles
from rules.profiles import default_profile_dir
from rules.resolve import resolve_rule

PROFILES = load_profiles()
NaN = math.nan


def thresholds(kind: str, rule: str, params: dict[str, Any]) -> tuple[float, ...] | None:
    profile = PROFILES[kind]
    resolved = resolve_rule(profile, profile.rules[rule], params)
    return None if resolved is None else resolved.thresholds


def same(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> bool:
    if a is None or b is None:
        return a is b
    return all(
        (math.isnan(x) and math.isnan(y)) or math.isclose(x, y) for x, y in zip(a, b, strict=True)
    )


PIT = {"pit_grade": 1, "support_type": "bored_pile", "design_depth_m": 20.0}

# (hazard kind, rule, work params, expected BLUE, YELLOW, ORANGE, RED) - the source of each
# expected number is in the comment; NaN = level unused.
CASES = [
    # tower cranes: 90 % pre-warning (practice, notes addendum), rated = red (GB 5144 6.1/6.2)
    ("tower_crane", "moment_ratio", {}, (NaN, 0.9, NaN, 1.0)),
    ("tower_crane", "load_ratio", {}, (NaN, 0.9, NaN, 1.0)),
    ("tower_crane", "load_rated", {"rated_load_t": 8.0}, (NaN, 0.9, NaN, 1.0)),
    ("tower_crane", "load_rated", {}, None),  # no rated load: cannot apply
    ("tower_crane", "load_curve", {"rated_curve": "2.5:8,30:4.1"}, (NaN, 0.9, NaN, 1.0)),
    ("tower_crane", "load_curve", {}, None),  # no curve: cannot apply
    # wind: Beaufort 4 top 7.9, Beaufort 6 stop lifting 10.8 (JGJ 276-2012 3.0.12), 13.8
    ("tower_crane", "wind", {}, (NaN, 7.9, 10.8, 13.8)),
    ("tower_crane", "lifting_in_wind", {}, (NaN, NaN, NaN, 10.8)),
    # tower verticality 4/1000 free-standing, 2/1000 below the top tie (JGJ 196 / JGJ 160 6.5.7)
    ("tower_crane", "tilt", {"free_standing": True}, (NaN, 0.8 * 0.2292, NaN, 0.2292)),
    ("tower_crane", "tilt", {"free_standing": False}, (NaN, 0.8 * 0.1146, NaN, 0.1146)),
    ("tower_crane", "tilt", {}, (NaN, 0.8 * 0.1146, NaN, 0.1146)),  # default: the stricter
    # GB 50497-2019 table 8.0.4, wall top horizontal, piles: grade 1 20~30 mm, 0.2~0.3 % H
    ("excavation", "wall_top_h", PIT, (NaN, 14.0, 20.0, 30.0)),
    ("excavation", "wall_top_h", {**PIT, "design_depth_m": 8.0}, (NaN, 11.2, 16.0, 24.0)),
    ("excavation", "wall_top_h", {**PIT, "pit_grade": 2}, (NaN, 21.0, 30.0, 40.0)),
    ("excavation", "wall_top_h", {**PIT, "pit_grade": 3}, (NaN, 28.0, 40.0, 60.0)),
    (
        "excavation",
        "wall_top_h",
        {**PIT, "support_type": "soil_nail", "pit_grade": 2},
        (NaN, 28.0, 40.0, 50.0),
    ),
    ("excavation", "wall_top_h", {}, (NaN, 14.0, 20.0, 30.0)),  # default: grade 1, strictest
    ("excavation", "wall_top_h_rate", PIT, (NaN, 1.4, 2.0, 3.0)),
    ("excavation", "wall_top_h_rate", {**PIT, "pit_grade": 3}, (NaN, 2.1, 3.0, 5.0)),
    # table 8.0.4 note 2: over 70 % of the rate value three times in a row
    ("excavation", "wall_top_h_rate_3x", PIT, (NaN, NaN, 2.0, NaN)),
    ("excavation", "wall_top_v", PIT, (NaN, 7.0, 10.0, 20.0)),
    ("excavation", "deep_h", PIT, (NaN, 21.0, 30.0, 50.0)),
    ("excavation", "deep_h_rate", PIT, None),  # the table has no rate for bored piles
    ("excavation", "deep_h_rate", {**PIT, "support_type": "sheet_pile"}, (NaN, 1.4, 2.0, 3.0)),
    ("excavation", "column_v", PIT, (NaN, 14.0, 20.0, 30.0)),
    ("excavation", "ground_settlement", {**PIT, "pit_grade": 2}, (NaN, 24.5, 35.0, 45.0)),
    ("excavation", "ground_settlement_rate", {**PIT, "pit_grade": 3}, (NaN, 2.8, 4.0, 5.0)),
    ("excavation", "heave", PIT, (NaN, 21.0, 30.0, 60.0)),
    ("excavation", "strut_force", {**PIT, "strut_design_kn": 3000.0}, (NaN, 0.42, 0.6, 0.8)),
    (
        "excavation",
        "strut_force",
        {**PIT, "pit_grade": 2, "strut_design_kn": 3000.0},
        (NaN, 0.49, 0.7, 0.8),
    ),
    ("excavation", "strut_force", PIT, None),  # no design value: cannot apply
    ("excavation", "anchor_force", {"anchor_design_kn": 500.0}, (NaN, 0.9, 0.8, NaN)),
    # table 8.0.5: water level 1000~2000 mm, 500 mm/d; building tilt 2/1000, 0.0001H/d x3
    ("excavation", "water_level", {}, (NaN, 0.7, 1.0, 2.0)),
    ("excavation", "water_level_rate", {}, (NaN, 0.35, 0.5, NaN)),
    ("excavation", "building_tilt", {}, (NaN, 1.4, 2.0, NaN)),
    ("excavation", "building_tilt_rate_3x", {}, (NaN, NaN, 0.1, NaN)),
    # DBJ/T 15-197-2020 table 8.0.4: 8 mm, 12 mm, 4 permille, pre-warning at 80 %
    ("high_formwork", "settlement", {}, (NaN, 6.4, NaN, 8.0)),
    ("high_formwork", "disp_h", {}, (NaN, 9.6, NaN, 12.0)),
    ("high_formwork", "tilt", {}, (NaN, 3.2, NaN, 4.0)),
    ("high_formwork", "pole_force", {"pole_design_kn": 40.0}, (NaN, 0.8, NaN, 1.0)),
    # methane: 20 % LEL (GB 50838), 25 % / 50 % LEL (GB/T 50493-2019)
    ("gas_pipeline", "methane", {}, (NaN, 20.0, 25.0, 50.0)),
    ("gas_pipeline", "pressure", {"nominal_pressure_kpa": 400.0}, (NaN, 0.1, 0.2, 0.3)),
    # facade: borrowed 2/1000 (GB 50497-2019 table 8.0.5)
    ("facade", "tilt", {}, (NaN, 1.4, 2.0, NaN)),
]


@pytest.mark.parametrize(("kind", "rule", "params", "expected"), CASES)
def test_default_profile_matches_the_standards(
    kind: str, rule: str, params: dict[str, Any], expected: tuple[float, ...] | None
) -> None:
    assert same(thresholds(kind, rule, params), expected)


def test_every_hazard_kind_has_a_profile() -> None:
    assert set(PROFILES) == {"tower_crane", "excavation", "high_formwork", "gas_pipeline", "facade"}


@pytest.mark.parametrize("kind", sorted(PROFILES))
def test_every_number_has_a_source_and_a_confidence(kind: str) -> None:
    for rule in PROFILES[kind].rules.values():
        for level in rule.levels:
            assert level.source.strip()
            if level.confidence == "standard":
                assert any(tag in level.source for tag in ("GB", "JGJ", "DBJ", "CJJ"))
            if level.confidence == "default":
                assert "NF" in level.source or "default" in level.source
        for table in PROFILES[kind].tables.values():
            assert table.source.strip()


def test_the_grade_mapping_is_documented_in_each_profile() -> None:
    for path in default_profile_dir().glob("*.yaml"):
        assert "Grade mapping" in path.read_text(encoding="utf-8"), path.name


def level(value: float, source: str = "GB x") -> dict[str, Any]:
    return {
        "value": value,
        "label_zh": "x",
        "label_en": "x",
        "source": source,
        "confidence": "standard",
    }


def profile_with(**changes: Any) -> dict[str, Any]:
    """A valid facade profile with `changes` applied."""
    body: dict[str, Any] = {
        "hazard_kind": "facade",
        "offline": {"periods": 1, "grade": "blue", "source": "x"},
        "rules": {
            "r": {
                "metric": "tilt_permille",
                "kind": "absolute",
                "levels": {"yellow": level(1.0), "orange": level(2.0)},
            }
        },
    }
    for key, value in changes.items():
        if key in ("metric", "kind", "levels"):
            body["rules"]["r"][key] = value
        else:
            body[key] = value
    return body


def test_a_valid_profile_loads(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump(profile_with()), encoding="utf-8")
    assert set(load_profiles(tmp_path)) == {"facade"}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"hazard_kind": "nuclear"}, "unknown hazard_kind"),
        ({"levels": {"yellow": level(2.0), "orange": level(1.0)}}, "ascending"),
        ({"levels": {"yellow": level(1.0, source="")}}, "source"),
        ({"metric": "nope"}, "catalogue"),
        ({"kind": "magic"}, "unknown kind"),
        ({"offline": {"periods": 1, "grade": "purple", "source": "x"}}, "offline.grade"),
    ],
)
def test_bad_profiles_raise_on_load(tmp_path: Path, changes: dict[str, Any], reason: str) -> None:
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(profile_with(**changes)), encoding="utf-8")
    with pytest.raises(ProfileError, match=reason):
        load_profiles(tmp_path)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"levels": {"red": 10.0}}, "ascending"),
        ({"levels": {"purple": 1.0}}, "unknown grade"),
        ({"thresholds": 1}, "unknown override keys"),
        ({"debounce": 0}, "positive integer"),
        ({"hysteresis": 0.9}, "hysteresis"),
    ],
)
def test_bad_overrides_raise(override: dict[str, Any], reason: str) -> None:
    profile = PROFILES["excavation"]
    with pytest.raises(ProfileError, match=reason):
        resolve_rule(profile, profile.rules["wall_top_h"], PIT, [override])


@pytest.mark.parametrize("curve", ["8 t everywhere", "30:4,10:8", "5:8,30:-1", ""])
def test_bad_rated_curves_raise(curve: str) -> None:
    profile = PROFILES["tower_crane"]
    with pytest.raises(ProfileError, match="rated curve"):
        resolve_rule(profile, profile.rules["load_curve"], {"rated_curve": curve})


def test_overrides_replace_levels_and_can_disable() -> None:
    profile = PROFILES["excavation"]
    rule = profile.rules["wall_top_h"]
    resolved = resolve_rule(profile, rule, PIT, [{"levels": {"orange": 25.0, "yellow": None}}])
    assert resolved is not None
    assert same(resolved.thresholds, (NaN, NaN, 25.0, 30.0))
    assert resolve_rule(profile, rule, PIT, [{"enabled": False}]) is None
