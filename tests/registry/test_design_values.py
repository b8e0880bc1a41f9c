"""Design values the rule engine cannot use are refused where they are written: the API (422
naming the parameter) and `hazmon registry import` (exit 2), and nothing is stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from hazmon.settings import Settings
from tests.support.inventories import crane_site, load
from tests.support.services import running_api
from tests.support.tokens import bearer, issue

HUGE = int("9" * 400)
BAD = [
    ({"rated_curve": "a"}, "rated_curve"),
    ({"rated_load_t": HUGE}, "rated_load_t"),
    ({"rated_load_t": -1}, "rated_load_t"),
    ({"rated_curve": "5:8,2:9"}, "rated_curve"),
]


def _params(db_url: str) -> list[Any]:
    with psycopg.connect(db_url) as conn:
        return [row[0] for row in conn.execute("SELECT params FROM works ORDER BY id")]


@pytest.mark.parametrize(("change", "field"), BAD)
def test_the_api_refuses_design_values_the_engine_cannot_use(
    settings: Settings, db_url: str, tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    before = _params(db_url)
    with (
        running_api(settings) as base,
        httpx.Client(base_url=base, headers=bearer(issue(db_url))) as http,
    ):
        work = http.get("/works").json()["data"][0]
        params = {**work["params"], **change}
        patched = http.patch(f"/works/{work['id']}", json={"params": params})
        assert patched.status_code == 422, patched.text
        assert patched.json()["errors"][0]["loc"] == ["body", "params", field]
        created = http.post(
            "/works",
            json={
                "site_id": work["site_id"],
                "code": "TC9",
                "name": "9号塔吊",
                "hazard_kind": "tower_crane",
                "params": params,
            },
        )
        assert created.status_code == 422, created.text
        assert created.json()["errors"][0]["loc"] == ["body", "params", field]
        good = http.patch(f"/works/{work['id']}", json={"params": {**work["params"]}})
        assert good.status_code == 200
    assert _params(db_url) == before


@pytest.mark.parametrize(("change", "field"), BAD)
def test_registry_import_refuses_them_and_writes_nothing(
    db_url: str, tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    site = crane_site("S1")
    site["works"][0]["params"].update(change)
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"sites": [site]}), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "hazmon.cli", "registry", "import", str(path)],
        env={**os.environ, "HAZMON_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"params.{field}" in done.stderr
    assert _params(db_url) == []
