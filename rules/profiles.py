"""Threshold profiles: loading and checking the data files of `rules/profiles/`.

A profile (`rules/profiles/<hazard_kind>.yaml`) lists the rules of a hazard kind, each with up to
four graded levels whose values carry their source. A level value is a number, or a lookup in a
table of the profile keyed by work parameters (pit safety grade, support type, free-standing
crane), optionally scaled by a factor. `rules.resolve` turns a rule and a work's parameters, plus
any override rows from the `thresholds` table, into a `ResolvedRule` of plain floats.

Bad configuration is loud: every check raises `ProfileError` when a profile loads, never while
readings are evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

from rules.checks import (
    GRADE_NAMES,
    as_count,
    as_mapping,
    as_number,
    check_ascending,
    check_options,
)
from rules.kinds import LEVEL_KINDS, ONE_LEVEL_KINDS, PROFILE_OPTION_KEYS, RuleKind, required_keys
from rules.types import Grade, ProfileError

Confidence = Literal["standard", "practice", "default"]

_RULE_KEYS = {
    "metric",
    "kind",
    "direction",
    "hysteresis",
    "debounce",
    "resolve_after",
    "levels",
    "table",
}


@dataclass(frozen=True, slots=True)
class TableRef:
    """A level value looked up in a profile table: `factor` x the row's `field` at its `end`.

    `end` picks an end of a standard's range such as '20~30 mm': 0 the strict (first listed)
    end, 1 the lenient one.
    """

    table: str
    field: str
    end: int = 0
    factor: float = 1.0


@dataclass(frozen=True, slots=True)
class LevelDef:
    """One graded level of a rule as written in the profile, with its source."""

    grade: Grade
    value: float | TableRef
    label_zh: str
    label_en: str
    source: str
    confidence: Confidence


@dataclass(frozen=True, slots=True)
class RuleDef:
    """One rule of a profile, before resolution for a work."""

    rule: str
    metric: str
    kind: RuleKind
    direction: int
    hysteresis: float
    debounce: int
    resolve_after: int
    levels: tuple[LevelDef, ...]
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Table:
    """A table of a standard: rows matched on work parameters, each giving named values."""

    name: str
    source: str
    confidence: Confidence
    defaults: Mapping[str, Any]
    rows: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class OfflineDef:
    """Missing-data rule of a hazard kind: silent for `periods` sampling periods (at least
    `min_silence_s` seconds) opens an offline alert of `grade`."""

    periods: float
    min_silence_s: float
    grade: Grade
    source: str


@dataclass(frozen=True, slots=True)
class Profile:
    """The default threshold profile of one hazard kind."""

    hazard_kind: str
    rules: Mapping[str, RuleDef]
    tables: Mapping[str, Table]
    offline: OfflineDef
    path: str = ""

    def rules_for(self, metric: str) -> list[RuleDef]:
        """The rules that evaluate `metric`, in profile order."""
        return [r for r in self.rules.values() if r.metric == metric]


def default_profile_dir() -> Path:
    """The folder of the shipped profiles, `rules/profiles/`."""
    return Path(__file__).with_name("profiles")


def load_profiles(
    directory: Path | None = None,
    catalogue: Mapping[str, Any] | None = None,
) -> dict[str, Profile]:
    """Load and check every `*.yaml` profile of `directory`.

    Args:
        directory: folder of profile files; default the shipped `rules/profiles/`.
        catalogue: hazard kinds to check metrics and parameters against (code -> object with
            `metrics` and `params` mappings); default the shipped `hazmon.catalogue`.

    Returns:
        Profiles by hazard kind.

    Raises:
        ProfileError: a file is malformed, names an unknown kind, metric, parameter or grade,
            has a level without a source, or thresholds that are not ascending by grade.
    """
    if catalogue is None:
        from hazmon.catalogue import catalogue as shipped

        catalogue = shipped()
    folder = directory or default_profile_dir()
    profiles: dict[str, Profile] = {}
    for path in sorted(folder.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        profile = parse_profile(raw, str(path), catalogue)
        if profile.hazard_kind in profiles:
            raise ProfileError(str(path), f"second profile for {profile.hazard_kind!r}")
        profiles[profile.hazard_kind] = profile
    if not profiles:
        raise ProfileError(str(folder), "no *.yaml profiles found")
    return profiles


def parse_profile(raw: object, where: str, catalogue: Mapping[str, Any]) -> Profile:
    """Build and check one profile from its YAML structure (see `load_profiles`)."""
    body = as_mapping(raw, where)
    kind = str(body.get("hazard_kind"))
    if kind not in catalogue:
        raise ProfileError(where, f"unknown hazard_kind {kind!r}")
    known_metrics = catalogue[kind].metrics
    known_params = catalogue[kind].params
    tables = {
        name: _parse_table(name, t, f"{where}: table {name}", known_params)
        for name, t in as_mapping(body.get("tables") or {}, where).items()
    }
    rules: dict[str, RuleDef] = {}
    for rule_id, spec in as_mapping(body.get("rules"), f"{where}: rules").items():
        rwhere = f"{where}: rule {rule_id}"
        rule = _parse_rule(str(rule_id), as_mapping(spec, rwhere), rwhere, tables)
        if rule.metric not in known_metrics:
            raise ProfileError(rwhere, f"metric {rule.metric!r} is not in the catalogue of {kind}")
        for key in ("design_param", "nominal_param"):
            if key in rule.options and rule.options[key] not in known_params:
                raise ProfileError(rwhere, f"{key} {rule.options[key]!r} is not a {kind} parameter")
        for key in ("wind_metric", "radius_metric"):
            if key in rule.options and rule.options[key] not in known_metrics:
                raise ProfileError(rwhere, f"{key} is not in the catalogue")
        if "curve_param" in rule.options and rule.options["curve_param"] not in known_params:
            raise ProfileError(rwhere, "curve_param is not a parameter of the kind")
        rules[rule.rule] = rule
    _check_rule_set(rules, where)
    offline = _parse_offline(as_mapping(body.get("offline"), f"{where}: offline"), where)
    return Profile(str(kind), rules, tables, offline, where)


def _check_rule_set(rules: Mapping[str, RuleDef], where: str) -> None:
    """One rule per (metric, kind); a consecutive rule's `of` names a rate rule on its metric."""
    seen: set[tuple[str, str]] = set()
    for rule in rules.values():
        key = (rule.metric, rule.kind)
        if key in seen:
            raise ProfileError(where, f"two {rule.kind} rules on metric {rule.metric!r}")
        seen.add(key)
        if rule.kind == "consecutive":
            base = rules.get(str(rule.options.get("of", "")))
            if base is None or base.kind != "rate" or base.metric != rule.metric:
                raise ProfileError(
                    f"{where}: rule {rule.rule}", "'of' must name a rate rule on the same metric"
                )


