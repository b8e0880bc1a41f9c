"""Threshold profiles: loading and checking the data files, and resolving them for one series.

A profile (`rules/profiles/<hazard_kind>.yaml`) lists the rules of a hazard kind, each with up to
four graded levels whose values carry their source. A level value is a number, or a lookup in a
table of the profile keyed by work parameters (pit safety grade, support type, free-standing
crane), optionally scaled by a factor. Resolution turns a rule and a work's parameters, plus any
override rows from the `thresholds` table, into a `ResolvedRule` of plain floats.

Bad configuration is loud: every check raises `ProfileError` when a profile loads or an override
is applied, never while readings are evaluated.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

from rules.types import Grade, Override, ProfileError, SeriesInfo

RuleKind = Literal[
    "absolute",
    "ratio",
    "deviation",
    "cumulative",
    "rate",
    "consecutive",
    "stuck",
    "jump",
    "crane_wind",
    "rated_curve",
]
Confidence = Literal["standard", "practice", "default"]

LEVEL_KINDS: frozenset[str] = frozenset(
    {"absolute", "ratio", "deviation", "cumulative", "rate", "rated_curve"}
)
"""Kinds whose measure is compared with up to four ascending thresholds."""
SENSOR_KINDS: frozenset[str] = frozenset({"stuck", "jump"})
"""Kinds that mark a series suspect (action 'suspect') instead of raising a structural alarm."""

_GRADE_NAMES = {
    "blue": Grade.BLUE,
    "yellow": Grade.YELLOW,
    "orange": Grade.ORANGE,
    "red": Grade.RED,
}
_PIT_GRADE_ZH = {1: "一级", 2: "二级", 3: "三级"}
_OPTION_KEYS = {
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
}
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
_OVERRIDE_KEYS = {
    "levels",
    "hysteresis",
    "debounce",
    "resolve_after",
    "enabled",
    "window_s",
    "count",
    "share",
    "period_s",
    "epsilon",
    "min_load_t",
    "max_wind_age_s",
    "max_radius_age_s",
}
DAY_S = 86_400.0


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


@dataclass(frozen=True, slots=True)
class ResolvedRule:
    """A rule resolved for one series: plain numbers, ready for the engine's dense arrays.

    Attributes:
        rule: rule id (stored in `alerts.rule`).
        kind: the rule kind.
        metric: the metric it evaluates.
        direction: +1 when larger values are worse, -1 when smaller are (e.g. anchor tension).
        thresholds: per grade BLUE..RED the threshold in the measure's unit (NaN: level unused).
        labels: per grade BLUE..RED the (Chinese, English) description of the threshold.
        hysteresis: share of a threshold by which the measure must fall back before that level
            counts as cleared (0.05: cleared below 95 % of the threshold).
        debounce: readings at or over a level needed to open or escalate to it.
        resolve_after: readings under a level (less hysteresis) needed to leave it.
        options: kind-specific numbers (window_s, count, share, period_s, epsilon, scale, offset,
            abs, min_load_t, max_wind_age_s, wind_metric).
        sources: per grade the source text, for documentation and the API.
    """

    rule: str
    kind: RuleKind
    metric: str
    direction: int
    thresholds: tuple[float, float, float, float]
    labels: tuple[tuple[str, str], ...]
    hysteresis: float
    debounce: int
    resolve_after: int
    options: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def top_grade(self) -> Grade:
        """The highest grade this rule can give (NORMAL if every level is unused)."""
        used = [i + 1 for i, t in enumerate(self.thresholds) if not math.isnan(t)]
        return Grade(max(used)) if used else Grade.NORMAL


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
    body = _mapping(raw, where)
    kind = str(body.get("hazard_kind"))
    if kind not in catalogue:
        raise ProfileError(where, f"unknown hazard_kind {kind!r}")
    known_metrics = catalogue[kind].metrics
    known_params = catalogue[kind].params
    tables = {
        name: _parse_table(name, t, f"{where}: table {name}", known_params)
        for name, t in _mapping(body.get("tables") or {}, where).items()
    }
    rules: dict[str, RuleDef] = {}
    for rule_id, spec in _mapping(body.get("rules"), f"{where}: rules").items():
        rwhere = f"{where}: rule {rule_id}"
        rule = _parse_rule(str(rule_id), _mapping(spec, rwhere), rwhere, tables)
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
    offline = _parse_offline(_mapping(body.get("offline"), f"{where}: offline"), where)
    return Profile(str(kind), rules, tables, offline, where)


def _check_rule_set(rules: Mapping[str, RuleDef], where: str) -> None:
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
    unknown = set(spec) - _RULE_KEYS - _OPTION_KEYS
    if unknown:
        raise ProfileError(where, f"unknown keys {sorted(unknown)}")
    kind = spec.get("kind")
    if kind not in get_args(RuleKind):
        raise ProfileError(where, f"unknown kind {kind!r}")
    direction = {"up": 1, "down": -1}.get(spec.get("direction", "up"))
    if direction is None:
        raise ProfileError(where, "direction must be 'up' or 'down'")
    levels = []
    for name, lv in _mapping(spec.get("levels"), f"{where}: levels").items():
        if name not in _GRADE_NAMES:
            raise ProfileError(where, f"unknown grade {name!r} (blue, yellow, orange, red)")
        levels.append(
            _parse_level(
                _GRADE_NAMES[name],
                _mapping(lv, f"{where}: {name}"),
                f"{where}: {name}",
                tables,
                str(spec.get("table", "")),
            )
        )
    levels.sort(key=lambda lv: lv.grade)
    if not levels:
        raise ProfileError(where, "a rule needs at least one level")
    if kind in SENSOR_KINDS | {"consecutive", "crane_wind"} and len(levels) != 1:
        raise ProfileError(where, f"a {kind} rule has exactly one level")
    numbers = [lv.value for lv in levels if isinstance(lv.value, float)]
    if len(numbers) == len(levels) and kind in LEVEL_KINDS:
        _check_ascending([direction * v for v in numbers], where)
    options = {k: spec[k] for k in _OPTION_KEYS if k in spec}
    if kind == "ratio" and "design_param" not in options:
        raise ProfileError(where, "a ratio rule needs design_param")
    if kind == "deviation" and "nominal_param" not in options:
        raise ProfileError(where, "a deviation rule needs nominal_param")
    if kind == "consecutive":
        for key in ("of", "count", "share"):
            if key not in options:
                raise ProfileError(where, f"a consecutive rule needs {key}")
    if kind == "stuck" and "count" not in options:
        raise ProfileError(where, "a stuck rule needs count")
    if kind == "rated_curve":
        for key in ("curve_param", "radius_metric", "max_radius_age_s"):
            if key not in options:
                raise ProfileError(where, f"a rated_curve rule needs {key}")
    if kind == "crane_wind":
        for key in ("wind_metric", "min_load_t", "max_wind_age_s"):
            if key not in options:
                raise ProfileError(where, f"a crane_wind rule needs {key}")
    rule = RuleDef(
        rule=rule_id,
        metric=str(spec.get("metric")),
        kind=cast(RuleKind, kind),
        direction=direction,
        hysteresis=_number(spec.get("hysteresis", 0.0), where, "hysteresis", lo=0.0, hi=0.5),
        debounce=_count(spec.get("debounce", 1), where, "debounce"),
        resolve_after=_count(spec.get("resolve_after", 1), where, "resolve_after"),
        levels=tuple(levels),
        options=options,
    )
    _check_options(rule.options, where)
    return rule


def _check_options(options: Mapping[str, Any], where: str) -> None:
    for key in ("window_s", "period_s", "max_wind_age_s", "max_radius_age_s"):
        if key in options:
            _number(options[key], where, key, lo=1e-3, hi=MAX_SPAN_S)
    if "share" in options:
        _number(options["share"], where, "share", lo=1e-9, hi=1.0)
    for key in ("epsilon", "min_load_t"):
        if key in options:
            _number(options[key], where, key, lo=0.0)
    if "count" in options:
        _count(options["count"], where, "count")
    if "abs" in options and not isinstance(options["abs"], bool):
        raise ProfileError(where, "abs must be true or false")


def _parse_level(
    grade: Grade,
    spec: Mapping[str, Any],
    where: str,
    tables: Mapping[str, Table],
    rule_table: str,
) -> LevelDef:
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
            factor=_number(raw.get("factor", 1.0), where, "factor", lo=1e-9),
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
        value = _number(raw, where, "value")
    return LevelDef(
        grade,
        value,
        str(spec["label_zh"]),
        str(spec["label_en"]),
        str(spec["source"]),
        spec["confidence"],
    )


def _parse_table(name: str, raw: object, where: str, params: Mapping[str, Any]) -> Table:
    body = _mapping(raw, where)
    for key in ("source", "confidence", "rows"):
        if key not in body:
            raise ProfileError(where, f"table needs {key}")
    if body["confidence"] not in get_args(Confidence):
        raise ProfileError(where, "confidence must be standard, practice or default")
    defaults = _mapping(body.get("defaults") or {}, where)
    rows = []
    for i, row in enumerate(body["rows"]):
        row = _mapping(row, f"{where}: row {i}")
        for key in _mapping(row.get("match") or {}, where):
            if key not in params:
                raise ProfileError(where, f"row {i} matches on unknown parameter {key!r}")
        for fname, values in row.items():
            if fname == "match":
                continue
            seq = values if isinstance(values, list) else [values]
            nums = [_number(v, f"{where}: row {i}", fname, lo=0.0) for v in seq]
            if len(nums) not in (1, 2) or (len(nums) == 2 and nums[0] > nums[1]):
                raise ProfileError(where, f"row {i} {fname}: one value or [strict, lenient]")
        rows.append(row)
    return Table(name, str(body["source"]), body["confidence"], defaults, tuple(rows))


def _parse_offline(body: Mapping[str, Any], where: str) -> OfflineDef:
    grade = _GRADE_NAMES.get(str(body.get("grade")))
    if grade is None:
        raise ProfileError(where, "offline.grade must be blue, yellow, orange or red")
    if not str(body.get("source", "")).strip():
        raise ProfileError(where, "offline needs its source")
    return OfflineDef(
        periods=_number(body.get("periods"), where, "offline.periods", lo=1.0),
        min_silence_s=_number(
            body.get("min_silence_s", 0.0), where, "offline.min_silence_s", lo=0.0
        ),
        grade=grade,
        source=str(body["source"]),
    )


# --- resolution for a work -----------------------------------------------------------------


def label_context(work_params: Mapping[str, Any]) -> dict[str, str]:
    """Placeholders for level labels, derived from a work's parameters."""
    pit = _int_or(work_params.get("pit_grade"), 1)
    free = bool(work_params.get("free_standing", False))
    return {
        "pit_grade": str(pit),
        "pit_grade_zh": _PIT_GRADE_ZH.get(pit, f"{pit}级"),
        "tie_state_zh": "独立状态 4/1000" if free else "最高附着点以下 2/1000",
        "tie_state_en": "free-standing, 4/1000" if free else "below the top tie, 2/1000",
        "support_type": str(work_params.get("support_type", "")),
    }


