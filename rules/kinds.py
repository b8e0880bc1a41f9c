"""The rule kinds: one table row per kind, with its family, late grading and typed options.

Everything the rest of `rules/` knows about a kind comes from here: the order in which the engine
evaluates kinds (the row order, also the order of slot numbers), which kinds mark a series
suspect, which can grade a late reading on its own, which profile and override keys a kind
reads, and their defaults, declared once in the kind's options dataclass.

A new kind is one row here, one measure in `rules.measures` and one wording in
`rules.messages` (plus its grading step in `rules.grading` if it is not an affine level kind).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, get_args, get_type_hints

from rules.measures import S_PER_DAY

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
Family = Literal["level", "sensor", "combination"]
"""`level`: graded against up to four ascending thresholds; `sensor`: a sensor fault, one level,
action `suspect`; `combination`: one level, a condition over several readings or series."""

_RESOLVED = {"resolved": True}
"""Field metadata: set by the resolution from a work's parameters, never written in a profile."""


@dataclass(frozen=True, slots=True)
class AbsoluteOptions:
    """Options of `absolute` (the value itself).

    Attributes:
        abs: grade the magnitude (a tilt either way).
    """

    abs: bool = False


@dataclass(frozen=True, slots=True)
class RatioOptions:
    """Options of `ratio` (value / a design value of the work).

    Attributes:
        design_param: the work parameter divided by, e.g. 'strut_design_kn'.
        abs: grade the magnitude.
        design: that parameter's value for the work (resolved), in the metric's unit.
    """

    design_param: str
    abs: bool = False
    design: float = field(default=1.0, metadata=_RESOLVED)


@dataclass(frozen=True, slots=True)
class DeviationOptions:
    """Options of `deviation` (abs(value - nominal) / nominal).

    Attributes:
        nominal_param: the work parameter of the nominal value, e.g. 'nominal_pressure_kpa'.
        abs: grade the magnitude (both sides of the band).
        nominal: that parameter's value for the work (resolved), in the metric's unit.
    """

    nominal_param: str
    abs: bool = True
    nominal: float = field(default=1.0, metadata=_RESOLVED)


@dataclass(frozen=True, slots=True)
class CumulativeOptions:
    """Options of `cumulative` (change from the baseline in force).

    Attributes:
        abs: grade the magnitude of the change.
    """

    abs: bool = True


@dataclass(frozen=True, slots=True)
class RateOptions:
    """Options of `rate` (abs(change) per day against a reference a window old).

    Attributes:
        window_s: the shortest span a rate is taken over, s (GB 50497-2019 8.0.4 gives rates
            per day; the profile's 20 h lets a daily survey compare with the day before).
    """

    window_s: float = S_PER_DAY


@dataclass(frozen=True, slots=True)
class ConsecutiveOptions:
    """Options of `consecutive` (the rate over `share` of its limit in `count` periods in a row,
    GB 50497-2019 table 8.0.4 note 2).

    Attributes:
        of: the rate rule on the same metric whose limit is shared.
        count: periods in a row.
        share: share of the limit a period's rate must exceed, (0, 1].
        period_s: length of a period, s.
        window_s: rate window, s, when the series has no rate rule of its own.
    """

    of: str
    count: int
    share: float
    period_s: float = S_PER_DAY
    window_s: float = S_PER_DAY


@dataclass(frozen=True, slots=True)
class StuckOptions:
    """Options of `stuck` (equal readings in a row).

    Attributes:
        count: equal readings in a row that mark the sensor stuck.
        epsilon: largest change still counted as equal, in the metric's unit.
    """

    count: int
    epsilon: float = 0.0


@dataclass(frozen=True, slots=True)
class JumpOptions:
    """Options of `jump` (abs(change) from the previous reading): none, the level is the step."""


@dataclass(frozen=True, slots=True)
class CraneWindOptions:
    """Options of `crane_wind` (a crane lifting while the wind is over the stop-lifting limit).

    Attributes:
        wind_metric: the work's wind metric.
        min_load_t: load from which the crane counts as lifting, t.
        max_wind_age_s: oldest wind reading still in force, s.
    """

    wind_metric: str
    min_load_t: float
    max_wind_age_s: float


@dataclass(frozen=True, slots=True)
class RatedCurveOptions:
    """Options of `rated_curve` (load / rated load at the current radius).

    Attributes:
        curve_param: the work parameter holding the load chart ('radius_m:load_t,...').
        radius_metric: the same device's radius metric.
        max_radius_age_s: oldest radius reading still in force, s.
        curve: the chart, (radius m, rated load t) by increasing radius (resolved).
    """

    curve_param: str
    radius_metric: str
    max_radius_age_s: float
    curve: tuple[tuple[float, float], ...] = field(default=(), metadata=_RESOLVED)