def _parse_rule(
    rule_id: str, spec: Mapping[str, Any], where: str, tables: Mapping[str, Table]
) -> RuleDef:
    """One rule of a profile: known keys and kind, its levels (one for a one-level kind,
    ascending for a level kind), the options its kind requires (`rules.kinds`), and bounds."""
    unknown = set(spec) - _RULE_KEYS - PROFILE_OPTION_KEYS
    if unknown:
        raise ProfileError(where, f"unknown keys {sorted(unknown)}")
    kind = spec.get("kind")
    if kind not in get_args(RuleKind):
        raise ProfileError(where, f"unknown kind {kind!r}")
    direction = {"up": 1, "down": -1}.get(spec.get("direction", "up"))
    if direction is None:
        raise ProfileError(where, "direction must be 'up' or 'down'")
    levels = []
    for name, lv in as_mapping(spec.get("levels"), f"{where}: levels").items():
        if name not in GRADE_NAMES:
            raise ProfileError(where, f"unknown grade {name!r} (blue, yellow, orange, red)")
        levels.append(
            _parse_level(
                GRADE_NAMES[name],
                as_mapping(lv, f"{where}: {name}"),
                f"{where}: {name}",
                tables,
                str(spec.get("table", "")),
            )
        )
    levels.sort(key=lambda lv: lv.grade)
    if not levels:
        raise ProfileError(where, "a rule needs at least one level")
    if kind in ONE_LEVEL_KINDS and len(levels) != 1:
        raise ProfileError(where, f"a {kind} rule has exactly one level")
    numbers = [lv.value for lv in levels if isinstance(lv.value, float)]
    if len(numbers) == len(levels) and kind in LEVEL_KINDS:
        check_ascending([direction * v for v in numbers], where)
    options = {k: spec[k] for k in PROFILE_OPTION_KEYS if k in spec}
    for key in required_keys(str(kind)):
        if key not in options:
            raise ProfileError(where, f"a {kind} rule needs {key}")
    rule = RuleDef(
        rule=rule_id,
        metric=str(spec.get("metric")),
        kind=cast(RuleKind, kind),
        direction=direction,
        hysteresis=as_number(spec.get("hysteresis", 0.0), where, "hysteresis", lo=0.0, hi=0.5),
        debounce=as_count(spec.get("debounce", 1), where, "debounce"),
        resolve_after=as_count(spec.get("resolve_after", 1), where, "resolve_after"),
        levels=tuple(levels),
        options=options,
    )
    check_options(rule.options, where)
    return rule


