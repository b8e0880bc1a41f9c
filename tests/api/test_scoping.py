"""What each role sees in every list: exactly its own sites' rows, whatever it filters by."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.tokens import bearer, issue
from tests.support.world import World

LISTS = ("/sites", "/works", "/devices", "/series", "/thresholds", "/alerts", "/hazards")


def _site_ids(http: httpx.Client, path: str, **params: Any) -> tuple[set[int], int]:
    response = http.get(path, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == len(body["data"])
    key = "id" if path == "/sites" else "site_id"
    return {row[key] for row in body["data"]}, body["count"]


def test_each_role_lists_exactly_its_own_sites(world: World) -> None:
    a, b = world.ids["A"]["site"], world.ids["B"]["site"]
    tokens = {
        "admin": (world.tokens["admin"], {a, b}),
        "regulator 42": (world.tokens["regulator"], {a}),
        "inspector 4201": (world.tokens["inspector"], {a}),
        "enterprise 甲建设": (world.tokens["enterprise"], {a}),
        "inspector 440305": (issue(world.db_url, "inspector", region="440305"), {b}),
        "regulator 11 (Beijing)": (issue(world.db_url, "regulator", region="11"), set()),
        "enterprise site B": (issue(world.db_url, "enterprise", site_id=b), {b}),
        "enterprise 丙 (no sites)": (issue(world.db_url, "enterprise", enterprise="丙"), set()),
    }
    for who, (token, visible) in tokens.items():
        assert token is not None
        with httpx.Client(base_url=world.base, headers=bearer(token)) as http:
            for path in LISTS:
                seen, _ = _site_ids(http, path)
                assert seen == visible, f"{who} {path}: saw sites {seen}, may see {visible}"
                # filtering for the other tenant's site finds nothing rather than leaking it
                for label in ("A", "B"):
                    if world.ids[label]["site"] in visible:
                        continue
                    by_path: dict[str, dict[str, Any]] = {
                        "/sites": {"code": label},
                        "/thresholds": {"work_id": world.ids[label]["work"]},
                    }
                    params = by_path.get(path, {"site_id": world.ids[label]["site"]})
                    assert _site_ids(http, path, **params) == (set(), 0), f"{who} {path}"
            stats = http.get("/statistics").json()
            assert stats["sites"] == len(visible), who
            assert stats["active_alerts"]["red"] == len(visible), who


def test_lists_page_and_sort_the_same_way(world: World) -> None:
    with httpx.Client(base_url=world.base, headers=bearer(world.tokens["admin"] or "")) as http:
        everything = http.get("/hazards", params={"sort": "id", "limit": 500}).json()
        ids = [row["id"] for row in everything["data"]]
        assert ids == sorted(ids)
        assert everything["count"] == len(ids) == 10
        pages = [
            http.get("/hazards", params={"sort": "id", "limit": 3, "offset": offset}).json()
            for offset in range(0, 12, 3)
        ]
        assert [row["id"] for page in pages for row in page["data"]] == ids
        assert {page["count"] for page in pages} == {10}
        newest = http.get("/hazards", params={"sort": "-id", "limit": 1}).json()["data"][0]
        assert newest["id"] == ids[-1]
        for path in ("/sites", "/hazards", "/alerts", "/tokens"):
            refused = http.get(path, params={"sort": "password"})
            assert refused.status_code == 422
            assert "sort" in refused.json()["detail"]
            assert http.get(path, params={"limit": 0}).status_code == 422


def test_statistics_by_region_roll_up_provinces_cities_and_counties_in_scope(
    world: World,
) -> None:
    def by_region(token: str | None, parent: str = "") -> list[tuple[object, ...]]:
        response = httpx.get(
            f"{world.base}/statistics/regions",
            params={"parent": parent},
            headers=bearer(token or ""),
        )
        assert response.status_code == 200, response.text
        return [
            (r["region_code"], r["name"], r["sites"], r["alerts_red"], r["hazards_open"])
            for r in response.json()["data"]
        ]

    # each site has one red alert and five open hazards (registered .. verified)
    assert by_region(world.tokens["admin"]) == [
        ("420000", "湖北省", 1, 1, 5),
        ("440000", "广东省", 1, 1, 5),
    ]
    assert by_region(world.tokens["admin"], "42") == [("420100", "武汉市", 1, 1, 5)]
    assert by_region(world.tokens["admin"], "4201") == [("420106", "武昌区", 1, 1, 5)]
    assert by_region(world.tokens["regulator"]) == [("420000", "湖北省", 1, 1, 5)]
    assert by_region(world.tokens["enterprise"], "44") == []
    refused = httpx.get(
        f"{world.base}/statistics/regions",
        params={"parent": "420106"},
        headers=bearer(world.tokens["admin"] or ""),
    )
    assert refused.status_code == 422
