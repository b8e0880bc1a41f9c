"""Import a supervision station's inventory (sites → works → devices) from YAML or JSON.

The format is documented in docs/inventory.md. Import is one transaction and idempotent:
re-importing updates names, parameters and sampling periods in place and adds what is new;
nothing is deleted, because readings and alerts hang off the existing rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import yaml
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import rules
from hazmon.catalogue import CatalogueError, hazard_kind
from registry import inventory_store as store

_CODE = r"^[A-Za-z0-9_-]{1,64}$"


class InventoryError(ValueError):
    """The inventory file cannot be read or does not describe a valid registry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceIn(_Strict):
    """A monitoring device (gateway channel) on a work."""

    code: str = Field(pattern=_CODE)
    name: str = ""
    sampling_period_s: float = Field(default=60.0, gt=0)
    metrics: list[str] | None = None


class WorkIn(_Strict):
    """A major-hazard work with its kind, design parameters and devices."""

    code: str = Field(pattern=_CODE)
    name: str
    hazard_kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    devices: list[DeviceIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_against_catalogue(self) -> WorkIn:
        try:
            kind = hazard_kind(self.hazard_kind)
            rules.check_work(self.hazard_kind, self.params)
        except CatalogueError as exc:
            raise ValueError(str(exc)) from None
        except rules.ProfileError as exc:
            raise ValueError(_design_problem(exc)) from None
        for device in self.devices:
            unknown = set(device.metrics or ()) - set(kind.metrics)
            if unknown:
                raise ValueError(
                    f"device {device.code!r}: metrics {sorted(unknown)} are not {self.hazard_kind} "
                    f"metrics (known: {', '.join(kind.metrics)})"
                )
        return self


class SiteIn(_Strict):
    """A construction site under supervision."""

    code: str = Field(pattern=_CODE)
    name: str
    region_code: str = Field(pattern=r"^[0-9]{6}$")
    enterprise: str = ""
    address: str = ""
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    works: list[WorkIn] = Field(default_factory=list)


class RegionIn(_Strict):
    """An administrative division (six-digit code)."""

    code: str = Field(pattern=r"^[0-9]{6}$")
    name: str
    parent_code: str | None = Field(default=None, pattern=r"^[0-9]{6}$")


class Inventory(_Strict):
    """The whole file."""

    regions: list[RegionIn] = Field(default_factory=list)
    sites: list[SiteIn]

    @field_validator("sites")
    @classmethod
    def _unique_codes(cls, sites: list[SiteIn]) -> list[SiteIn]:
        _require_unique("site code", [s.code for s in sites])
        for site in sites:
            _require_unique(f"work code in site {site.code}", [w.code for w in site.works])
            _require_unique(
                f"device code in site {site.code}",
                [d.code for w in site.works for d in w.devices],
            )
        return sites


def _design_problem(exc: rules.ProfileError) -> str:
    """A refused design value as the import reports it: the parameter, then the reason."""
    return f"params.{exc.field}: {exc.reason}" if exc.field else str(exc)


def _check_with_overrides(conn: psycopg.Connection[Any], work_id: int, work: WorkIn) -> None:
    """Resolve a re-imported work's rules with the threshold overrides it already has."""
    rows = conn.execute(store.WORK_OVERRIDES, {"work_id": work_id}).fetchall()
    overrides = [rules.Override(rule, metric, params, work_id) for metric, rule, params in rows]
    try:
        rules.check_work(work.hazard_kind, work.params, overrides)
    except rules.ProfileError as exc:
        raise InventoryError(f"work {work.code}: {_design_problem(exc)}") from None


def _require_unique(what: str, codes: list[str]) -> None:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise ValueError(f"duplicate {what}: {code!r}")
        seen.add(code)


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """Counts of rows present after an import."""

    regions: int
    sites: int
    works: int
    devices: int
    series: int


def load_inventory(path: Path) -> Inventory:
    """Parse and validate an inventory file (`.yaml`, `.yml` or `.json`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"cannot read inventory {path}: {exc.strerror}") from None
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InventoryError(f"{path} is not valid {path.suffix.lstrip('.')}: {exc}") from None
    try:
        return Inventory.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise InventoryError(f"{path}: {problems}") from None


def import_inventory(conn: psycopg.Connection[Any], inventory: Inventory) -> ImportSummary:
    """Upsert regions, sites, works, devices and their series in one transaction."""
    with conn.transaction():
        for region in inventory.regions:
            conn.execute(store.UPSERT_REGION, region.model_dump())
        for site in inventory.sites:
            _upsert_site(conn, site)
        counts = conn.execute(store.COUNTS).fetchone()
    assert counts is not None
    return ImportSummary(*(int(c) for c in counts))


def _upsert_site(conn: psycopg.Connection[Any], site: SiteIn) -> None:
    row = conn.execute(store.UPSERT_SITE, site.model_dump(exclude={"works"})).fetchone()
    assert row is not None
    site_id = row[0]
    for work in site.works:
        work_row = conn.execute(
            store.UPSERT_WORK,
            {
                **work.model_dump(exclude={"devices"}),
                "site_id": site_id,
                "params": Jsonb(work.params),
            },
        ).fetchone()
        assert work_row is not None
        _check_with_overrides(conn, work_row[0], work)
        kind = hazard_kind(work.hazard_kind)
        for device in work.devices:
            device_row = conn.execute(
                store.UPSERT_DEVICE,
                {
                    **device.model_dump(exclude={"metrics"}),
                    "site_id": site_id,
                    "work_id": work_row[0],
                },
            ).fetchone()
            assert device_row is not None
            metrics = device.metrics if device.metrics is not None else list(kind.metrics)
            with conn.cursor() as cur:
                cur.executemany(
                    store.ADD_SERIES,
                    [{"device_id": device_row[0], "metric": metric} for metric in metrics],
                )
