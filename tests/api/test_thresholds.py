"""Effective thresholds come from the rule engine itself; overrides it would refuse are refused."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from tests.support.tokens import bearer
from tests.support.world import World


def _levels(body: dict[str, Any], metric: str, rule: str) -> tuple[dict[str, float], bool]:
    (series,) = [s for s in body["series"] if s["metric"] == metric]
    (found,) = [r for r in series["rules"] if r["rule"] == rule]
    return {lv["grade_name"]: lv["value"] for lv in found["levels"]}, found["overridden"]


def _override_count(world: World) -> int:
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute("SELECT count(*) FROM thresholds").fetchone()
    assert row is not None
    return int(row[0])


def test_effective_values_show_profile_design_values_and_overrides(world: World) -> None:
    work = world.ids["A"]["work"]
    with httpx.Client(base_url=world.base, headers=bearer(world.tokens["inspector"] or "")) as http:
        body = http.get(f"/works/{work}/thresholds").json()
    assert body["hazard_kind"] == "tower_crane"
    # the world's override lowers the moment's red level from 1.00 (GB 5144) to 0.95
    assert _levels(body, "moment_ratio", "moment_ratio") == ({"yellow": 0.9, "red": 0.95}, True)
    assert _levels(body, "load_ratio", "load_ratio") == ({"yellow": 0.9, "red": 1.0}, False)
    (series,) = [s for s in body["series"] if s["metric"] == "load_ratio"]
    assert all(lv["source"] for r in series["rules"] for lv in r["levels"])
    assert [o["rule"] for o in body["overrides"]] == ["moment_ratio"]


def test_overrides_the_engine_would_refuse_are_refused_and_not_stored(world: World) -> None:
    work = world.ids["A"]["work"]
    before = _override_count(world)
    bad = [
        ({"levels": {"red": 0.5}}, "ascending"),  # red under yellow's 0.9
        ({"levels": {"purple": 1}}, "grade"),
        ({"colour": "red"}, "unknown override keys"),
    ]
    with httpx.Client(base_url=world.base, headers=bearer(world.tokens["regulator"] or "")) as http:
        for params, why in bad:
            response = http.post(
                "/thresholds",
                json={
                    "work_id": work,
                    "metric": "load_ratio",
                    "rule": "load_ratio",
                    "params": params,
                },
            )
            assert response.status_code == 422, response.text
            assert why in response.json()["detail"]
        unknown_rule = http.post(
            "/thresholds",
            json={"work_id": work, "metric": "load_ratio", "rule": "no_such", "params": {}},
        )
        assert unknown_rule.status_code == 422
        assert "load_ratio" in unknown_rule.json()["detail"]  # names the rules there are
        patched = http.patch(
            f"/thresholds/{world.ids['A']['threshold']}", json={"params": {"levels": {"red": 0.1}}}
        )
        assert patched.status_code == 422
        body = http.get(f"/works/{work}/thresholds").json()
    assert _override_count(world) == before
    assert _levels(body, "moment_ratio", "moment_ratio")[0]["red"] == 0.95
