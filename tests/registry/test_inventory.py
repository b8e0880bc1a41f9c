"""`hazmon registry import`: validation, idempotent re-import, updates in place."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from hazmon.cli import main
from registry import InventoryError, load_inventory
from tests.support.inventories import crane_site, load


def _counts(db_url: str) -> tuple[int, ...]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM sites), (SELECT count(*) FROM works), "
            "(SELECT count(*) FROM devices), (SELECT count(*) FROM series)"
        ).fetchone()
    assert row is not None
    return tuple(int(v) for v in row)


def test_reimport_updates_in_place(db_url: str, tmp_path: Path) -> None:
    site = crane_site()
    load(db_url, tmp_path, site)
    first = _counts(db_url)
    assert first == (1, 1, 1, 10)  # all ten tower crane metrics of the catalogue
    site["name"] = "改名后的工地"
    site["works"][0]["params"]["rated_moment_tm"] = 200
    load(db_url, tmp_path, site)
    assert _counts(db_url) == first
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT s.name, w.params->>'rated_moment_tm' FROM sites s JOIN works w ON w.site_id = s.id"
        ).fetchone()
    assert row == ("改名后的工地", "200")


def test_cli_imports_the_demo_inventory_twice(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAZMON_DATABASE_URL", db_url)
    demo = Path(__file__).resolve().parents[2] / "hazmon" / "demo_inventory.yaml"
    assert main(["registry", "import", str(demo)]) == 0
    once = _counts(db_url)
    assert main(["registry", "import", str(demo)]) == 0
    assert _counts(db_url) == once


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s["works"][0].update(hazard_kind="bridge"), "unknown hazard kind 'bridge'"),
        (lambda s: s["works"][0]["params"].update(rated_moment_tm="big"), "must be number"),
        (lambda s: s["works"][0]["params"].update(colour=1), "unknown parameter 'colour'"),
        (lambda s: s.update(region_code="42"), "region_code"),
        (lambda s: s.update(code="bad code!"), "code"),
        (lambda s: s["works"][0]["devices"][0].update(metrics=["load_t", "depth_mm"]), "depth_mm"),
        (lambda s: s["works"].append(s["works"][0]), "duplicate work code in site S1"),
    ],
)
def test_invalid_inventories_are_refused_with_the_cause(
    tmp_path: Path, mutate: object, message: str
) -> None:
    site = crane_site()
    assert callable(mutate)
    mutate(site)
    path = tmp_path / "inv.json"
    path.write_text(json.dumps({"sites": [site]}), encoding="utf-8")
    with pytest.raises(InventoryError, match=message):
        load_inventory(path)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read"):
        load_inventory(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sites: [unclosed", encoding="utf-8")
    with pytest.raises(InventoryError, match="not valid yaml"):
        load_inventory(bad)
