"""Investigation through the API: checklists with their clauses, a plan per work with its
responsible inspector, a record answering every item, a failed item registered as a hazard in
one step; and the packaged checklists hold together."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import yaml

from hazmon.catalogue import catalogue
from registry.inspections import InspectionError, checklist, checklists, parse_checklists
from tests.support.tokens import bearer
from tests.support.world import World


def _client(world: World, role: str) -> httpx.Client:
    return httpx.Client(base_url=world.base, headers=bearer(world.tokens[role] or ""))


def _post(http: httpx.Client, url: str, want: int, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(url, json=body)
    assert response.status_code == want, response.text
    return dict(response.json())


def test_plan_record_and_a_failed_item_becomes_a_hazard(world: World) -> None:
    a = world.ids["A"]
    with _client(world, "inspector") as inspector, _client(world, "enterprise") as enterprise:
        lists = {c["kind"]: c for c in inspector.get("/checklists").json()["data"]}
        pit = lists["excavation"]
        assert [i["code"] for i in pit["items"]] == [
            "support_structure", "works_status", "surroundings", "monitoring_facilities",
        ]  # fmt: skip
        assert pit["items"][0]["clause"].startswith("GB 50497-2019 §4.3")
        assert (pit["frequency_h"], pit["frequency_confidence"]) == (24, "standard")
        assert all(i["confidence"] == "default" for i in lists["slope"]["items"])
        # the responsible inspector must be a user whose scope holds the work
        foreign = _post(
            inspector,
            "/inspection-plans",
            422,
            {"work_id": a["work"], "inspector_user_id": world.ids["B"]["inspector_user"]},
        )
        assert "scope" in foreign["detail"]
        unknown = _post(
            inspector,
            "/inspection-plans",
            422,
            {"work_id": a["work"], "inspector_user_id": a["user"], "items": ["no_such"]},
        )
        assert "no item 'no_such'" in unknown["detail"]
        plan = _post(
            inspector,
            "/inspection-plans",
            201,
            {
                "work_id": a["work"],
                "inspector_user_id": a["user"],
                "items": ["wind_and_weather", "safety_devices"],
                "extra_items": ["驾驶室灭火器在有效期内"],
            },
        )
        assert [i["code"] for i in plan["items"]] == [
            "safety_devices", "wind_and_weather", "extra_1",
        ]  # fmt: skip
        assert plan["items"][2]["confidence"] == "default"
        assert (plan["frequency_h"], plan["inspector_name"]) == (24, "test-inspector")
        url = f"/inspection-plans/{plan['id']}/records"
        partial = _post(
            enterprise, url, 422, {"results": [{"item": "safety_devices", "result": "pass"}]}
        )
        assert "every item" in partial["detail"]
        results = [
            {"item": "safety_devices", "result": "fail", "note": "力矩限制器被短接"},
            {"item": "wind_and_weather", "result": "pass"},
            {"item": "extra_1", "result": "na"},
        ]
        record = _post(enterprise, url, 201, {"results": results, "notes": "早班巡查"})
        assert (record["failed"], record["performed_by"].split(":")[0]) == (1, "enterprise")
        hazard_url = f"/inspections/{record['id']}/hazards"
        _post(enterprise, hazard_url, 409, {"item": "wind_and_weather", "level": "general"})
        hazard = _post(enterprise, hazard_url, 201, {"item": "safety_devices", "level": "major"})
        assert (hazard["source"], hazard["inspection_id"], hazard["inspection_item"]) == (
            "inspection",
            record["id"],
            "safety_devices",
        )
        assert hazard["basis"].startswith("建质规〔2022〕2号 第八条（五）")
        assert "力矩限制器被短接" in hazard["description"]
        assert hazard["title"].startswith("巡查不合格：安全装置齐全有效")
        assert hazard["found_at"] == record["performed_at"]
        # once per item
        _post(enterprise, hazard_url, 409, {"item": "safety_devices", "level": "major"})
        listed = inspector.get("/inspections", params={"plan_id": plan["id"], "failed": True})
        assert [r["id"] for r in listed.json()["data"]] == [record["id"]]
        events = inspector.get(f"/hazards/{hazard['id']}/events").json()["data"]
        assert events[0]["data"] == {
            "inspection_id": record["id"],
            "item": "safety_devices",
            "level": "major",
        }
        stopped = inspector.patch(f"/inspection-plans/{plan['id']}", json={"active": False})
        assert stopped.json()["active"] is False
        missed = inspector.get("/inspection-events").json()["data"]
        assert {e["site_code"] for e in missed} == {"A"}


def test_the_packaged_checklists_cover_every_catalogue_kind_and_name_their_sources() -> None:
    kinds = set(catalogue())
    assert kinds <= set(checklists())
    for c in checklists().values():
        assert c.frequency_source.strip()
        for item in c.items:
            assert item["clause"]
            assert item["source"]
            if item["confidence"] == "default":
                assert "no source" in item["source"] or "NF" in item["source"]
    assert checklist("excavation").item("surroundings")["clause"] == "GB 50497-2019 §4.3.2 (3)"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"k": {"items": []}}, "frequency_h"),
        (
            {"k": {"frequency_h": 24, "frequency_confidence": "sure", "items": []}},
            "frequency_confidence",
        ),
        (
            {
                "k": {
                    "name_zh": "x",
                    "frequency_h": 24,
                    "frequency_source": "s",
                    "frequency_confidence": "default",
                    "items": [
                        {
                            "code": "a",
                            "text_zh": "x",
                            "text_en": "x",
                            "clause": "c",
                            "source": "s",
                            "confidence": "maybe",
                        }
                    ],
                }
            },
            "confidence",
        ),
        ("- a list", "mapping"),
    ],
)
def test_a_bad_checklist_file_is_refused_loudly(raw: Any, problem: str) -> None:
    with pytest.raises(InspectionError, match=problem):
        parse_checklists(yaml.safe_load(raw) if isinstance(raw, str) else raw)
