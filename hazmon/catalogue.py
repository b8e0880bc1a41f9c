"""The catalogue of hazard kinds: their metrics (wire names, units, labels) and work parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

ParamType = Literal["number", "integer", "string", "boolean"]


MAX_PARAM_MAGNITUDE = 1e12
"""Largest design value accepted (any unit): far beyond any real work, small enough for a float
and for every conversion the rules make (no source: a bound against garbage, not a standard)."""
MAX_PARAM_TEXT = 2000
"""Longest text parameter accepted, characters (a rated load curve of 100 points is ~1,500)."""


class CatalogueError(ValueError):
    """The catalogue file, or a value checked against it, is invalid.

    Attributes:
        field: the parameter concerned, when a checked value is the problem (else None).
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Metric:
    """One measured quantity of a hazard kind, named as gateways send it."""

    name: str
    unit: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Param:
    """One design parameter of a work (e.g. a pit's safety grade, a crane's rated moment)."""

    name: str
    type: ParamType
    name_zh: str
    name_en: str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class HazardKind:
    """A kind of major-hazard work and what can be measured and configured on it."""

    code: str
    name_zh: str
    name_en: str
    metrics: Mapping[str, Metric]
    params: Mapping[str, Param]

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return `params` if each is known for this kind and of the right type; raise otherwise."""
        checked: dict[str, Any] = {}
        for name, value in params.items():
            spec = self.params.get(name)
            if spec is None:
                known = ", ".join(sorted(self.params)) or "none"
                raise CatalogueError(
                    f"unknown parameter {name!r} for {self.code} (known: {known})", name
                )
            if not _has_type(value, spec.type):
                raise CatalogueError(
                    f"parameter {name!r} of {self.code} must be {spec.type}, got {_excerpt(value)}",
                    name,
                )
            problem = _out_of_bounds(value)
            if problem:
                raise CatalogueError(f"parameter {name!r} of {self.code} {problem}", name)
            checked[name] = value
        return checked


def _out_of_bounds(value: object) -> str | None:
    """Why a value of the right type is still unusable (None if it is usable)."""
    if isinstance(value, str):
        if len(value) > MAX_PARAM_TEXT:
            return f"must be at most {MAX_PARAM_TEXT} characters, got {len(value)}"
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    # an int of 400 digits passes isinstance but overflows every float conversion
    if isinstance(value, int) and value.bit_length() > 64:
        return f"must be within ±{MAX_PARAM_MAGNITUDE:g}, got a {value.bit_length()}-bit integer"
    if not math.isfinite(value) or abs(value) > MAX_PARAM_MAGNITUDE:
        return f"must be a finite number within ±{MAX_PARAM_MAGNITUDE:g}, got {value!r}"
    return None


def _excerpt(value: object) -> str:
    """A value for an error message, cut short (a refused value may be huge)."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() <= 64 else "a huge int"
    return text if len(text) <= 60 else text[:57] + "..."


def _has_type(value: object, type_: ParamType) -> bool:
    if type_ == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if type_ == "integer":
        return isinstance(value, int)
    if type_ == "number":
        return isinstance(value, int | float)
    return isinstance(value, str)


@cache
def catalogue() -> Mapping[str, HazardKind]:
    """The shipped catalogue (`hazmon/catalogue.yaml`), checked once and cached."""
    text = (resources.files("hazmon") / "catalogue.yaml").read_text(encoding="utf-8")
    return parse_catalogue(yaml.safe_load(text))


def parse_catalogue(raw: object) -> dict[str, HazardKind]:
    """Build hazard kinds from the YAML structure; raise CatalogueError naming the bad entry."""
    if not isinstance(raw, dict):
        raise CatalogueError("catalogue must map hazard kind codes to definitions")
    kinds: dict[str, HazardKind] = {}
    for code, body in raw.items():
        try:
            metrics = {
                name: Metric(name, str(m["unit"]), m["name_zh"], m["name_en"])
                for name, m in body["metrics"].items()
            }
            params = {
                name: Param(name, p["type"], p["name_zh"], p["name_en"], p.get("unit", ""))
                for name, p in (body.get("params") or {}).items()
            }
            kinds[code] = HazardKind(code, body["name_zh"], body["name_en"], metrics, params)
        except (KeyError, TypeError, AttributeError) as exc:
            raise CatalogueError(f"catalogue entry {code!r} is malformed: {exc!r}") from None
    return kinds


def hazard_kind(code: str) -> HazardKind:
    """The hazard kind with this code; raise CatalogueError listing the known ones."""
    kinds = catalogue()
    if code not in kinds:
        raise CatalogueError(f"unknown hazard kind {code!r} (known: {', '.join(sorted(kinds))})")
    return kinds[code]
