"""Resolution: a profile's rules for one work, with its design values and override rows.

`resolve_rules` is the one resolution shared by the engine, the thresholds API and the checks of
design values at import and in the API, so that a value accepted there is a value the engine can
use. Its result, `ResolvedRule`, holds plain numbers and the kind's typed options.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from rules.checks import (
    GRADE_NAMES,
    as_number,
    check_ascending,
    check_override,
    hashable,
    int_or,
    parse_curve,
    show,
)
from rules.kinds import (
    LEVEL_KINDS,
    PROFILE_OPTION_KEYS,
    SPEC,
    KindOptions,
    RuleKind,
    build_options,
)
from rules.profiles import Profile, RuleDef, Table, TableRef, shipped_profiles
from rules.types import Grade, Override, ProfileError, SeriesInfo

_PIT_GRADE_ZH = {1: "一级", 2: "二级", 3: "三级"}
_FROM_WORK = {"design": "design_param", "nominal": "nominal_param", "curve": "curve_param"}
"""Resolved options (`rules.kinds`) and the option naming the work parameter they come from:
ratio divides by a design value, deviation measures from a nominal one, rated_curve reads the
crane's load chart."""


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
        options: the kind's typed options (`rules.kinds`), design values resolved.
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
    options: KindOptions
    sources: tuple[str, ...] = ()

    def top_grade(self) -> Grade:
        """The highest grade this rule can give (NORMAL if every level is unused)."""
        used = [i + 1 for i, t in enumerate(self.thresholds) if not math.isnan(t)]
        return Grade(max(used)) if used else Grade.NORMAL


def label_context(work_params: Mapping[str, Any]) -> dict[str, str]:
    """Placeholders for level labels, derived from a work's parameters."""
    pit = int_or(work_params.get("pit_grade"), 1)
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
        value = as_number(raw, where, name)
    except ProfileError as exc:
        raise ProfileError(where, exc.reason, field=name) from None
    if value <= 0:
        raise ProfileError(where, f"{name} must be > 0, got {show(raw)}", field=name)
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
            i = GRADE_NAMES[name] - 1
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
        options.update({k: v for k, v in ov.items() if k in PROFILE_OPTION_KEYS})
    if rule.kind in LEVEL_KINDS:
        check_ascending(
            [rule.direction * t for t in thresholds if not math.isnan(t)], where or rule.rule
        )
    if all(math.isnan(t) for t in thresholds):
        return None
    here = where or rule.rule
    resolved: dict[str, Any] = {}
    for f in fields(SPEC[rule.kind].options):
        if f.name not in _FROM_WORK:
            continue
        name = options[_FROM_WORK[f.name]]
        if f.name == "curve":
            raw = work_params.get(name)
            if raw is None:
                return None
            try:
                resolved["curve"] = parse_curve(raw, here)
            except ProfileError as exc:
                raise ProfileError(exc.where, exc.reason, field=name) from None
        else:
            design = design_value(work_params, name, here)
            if design is None:
                return None
            resolved[f.name] = design
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
        options=build_options(rule.kind, options, **resolved),
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
    # series of works with the same parameters and overrides share their resolved rules
    # (the engine's messages are then worded once for all of them)
    done: dict[object, tuple[list[ResolvedRule], list[str]]] = {}
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
            key = hashable((s.hazard_kind, s.metric, s.work_params, rows))
            if key is None or key not in done:
                applied, skipped = resolve_rules(profile, s.metric, s.work_params, rows, where)
                if key is not None:
                    done[key] = applied, skipped
            else:
                applied, skipped = done[key]
        except ProfileError as exc:
            isolated[s.work_id] = str(exc)
            continue
        resolved[s.series_id] = list(applied)
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