def lookup(table: Table, field_name: str, end: int, work_params: Mapping[str, Any]) -> float:
    """The value of `field_name` at `end` in the first row matching the work's parameters.

    Missing parameters take the table's `defaults` (documented conservative choices). A row
    matches when each of its `match` keys equals the parameter or the parameter is in its list.
    A matching row without the field means the standard gives no value: NaN (level unused).
    When no row matches, the strictest value of the rows that have the field is used
    (conservative default). Field `abs` with a sibling `share_h` follows GB 50497-2019 table
    8.0.4 note 1: the smaller of the absolute value and share_h x design depth H (metres, to mm).
    """
    params = {**table.defaults, **work_params}
    matching = [r for r in table.rows if _matches(r.get("match") or {}, params)]
    if matching:
        row = matching[0]
        return _row_value(row, field_name, end, params) if field_name in row else math.nan
    values = [_row_value(r, field_name, end, params) for r in table.rows if field_name in r]
    return min(values, default=math.nan)


def _matches(match: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    for key, want in match.items():
        have = params.get(key)
        if isinstance(want, list):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


def design_value(work_params: Mapping[str, Any], name: str, where: str) -> float | None:
    """A work's design value that a rule divides by or scales with: None if it is not given.

    Raises:
        ProfileError: the value is given but is not a positive finite number within
            ±MAX_MAGNITUDE (`field` names the parameter).
    """
    raw = work_params.get(name)
    if raw is None:
        return None
    try:
        value = _number(raw, where, name)
    except ProfileError as exc:
        raise ProfileError(where, exc.reason, field=name) from None
    if value <= 0:
        raise ProfileError(where, f"{name} must be > 0, got {_show(raw)}", field=name)
    return value


def _row_value(
    row: Mapping[str, Any], field_name: str, end: int, params: Mapping[str, Any]
) -> float:
    values = row[field_name] if isinstance(row[field_name], list) else [row[field_name]]
    if end >= len(values):  # a single value has no lenient end
        return math.nan
    value = float(values[end])
    if field_name == "abs" and "share_h" in row:
        depth_m = design_value(params, "design_depth_m", "table lookup")
        if depth_m is not None:
            shares = row["share_h"] if isinstance(row["share_h"], list) else [row["share_h"]]
            share = float(shares[min(end, len(shares) - 1)])
            value = min(value, share * depth_m * 1000.0)
    return value


def resolve_rule(
    profile: Profile,
    rule: RuleDef,
    work_params: Mapping[str, Any],
    overrides: Sequence[Mapping[str, Any]] = (),
    where: str = "",
) -> ResolvedRule | None:
    """Resolve `rule` for a work, then apply override rows (work first, then series).

    Args:
        profile: the hazard kind's profile (for its tables).
        rule: the rule to resolve.
        work_params: the work's design parameters.
        overrides: `thresholds.params` objects, applied in order; see `check_override`.
        where: where the overrides come from, for error messages.

    Returns:
        The resolved rule, or None when it is disabled or cannot apply (no level has a value,
        or the design/nominal value it divides by is missing).

    Raises:
        ProfileError: an override is malformed or leaves thresholds not ascending by grade.
    """
    context = label_context(work_params)
    thresholds = [math.nan] * 4
    labels = [("", "")] * 4
    sources = [""] * 4
    for lv in rule.levels:
        if isinstance(lv.value, TableRef):
            ref = lv.value
            value = lookup(profile.tables[ref.table], ref.field, ref.end, work_params) * ref.factor
        else:
            value = lv.value
        i = lv.grade - 1
        thresholds[i] = value
        labels[i] = (lv.label_zh.format(**context), lv.label_en.format(**context))
        sources[i] = lv.source
    # Table values can collapse (a strict and a lenient end both cut to share_h x H): the higher
    # grade keeps the value and the lower level is left unused.
    for i in (2, 1, 0):
        above = [t for t in thresholds[i + 1 :] if not math.isnan(t)]
        if (
            above
            and not math.isnan(thresholds[i])
            and rule.direction * (above[0] - thresholds[i]) <= 0
        ):
            thresholds[i] = math.nan
    options: dict[str, Any] = dict(rule.options)
    hysteresis, debounce, resolve_after = rule.hysteresis, rule.debounce, rule.resolve_after
    for ov in overrides:
        check_override(ov, where or f"override of {rule.rule}")
        if ov.get("enabled") is False:
            return None
        for name, value in (ov.get("levels") or {}).items():
            i = _GRADE_NAMES[name] - 1
            thresholds[i] = math.nan if value is None else float(value)
            if value is not None:
                labels[i] = (
                    f"{Grade(i + 1).label_zh}设定值（按工程配置）",
                    f"{Grade(i + 1).label_en} value set for this work",
                )
                sources[i] = str(ov.get("source", "per-work override"))
        hysteresis = float(ov.get("hysteresis", hysteresis))
        debounce = int(ov.get("debounce", debounce))
        resolve_after = int(ov.get("resolve_after", resolve_after))
        options.update({k: v for k, v in ov.items() if k in _OPTION_KEYS})
    if rule.kind in LEVEL_KINDS:
        _check_ascending(
            [rule.direction * t for t in thresholds if not math.isnan(t)], where or rule.rule
        )
    if all(math.isnan(t) for t in thresholds):
        return None
    # ratio: value / design; deviation: (value - nominal) / nominal
    for key, params in (("design_param", ("scale",)), ("nominal_param", ("offset", "scale"))):
        if key in options:
            design = design_value(work_params, options[key], where or rule.rule)
            if design is None:
                return None
            options.update(dict.fromkeys(params, design))
    if "curve_param" in options:
        name = options["curve_param"]
        raw = work_params.get(name)
        if raw is None:
            return None
        try:
            options["curve"] = parse_curve(raw, where or rule.rule)
        except ProfileError as exc:
            raise ProfileError(exc.where, exc.reason, field=name) from None
    return ResolvedRule(
        rule=rule.rule,
        kind=rule.kind,
        metric=rule.metric,
        direction=rule.direction,
        thresholds=(thresholds[0], thresholds[1], thresholds[2], thresholds[3]),
        labels=tuple(labels),
        hysteresis=hysteresis,
        debounce=debounce,
        resolve_after=resolve_after,
        options=options,
        sources=tuple(sources),
    )


_GARBAGE_ERRORS = (ArithmeticError, ValueError, TypeError, KeyError, RecursionError)
"""What resolving a value of the wrong kind can raise beyond ProfileError (a float of a huge
int, the digit limit of int->str, a mapping where a number belongs)."""


def resolve_rules(
    profile: Profile,
    metric: str,
    work_params: Mapping[str, Any],
    overrides: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    where: str = "",
) -> tuple[list[ResolvedRule], list[str]]:
    """Every rule of `profile` on `metric`, resolved for one work: what the engine grades with.

    The one resolution shared by the engine, the thresholds API and the checks of design values
    at import and in the API, so that a value accepted there is a value the engine can use.

    Args:
        profile: the hazard kind's profile.
        metric: the metric of the series.
        work_params: the work's design parameters.
        overrides: override objects by rule id, the work's rows first, then the series'.
        where: prefix of error messages (e.g. 'series 12').

    Returns:
        The rules that apply, in profile order, and the ids of those that do not (disabled by
        an override, or a design value they need is not given).

    Raises:
        ProfileError: a design value or an override cannot be used; `field` names the design
            parameter when it is the one at fault.
    """
    resolved: list[ResolvedRule] = []
    skipped: list[str] = []
    for rule_def in profile.rules_for(metric):
        rwhere = f"{where} rule {rule_def.rule}".strip()
        rows = (overrides or {}).get(rule_def.rule, ())
        try:
            rule = resolve_rule(profile, rule_def, work_params, rows, rwhere)
        except ProfileError:
            raise
        except _GARBAGE_ERRORS as exc:
            raise ProfileError(
                rwhere, f"cannot be resolved ({type(exc).__name__}: {str(exc)[:200]})"
            ) from None
        if rule is None:
            skipped.append(rule_def.rule)
        else:
            resolved.append(rule)
    return resolved, skipped


@dataclass(frozen=True, slots=True)
class SeriesRules:
    """The rules of many series resolved at once (see `resolve_series`).

    Attributes:
        rules: the rules that apply, by series id; only series of works that resolve.
        notes: one line per rule that does not apply to a series (disabled, no design value).
        isolated: works whose rules cannot be resolved at all, by work id, with the reason:
            their series are left out (stored, not graded) until the registry is fixed.
    """

    rules: Mapping[int, list[ResolvedRule]]
    notes: list[str]
    isolated: Mapping[int, str]


def resolve_series(
    series: Sequence[SeriesInfo],
    profiles: Mapping[str, Profile],
    catalogue: Mapping[str, Any],
    overrides: Sequence[Override] = (),
) -> SeriesRules:
    """Resolve the rules of every series, isolating the works whose rules cannot be resolved.

    Never raises over registry content: an unknown hazard kind or metric, an unusable design
    value or override puts the series' work in `isolated` with the reason, and the other works
    are resolved as usual.
    """
    by_work: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    by_series: dict[tuple[int, str], list[Mapping[str, Any]]] = {}
    for ov in overrides:
        if ov.series_id is not None:
            by_series.setdefault((ov.series_id, ov.rule), []).append(ov.params)
        elif ov.work_id is not None:
            by_work.setdefault((ov.work_id, ov.rule), []).append(ov.params)
    resolved: dict[int, list[ResolvedRule]] = {}
    notes: list[tuple[int, str]] = []
    isolated: dict[int, str] = {}
    for s in series:
        if s.work_id in isolated:
            continue
        where = f"series {s.series_id} ({s.device_code}/{s.metric})"
        profile = profiles.get(s.hazard_kind)
        try:
            if profile is None or s.hazard_kind not in catalogue:
                raise ProfileError(where, f"no profile for hazard kind {s.hazard_kind!r}")
            if s.metric not in catalogue[s.hazard_kind].metrics:
                raise ProfileError(where, f"metric {s.metric!r} is not a {s.hazard_kind} metric")
            rows = {
                rule.rule: by_work.get((s.work_id, rule.rule), [])
                + by_series.get((s.series_id, rule.rule), [])
                for rule in profile.rules_for(s.metric)
            }
            applied, skipped = resolve_rules(profile, s.metric, s.work_params, rows, where)
        except ProfileError as exc:
            isolated[s.work_id] = str(exc)
            continue
        resolved[s.series_id] = applied
        notes += [
            (s.work_id, f"{where}: rule {r} disabled or missing a design value") for r in skipped
        ]
    work_of = {s.series_id: s.work_id for s in series}
    kept = {sid: r for sid, r in resolved.items() if work_of[sid] not in isolated}
    kept_notes = [note for work_id, note in notes if work_id not in isolated]
    return SeriesRules(kept, kept_notes, isolated)


def check_work(
    hazard_kind: str,
    work_params: Mapping[str, Any],
    overrides: Sequence[Override] = (),
    profiles: Mapping[str, Profile] | None = None,
    catalogue: Mapping[str, Any] | None = None,
) -> list[str]:
    """Check a work's design values and work-level overrides as the engine will resolve them.

    Used at import and by the API before a work is written, so that nothing the engine refuses
    reaches the registry: every rule of every metric of the kind is resolved.

    Args:
        hazard_kind: the work's kind.
        work_params: its design parameters.
        overrides: its work-level override rows (series rows are checked per series).
        profiles: default profiles; default the shipped ones.
        catalogue: hazard kinds; default the shipped catalogue.

    Returns:
        Notes: the rules that will not apply (a design value they need is not given).

    Raises:
        ProfileError: a parameter is unknown, of the wrong type, out of bounds or unusable by
            a rule (`field` names it), or an override is bad (`field` is None).
    """
    from hazmon.catalogue import CatalogueError
    from hazmon.catalogue import catalogue as shipped

    kinds = catalogue if catalogue is not None else shipped()
    profiles = profiles if profiles is not None else shipped_profiles()
    kind = kinds.get(hazard_kind)
    profile = profiles.get(hazard_kind)
    if kind is None or profile is None:
        raise ProfileError("hazard_kind", f"unknown hazard kind {hazard_kind!r}")
    try:
        kind.check_params(work_params)
    except CatalogueError as exc:
        raise ProfileError("params", str(exc), field=exc.field) from None
    rows: dict[str, list[Mapping[str, Any]]] = {}
    for ov in overrides:
        rows.setdefault(ov.rule, []).append(ov.params)
    notes: list[str] = []
    for metric in kind.metrics:
        _, skipped = resolve_rules(profile, metric, work_params, rows, f"metric {metric}")
        notes += [f"{metric}: rule {r} does not apply (no design value)" for r in skipped]
    return notes


@cache
def shipped_profiles() -> Mapping[str, Profile]:
    """The shipped default profiles, loaded and checked once."""
    return load_profiles()


MAX_CURVE_RADIUS_M = 1000.0
"""Largest radius of a rated load curve, m (no source: tower cranes reach under 100 m; the
engine lays curves end to end on a 1e6 m stride, so a radius must stay far below that)."""
MAX_CURVE_LOAD_T = 10_000.0
"""Largest rated load of a curve point, t (no source: a bound against garbage)."""


def parse_curve(raw: object, where: str) -> tuple[tuple[float, float], ...]:
    """A crane's rated load curve from the work parameter, '<radius m>:<rated load t>,...'.

    Example: '2.5:8,16:8,30:4.1,50:2.3' (8 t up to 16 m, then falling with the radius).

    Raises:
        ProfileError: not that format, radii not strictly increasing within
            [0, MAX_CURVE_RADIUS_M], or a load not in (0, MAX_CURVE_LOAD_T].
    """
    if not isinstance(raw, str):
        raise ProfileError(where, f"rated curve must be text 'radius:load,...', got {_show(raw)}")
    try:
        points = tuple(
            (float(r), float(load))
            for r, load in (p.split(":") for p in raw.replace(" ", "").split(","))
        )
    except ValueError:
        raise ProfileError(
            where, f"rated curve must be 'radius:load,...', got {_show(raw)}"
        ) from None
    radii = [r for r, _ in points]
    if any(b <= a for a, b in itertools.pairwise(radii)) or any(
        not (0.0 <= r <= MAX_CURVE_RADIUS_M and 0.0 < load <= MAX_CURVE_LOAD_T)
        for r, load in points
    ):
        raise ProfileError(
            where,
            f"rated curve needs increasing radii in [0, {MAX_CURVE_RADIUS_M:g}] m and loads in "
            f"(0, {MAX_CURVE_LOAD_T:g}] t: {_show(raw)}",
        )
    return points


def check_override(ov: Mapping[str, Any], where: str) -> None:
    """Check one `thresholds.params` object; raise ProfileError naming the bad key.

    Accepted keys: `levels` ({grade name: number or null}), `hysteresis` (0..0.5), `debounce`,
    `resolve_after`, `count` (positive integers), `window_s`, `period_s`, `share`,
    `max_wind_age_s` (positive numbers), `epsilon`, `min_load_t` (>= 0), `enabled` (bool),
    `source` (text).
    """
    unknown = set(ov) - _OVERRIDE_KEYS - {"source"}
    if unknown:
        raise ProfileError(where, f"unknown override keys {sorted(unknown)}")
    levels = ov.get("levels") or {}
    if not isinstance(levels, Mapping):
        raise ProfileError(where, "levels must map grade names to numbers")
    for name, value in levels.items():
        if name not in _GRADE_NAMES:
            raise ProfileError(where, f"unknown grade {name!r}")
        if value is not None:
            _number(value, where, f"levels.{name}")
    if "hysteresis" in ov:
        _number(ov["hysteresis"], where, "hysteresis", lo=0.0, hi=0.5)
    for key in ("debounce", "resolve_after"):
        if key in ov:
            _count(ov[key], where, key)
    if "enabled" in ov and not isinstance(ov["enabled"], bool):
        raise ProfileError(where, "enabled must be true or false")
    _check_options({k: v for k, v in ov.items() if k in _OPTION_KEYS}, where)


# --- small checked conversions ---------------------------------------------------------------


def _mapping(raw: object, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ProfileError(where, "expected a mapping")
    return cast(Mapping[str, Any], raw)


MAX_MAGNITUDE = 1e12
"""Largest threshold or option value accepted in any unit (no source: a bound against garbage)."""
MAX_SPAN_S = 366 * DAY_S
"""Longest time option accepted (windows, periods, ages), seconds (no source: a year covers
every rule of the profiles; longer would only make the engine replay more history)."""
MAX_COUNT = 10_000
"""Largest run length accepted (debounce, resolve_after, count; no source: a bound)."""


def _number(
    raw: object, where: str, name: str, lo: float = -MAX_MAGNITUDE, hi: float = MAX_MAGNITUDE
) -> float:
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        # a 400-digit int passes isinstance but overflows every float conversion
        or (isinstance(raw, int) and raw.bit_length() > 64)
        or not math.isfinite(raw)
    ):
        raise ProfileError(where, f"{name} must be a finite number, got {_show(raw)}")
    if not lo <= float(raw) <= hi:
        raise ProfileError(where, f"{name} must be in [{lo:g}, {hi:g}], got {_show(raw)}")
    return float(raw)


def _count(raw: object, where: str, name: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_COUNT:
        raise ProfileError(
            where, f"{name} must be a positive integer up to {MAX_COUNT}, got {_show(raw)}"
        )
    return raw


def _show(raw: object) -> str:
    """A refused value for an error message, cut short (it may be huge or deeply nested)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw.bit_length() > 64:
        return f"a {raw.bit_length()}-bit integer"
    if isinstance(raw, str | int | float | bool) or raw is None:
        text = repr(raw)
    else:
        text = f"a {type(raw).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _int_or(raw: object, default: int) -> int:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else default


def _check_ascending(values: Sequence[float], where: str) -> None:
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ProfileError(where, f"thresholds must be strictly ascending by grade: {values}")
