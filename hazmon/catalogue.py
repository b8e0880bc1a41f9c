"""The catalogue of hazard kinds: their metrics (wire names, units, labels) and work parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

ParamType = Literal["number", "integer", "string", "boolean"]


class CatalogueError(ValueError):
    """The catalogue file, or a value checked against it, is invalid."""


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
                raise CatalogueError(f"unknown parameter {name!r} for {self.code} (known: {known})")
            if not _has_type(value, spec.type):
                raise CatalogueError(
                    f"parameter {name!r} of {self.code} must be {spec.type}, got {value!r}"
                )
            checked[name] = value
        return checked


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
