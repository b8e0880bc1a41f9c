"""Small inventories for tests, built as dicts so each test can vary them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from registry import import_inventory, load_inventory


def crane_site(site: str = "S1", device: str = "TC1-M", region: str = "420106") -> dict[str, Any]:
    """One site with one tower crane (rated 8 t, 160 t·m) and its monitor."""
    return {
        "code": site,
        "name": f"测试工地 {site}",
        "region_code": region,
        "enterprise": "测试建设公司",
        "works": [
            {
                "code": "TC1",
                "name": "1号塔吊",
                "hazard_kind": "tower_crane",
                "params": {"rated_load_t": 8, "rated_moment_tm": 160},
                "devices": [{"code": device, "sampling_period_s": 1}],
            }
        ],
    }


def pit_site(
    site: str = "P1", device: str = "W1", metrics: tuple[str, ...] = ("top_disp_h_mm",)
) -> dict[str, Any]:
    """One site with a grade-1 deep excavation 12 m deep and one monitoring point."""
    return {
        "code": site,
        "name": f"测试基坑工地 {site}",
        "region_code": "420106",
        "works": [
            {
                "code": "PIT1",
                "name": "1号基坑",
                "hazard_kind": "excavation",
                "params": {"pit_grade": 1, "design_depth_m": 12},
                "devices": [{"code": device, "metrics": list(metrics), "sampling_period_s": 60}],
            }
        ],
    }


def load(db_url: str, tmp_path: Path, *sites: dict[str, Any]) -> None:
    """Write an inventory of `sites` to a JSON file and import it."""
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"sites": list(sites)}, ensure_ascii=False), encoding="utf-8")
    with psycopg.connect(db_url) as conn:
        import_inventory(conn, load_inventory(path))