KindOptions = (
    AbsoluteOptions
    | RatioOptions
    | DeviationOptions
    | CumulativeOptions
    | RateOptions
    | ConsecutiveOptions
    | StuckOptions
    | JumpOptions
    | CraneWindOptions
    | RatedCurveOptions
)


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One row of the kind table.

    Attributes:
        kind: the kind's name, as written in profiles.
        family: see `Family`.
        late: a late reading (older than one already graded) is graded on its own; the other
            kinds need the readings around it.
        options: the kind's options dataclass.
    """

    kind: RuleKind
    family: Family
    late: bool
    options: type[KindOptions]


KINDS: tuple[KindSpec, ...] = (
    # sensor faults first: a jump keeps its reading out of every structural rule
    KindSpec("jump", "sensor", False, JumpOptions),
    KindSpec("stuck", "sensor", False, StuckOptions),
    KindSpec("absolute", "level", True, AbsoluteOptions),
    KindSpec("ratio", "level", True, RatioOptions),
    KindSpec("deviation", "level", True, DeviationOptions),
    KindSpec("cumulative", "level", True, CumulativeOptions),
    KindSpec("rate", "level", False, RateOptions),
    KindSpec("consecutive", "combination", False, ConsecutiveOptions),
    KindSpec("crane_wind", "combination", False, CraneWindOptions),
    KindSpec("rated_curve", "level", False, RatedCurveOptions),
)
"""Every rule kind, in evaluation order (also the order of slot numbers)."""

SPEC: Mapping[str, KindSpec] = {row.kind: row for row in KINDS}
KIND_ORDER: tuple[RuleKind, ...] = tuple(row.kind for row in KINDS)
LATE_KINDS: tuple[RuleKind, ...] = tuple(row.kind for row in KINDS if row.late)
"""Kinds that grade a late reading on its own."""
LEVEL_KINDS: frozenset[str] = frozenset(row.kind for row in KINDS if row.family == "level")
"""Kinds whose measure is compared with up to four ascending thresholds."""
SENSOR_KINDS: frozenset[str] = frozenset(row.kind for row in KINDS if row.family == "sensor")
"""Kinds that mark a series suspect (action 'suspect') instead of raising a structural alarm."""
ONE_LEVEL_KINDS: frozenset[str] = frozenset(row.kind for row in KINDS if row.family != "level")
"""Kinds with exactly one level: hit or normal."""

assert set(KIND_ORDER) == set(get_args(RuleKind)), "every RuleKind has a row"
_HINTS: Mapping[type[KindOptions], Mapping[str, Any]] = {
    row.options: get_type_hints(row.options) for row in KINDS
}


def option_keys(kind: str) -> tuple[str, ...]:
    """The profile keys a kind reads, in declaration order (resolved fields excluded)."""
    return tuple(f.name for f in fields(SPEC[kind].options) if not f.metadata.get("resolved"))


def required_keys(kind: str) -> tuple[str, ...]:
    """The profile keys a rule of `kind` must give: its options without a default."""
    return tuple(
        f.name
        for f in fields(SPEC[kind].options)
        if not f.metadata.get("resolved") and f.default is MISSING and f.default_factory is MISSING
    )


PROFILE_OPTION_KEYS: frozenset[str] = frozenset(k for row in KINDS for k in option_keys(row.kind))
"""Option keys a profile rule may carry (any kind's; a kind ignores the others' keys)."""
OVERRIDE_OPTION_KEYS: frozenset[str] = frozenset(
    k for row in KINDS for k in option_keys(row.kind) if _HINTS[row.options][k] in (int, float)
)
"""Option keys an override row may change: the numeric ones (windows, counts, shares, ages)."""


def build_options(kind: str, raw: Mapping[str, Any], **resolved: Any) -> KindOptions:
    """The typed options of a rule of `kind` from its (checked) profile and override keys.

    Args:
        kind: the rule kind.
        raw: profile options with the overrides applied; keys of other kinds are ignored.
        **resolved: values the resolution derived from the work (`design`, `nominal`,
            `curve`), for the kinds that have them.

    Raises:
        TypeError: a required key is missing (the profile checks prevent it).
    """
    cls = SPEC[kind].options
    hints = _HINTS[cls]
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.metadata.get("resolved"):
            if f.name in resolved:
                values[f.name] = resolved[f.name]
        elif f.name in raw:
            values[f.name] = hints[f.name](raw[f.name])
    return cls(**values)


def share_of(options: KindOptions) -> float:
    """The share of its thresholds at which a rule fires (only `consecutive` has one; 1.0)."""
    return options.share if isinstance(options, ConsecutiveOptions) else 1.0
