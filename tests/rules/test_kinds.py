"""The kind table (`rules.kinds`): one row per kind, the keys and defaults derived from it, and
the pieces of the engine that are filled from it (compiled tables, transition templates)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import yaml

from rules import Engine, Grade, ProfileError, load_profiles
from rules.kinds import (
    KIND_ORDER,
    KINDS,
    LATE_KINDS,
    LEVEL_KINDS,
    ONE_LEVEL_KINDS,
    OVERRIDE_OPTION_KEYS,
    PROFILE_OPTION_KEYS,
    SENSOR_KINDS,
    ConsecutiveOptions,
    RuleKind,
    StuckOptions,
    build_options,
    required_keys,
)
from rules.messages import VALUE, level_message, level_template, quantity
from rules.types import Action
from tests.rules.streams import OVERRIDES, SERIES

PROFILES = load_profiles()


def test_one_row_per_kind_in_evaluation_order() -> None:
    assert set(KIND_ORDER) == set(get_args(RuleKind))
    assert len(KINDS) == len(set(KIND_ORDER))
    # sensor faults first (a jump keeps its reading out of every structural rule)
    assert KIND_ORDER[:2] == ("jump", "stuck")
    assert {"jump", "stuck"} == SENSOR_KINDS
    assert {"absolute", "ratio", "deviation", "cumulative", "rate", "rated_curve"} == LEVEL_KINDS
    assert {"jump", "stuck", "consecutive", "crane_wind"} == ONE_LEVEL_KINDS
    assert LATE_KINDS == ("absolute", "ratio", "deviation", "cumulative")


def test_the_option_keys_are_those_the_profiles_and_overrides_accept() -> None:
    assert {
        "abs",
        "design_param",
        "nominal_param",
        "window_s",
        "count",
        "share",
        "period_s",
        "of",
        "epsilon",
        "wind_metric",
        "min_load_t",
        "max_wind_age_s",
        "curve_param",
        "radius_metric",
        "max_radius_age_s",
    } == PROFILE_OPTION_KEYS
    assert {
        "window_s",
        "count",
        "share",
        "period_s",
        "epsilon",
        "min_load_t",
        "max_wind_age_s",
        "max_radius_age_s",
    } == OVERRIDE_OPTION_KEYS


@pytest.mark.parametrize(
    ("kind", "keys"),
    [
        ("ratio", ("design_param",)),
        ("deviation", ("nominal_param",)),
        ("consecutive", ("of", "count", "share")),
        ("stuck", ("count",)),
        ("rated_curve", ("curve_param", "radius_metric", "max_radius_age_s")),
        ("crane_wind", ("wind_metric", "min_load_t", "max_wind_age_s")),
        ("absolute", ()),
        ("rate", ()),
    ],
)
def test_required_keys_are_the_options_without_a_default(kind: str, keys: tuple[str]) -> None:
    assert required_keys(kind) == keys


def test_defaults_are_declared_once_and_typed() -> None:
    stuck = build_options("stuck", {"count": 3, "window_s": 10})  # other kinds' keys ignored
    assert stuck == StuckOptions(count=3, epsilon=0.0)
    streak = build_options("consecutive", {"of": "r", "count": 3, "share": 0.7})
    assert isinstance(streak, ConsecutiveOptions)
    assert (streak.period_s, streak.window_s) == (86_400.0, 86_400.0)
    assert build_options("cumulative", {}).abs is True  # type: ignore[union-attr]
    assert build_options("absolute", {}).abs is False  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        build_options("stuck", {})


@pytest.mark.parametrize(
    ("kind", "options", "missing"),
    [
        ("stuck", {}, "count"),
        ("consecutive", {"of": "r", "count": 3}, "share"),
        ("crane_wind", {"wind_metric": "tilt_permille", "min_load_t": 0.1}, "max_wind_age_s"),
    ],
)
def test_a_rule_missing_a_required_option_is_refused_naming_it(
    tmp_path: Path, kind: str, options: dict[str, Any], missing: str
) -> None:
    level = {"value": 1.0, "label_zh": "x", "label_en": "x", "source": "x", "confidence": "default"}
    body = {
        "hazard_kind": "facade",
        "offline": {"periods": 1, "grade": "blue", "source": "x"},
        "rules": {
            "r": {"metric": "tilt_permille", "kind": kind, "levels": {"blue": level}, **options}
        },
    }
    (tmp_path / "facade.yaml").write_text(yaml.safe_dump(body), encoding="utf-8")
    with pytest.raises(ProfileError, match=f"a {kind} rule needs {missing}"):
        load_profiles(tmp_path)


def test_compiled_tables_are_read_only() -> None:
    engine = Engine(SERIES, PROFILES, OVERRIDES)
    tables = engine._tables
    for name in ("thr_both", "direction", "machine", "slot_sx", "lvl_cols", "range_edges"):
        column = getattr(tables, name)
        assert not column.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            column[...] = 0


def test_every_transition_template_says_what_the_message_says() -> None:
    engine = Engine(SERIES, PROFILES, OVERRIDES)
    grades = list(Grade)
    seen = set()
    for slot in engine._tables.slots:
        rule, subject = slot.rule, slot.subject
        for g_from in grades:
            for g_to in grades:
                if g_from == g_to:
                    continue
                action: Action
                if g_to == 0:
                    action = "resolve"
                elif g_from == 0:
                    action = "suspect" if rule.kind in SENSOR_KINDS else "open"
                else:
                    action = "escalate" if g_to > g_from else "deescalate"
                thr = rule.thresholds[max(g_from, g_to) - 1]
                if math.isnan(thr):
                    continue
                template = level_template(action, rule, subject, g_from, g_to, thr)
                assert template is not None
                for value in (0.0, 0.012345, 1.5, 999.96, 1234.5, -3.0, math.nan):
                    q = quantity(rule, subject, value)
                    got = (q.join(template[0]), q.join(template[1]))
                    assert got == level_message(action, rule, subject, g_from, g_to, value, thr)
                seen.add(rule.kind)
    assert seen == set(KIND_ORDER)


def test_a_label_holding_the_placeholder_is_not_templated() -> None:
    engine = Engine(SERIES, PROFILES, OVERRIDES)
    slot = engine._tables.slots[0]
    rule = replace(slot.rule, labels=tuple((f"a{VALUE}b", "c") for _ in slot.rule.labels))
    top = rule.top_grade()
    thr = rule.thresholds[top - 1]
    assert level_template("open", rule, slot.subject, Grade.NORMAL, top, thr) is None


@pytest.mark.parametrize("templated", [True, False])
def test_the_engine_explains_a_slot_like_level_message(
    monkeypatch: pytest.MonkeyPatch, templated: bool
) -> None:
    if not templated:  # as when a label holds the placeholder
        monkeypatch.setattr("rules.transitions.level_template", lambda *_: None)
    engine = Engine(SERIES, PROFILES, OVERRIDES)
    explainer = engine._explain
    tables = engine._tables
    i = next(i for i, s in enumerate(tables.slots) if s.rule.kind == "absolute")
    top = int(tables.level[i])
    rows = explainer.levels([i, i], [0, top], [top, 0], [1, 2], [2.5, 0.123])
    s = tables.slots[i]
    for row, value in zip(rows, (2.5, 0.123), strict=True):
        want = level_message(row[2], s.rule, s.subject, row[3], row[4], value, row[7])
        assert (row[8], row[9]) == want
        assert np.isfinite(row[7])