def _parse_level(
    grade: Grade,
    spec: Mapping[str, Any],
    where: str,
    tables: Mapping[str, Table],
    rule_table: str,
) -> LevelDef:
    """One level of a rule: a number or a lookup in one of the profile's tables, its labels,
    and a non-empty source with its confidence."""
    for key in ("value", "label_zh", "label_en", "source", "confidence"):
        if key not in spec:
            raise ProfileError(where, f"level needs {key}")
    if spec["confidence"] not in get_args(Confidence):
        raise ProfileError(where, "confidence must be standard, practice or default")
    if not str(spec["source"]).strip():
        raise ProfileError(where, "every level needs its source")
    raw = spec["value"]
    value: float | TableRef
    if isinstance(raw, Mapping):
        ref = TableRef(
            table=str(raw.get("table", rule_table)),
            field=str(raw.get("field")),
            end=int(raw.get("end", 0)),
            factor=as_number(raw.get("factor", 1.0), where, "factor", lo=1e-9),
        )
        table = tables.get(ref.table)
        if table is None:
            raise ProfileError(where, f"unknown table {ref.table!r}")
        if ref.end not in (0, 1):
            raise ProfileError(where, "end must be 0 (strict) or 1 (lenient)")
        if not any(ref.field in row for row in table.rows):
            raise ProfileError(where, f"no row of table {ref.table} has field {ref.field!r}")
        value = ref
    else:
        value = as_number(raw, where, "value")
    return LevelDef(
        grade,
        value,
        str(spec["label_zh"]),
        str(spec["label_en"]),
        str(spec["source"]),
        spec["confidence"],
    )


def _parse_table(name: str, raw: object, where: str, params: Mapping[str, Any]) -> Table:
    """A table of a standard: its source, and rows matching known work parameters, each value
    a number or a [strict, lenient] range."""
    body = as_mapping(raw, where)
    for key in ("source", "confidence", "rows"):
        if key not in body:
            raise ProfileError(where, f"table needs {key}")
    if body["confidence"] not in get_args(Confidence):
        raise ProfileError(where, "confidence must be standard, practice or default")
    defaults = as_mapping(body.get("defaults") or {}, where)
    rows = []
    for i, row in enumerate(body["rows"]):
        row = as_mapping(row, f"{where}: row {i}")
        for key in as_mapping(row.get("match") or {}, where):
            if key not in params:
                raise ProfileError(where, f"row {i} matches on unknown parameter {key!r}")
        for fname, values in row.items():
            if fname == "match":
                continue
            seq = values if isinstance(values, list) else [values]
            nums = [as_number(v, f"{where}: row {i}", fname, lo=0.0) for v in seq]
            if len(nums) not in (1, 2) or (len(nums) == 2 and nums[0] > nums[1]):
                raise ProfileError(where, f"row {i} {fname}: one value or [strict, lenient]")
        rows.append(row)
    return Table(name, str(body["source"]), body["confidence"], defaults, tuple(rows))


def _parse_offline(body: Mapping[str, Any], where: str) -> OfflineDef:
    """The offline rule of a hazard kind: periods, minimum silence, grade and source."""
    grade = GRADE_NAMES.get(str(body.get("grade")))
    if grade is None:
        raise ProfileError(where, "offline.grade must be blue, yellow, orange or red")
    if not str(body.get("source", "")).strip():
        raise ProfileError(where, "offline needs its source")
    return OfflineDef(
        periods=as_number(body.get("periods"), where, "offline.periods", lo=1.0),
        min_silence_s=as_number(
            body.get("min_silence_s", 0.0), where, "offline.min_silence_s", lo=0.0
        ),
        grade=grade,
        source=str(body["source"]),
    )


@cache
def shipped_profiles() -> Mapping[str, Profile]:
    """The shipped default profiles, loaded and checked once."""
    return load_profiles()
