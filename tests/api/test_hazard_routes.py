"""The hazard loop through the API: each action by the role that owns it, each one recorded,
the five items of a major hazard, users (not tokens) as verifier and rectifier, verification over
an open alert, rounds of rectification."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from tests.support.tokens import bearer
from tests.support.world import World

FUTURE = "2099-01-01T00:00:00Z"
FIVE = {
    "measures": "复紧附着螺栓并做扭矩检测",
    "responsible_unit": "甲建设",
    "responsible_person": "张工",
    "funds_yuan": 5000,
    "deadline": FUTURE,
    "emergency_plan": "停止吊装，设警戒区",
}


@contextmanager
def client(world: World, role: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.base, headers=bearer(world.tokens[role] or "")) as http:
        yield http


def post(http: httpx.Client, url: str, want: int = 200, **body: Any) -> dict[str, Any]:
    response = http.post(url, json=body)
    assert response.status_code == want, response.text
    return dict(response.json())


def test_register_plan_assign_rectify_reject_verify_close_with_audit_trail(world: World) -> None:
    site = world.ids["A"]["site"]
    with (
        client(world, "inspector") as inspector,
        client(world, "enterprise") as enterprise,
        client(world, "regulator") as regulator,
    ):
        hazard = post(
            enterprise,
            "/hazards",
            201,
            site_id=site,
            title="塔吊附着螺栓松动",
            level="major",
            basis="建质规〔2022〕2号 第八条（五）",
            work_id=world.ids["A"]["work"],
            location="1号塔吊第3道附着",
        )
        assert (hazard["state"], hazard["source"], hazard["location"]) == (
            "registered",
            "report",
            "1号塔吊第3道附着",
        )
        assert hazard["found_by"].split(":")[0] == "enterprise"
        url = f"/hazards/{hazard['id']}"
        three: dict[str, Any] = {
            "responsible_unit": "甲建设",
            "responsible_person": "张工",
            "deadline": FUTURE,
        }
        post(enterprise, f"{url}/assign", 403, **three)
        refused = post(inspector, f"{url}/assign", 409, **three)
        assert "五到位" in refused["detail"]
        assert "措施" in refused["detail"]
        assert "资金" in refused["detail"]
        # the plan is completed in a draft, then assigned with the three items
        planned = post(
            inspector,
            f"{url}/plan",
            measures=FIVE["measures"],
            funds_yuan=5000,
            emergency_plan=FIVE["emergency_plan"],
        )
        assert (planned["state"], planned["funds_yuan"]) == ("registered", 5000.0)
        assigned = post(inspector, f"{url}/assign", **three)
        assert (assigned["state"], assigned["responsible_person"]) == ("assigned", "张工")
        assert assigned["measures"] == FIVE["measures"]
        assert post(inspector, f"{url}/close", 409)["detail"].startswith("cannot close")
        supervised = post(
            regulator, f"{url}/supervise", authority="武汉市住建局", level="city", due=FUTURE
        )
        assert supervised["listed_supervision"]
        assert (supervised["supervision_level"], supervised["supervision_region"]) == (
            "city",
            "4201",
        )
        rectified = post(enterprise, f"{url}/rectify", note="已紧固")
        assert rectified["state"] == "rectified"
        due = datetime.fromisoformat(rectified["verification_due"])
        assert abs(due - (datetime.now(UTC) + timedelta(days=10))) < timedelta(minutes=1)
        # the enterprise cannot sign off its own fix; a supervisor rejects it once
        post(enterprise, f"{url}/verify", 403, note="ok")
        assert post(inspector, f"{url}/reject", note="扭矩不足")["state"] == "assigned"
        post(enterprise, f"{url}/rectify", note="复紧并检测")
        verified = post(inspector, f"{url}/verify", note="合格")
        assert verified["verified_by"].startswith("inspector:")
        assert verified["verified_by_user"] is not None
        closed = post(regulator, f"{url}/close", note="销号")
        assert closed["state"] == "closed"
        assert closed["closed_at"] is not None
        trail = inspector.get(f"{url}/events").json()
        assert [e["action"] for e in trail["data"]] == [
            "register", "plan", "assign", "supervise", "rectify", "reject", "rectify", "verify",
            "close",
        ]  # fmt: skip
        assert [e["actor"].split(":")[0] for e in trail["data"]][4:] == [
            "enterprise", "inspector", "enterprise", "inspector", "regulator",
        ]  # fmt: skip
        assert all(e["actor_user"] for e in trail["data"])
        assert trail["data"][5]["note"] == "扭矩不足"
        assert trail["data"][3]["data"]["due"] == "2099-01-01T00:00:00+00:00"
        # two rounds of rectification: rejected, then accepted
        rounds = inspector.get("/rectifications", params={"hazard_id": hazard["id"], "sort": "id"})
        got = [(r["round"], r["outcome"], r["report_note"]) for r in rounds.json()["data"]]
        assert got == [(1, "rejected", "已紧固"), (2, "accepted", "复紧并检测")]
        assert rounds.json()["data"][1]["verification_note"] == "合格"
        assert rounds.json()["data"][0]["funds_yuan"] == 5000.0
        # an alert or work of another site cannot be attached to this site's hazard
        post(
            enterprise,
            "/hazards",
            409,
            site_id=site,
            title="x",
            level="general",
            alert_id=world.ids["B"]["alert"],
        )


def test_a_county_office_cannot_list_at_a_higher_level(world: World) -> None:
    url = f"/hazards/{world.ids['A']['hazard_assigned']}/supervise"
    with psycopg.connect(world.db_url) as conn:
        conn.execute(
            "INSERT INTO users (name, role, region_code) VALUES ('区站', 'regulator', '420106')"
        )
    county = _token_of_new_user(world, "区站")
    with httpx.Client(base_url=world.base, headers=bearer(county)) as http:
        body: dict[str, Any] = {"authority": "湖北省住建厅", "level": "province", "due": FUTURE}
        refused = post(http, url, 409, **body)
        assert "outside the caller's scope" in refused["detail"]
        assert post(http, url, **{**body, "level": "county"})["supervision_region"] == "420106"


def _token_of_new_user(world: World, name: str) -> str:
    with client(world, "admin") as admin:
        (user,) = [u for u in admin.get("/users").json()["data"] if u["name"] == name]
        return str(post(admin, f"/users/{user['id']}/tokens", 201, name="手机")["token"])


def test_the_rectifiers_user_cannot_verify_with_another_token(world: World) -> None:
    url = f"/hazards/{world.ids['A']['hazard_assigned']}"
    with client(world, "admin") as admin:
        me = admin.get("/me").json()
        second = post(admin, f"/users/{me['user_id']}/tokens", 201, name="第二台电脑")
        assert second["user_id"] == me["user_id"]
        assert second["id"] != me["token_id"]
        post(admin, f"{url}/rectify")
    with httpx.Client(base_url=world.base, headers=bearer(second["token"])) as same_person:
        refused = post(same_person, f"{url}/verify", 409)
        assert "another user" in refused["detail"]
        post(same_person, f"{url}/reject", 409)
    # another admin of the same name is another person
    with client(world, "admin") as admin:
        other = post(admin, "/users", 201, name=me["user_name"], role="admin")
        token = post(admin, f"/users/{other['id']}/tokens", 201, name="x")["token"]
    with httpx.Client(base_url=world.base, headers=bearer(token)) as namesake:
        assert post(namesake, f"{url}/verify")["state"] == "verified"


def _sensor_hazard(world: World, alert_id: int, title: str) -> str:
    """A general hazard of `alert_id`, assigned and reported rectified; its URL."""
    with client(world, "enterprise") as enterprise, client(world, "inspector") as inspector:
        h = post(
            enterprise,
            "/hazards",
            201,
            site_id=world.ids["A"]["site"],
            title=title,
            level="general",
            alert_id=alert_id,
        )
        url = f"/hazards/{h['id']}"
        assign: dict[str, Any] = {
            "responsible_unit": "甲建设",
            "responsible_person": "张工",
            "deadline": FUTURE,
        }
        post(inspector, f"{url}/assign", **assign)
        post(enterprise, f"{url}/rectify")
    return url


def test_a_sensor_hazard_waits_for_its_alert_or_a_supervisors_override(world: World) -> None:
    first = world.ids["A"]["alert"]  # open, red
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute(
            """INSERT INTO alerts (series_id, rule, grade, state, opened_at, updated_at,
                                   message_zh, message_en)
               VALUES (%s, 'load_ratio', 3, 'acknowledged', now(), now(), '超载', 'overload')
               RETURNING id""",
            (world.ids["A"]["series"],),
        ).fetchone()
    assert row is not None
    second = int(row[0])
    waits, overridden = (
        _sensor_hazard(world, first, "力矩超限"),
        _sensor_hazard(world, second, "超载"),
    )
    with client(world, "inspector") as inspector, client(world, "regulator") as regulator:
        sensor = inspector.get(waits).json()
        assert (sensor["source"], sensor["alert_open"]) == ("sensor", True)
        refused = post(inspector, f"{waits}/verify", 409)
        assert f"alert {first} is still open" in refused["detail"]
        refused = post(inspector, f"{overridden}/verify", 409, override_reason="已人工复测")
        assert "only admin or regulator" in refused["detail"]
        verified = post(
            regulator, f"{overridden}/verify", override_reason="传感器损坏已更换，人工复测合格"
        )
        assert verified["state"] == "verified"
        last = regulator.get(f"{overridden}/events", params={"sort": "-id", "limit": 1}).json()
        assert last["data"][0]["action"] == "verify_override"
        assert last["data"][0]["data"] == {
            "reason": "传感器损坏已更换，人工复测合格",
            "alert_id": second,
        }
        # once the alert resolves, the inspector verifies without an override
        with psycopg.connect(world.db_url) as conn:
            conn.execute(
                "UPDATE alerts SET state = 'resolved', resolved_at = now() WHERE id = %s", (first,)
            )
        assert inspector.get(waits).json()["alert_open"] is False
        assert post(inspector, f"{waits}/verify")["state"] == "verified"


def test_lists_filter_by_region_kind_source_and_period(world: World) -> None:
    with client(world, "admin") as admin:
        everything = admin.get("/hazards").json()["count"]
        assert admin.get("/hazards", params={"region": "42"}).json()["count"] == everything // 2
        assert admin.get("/hazards", params={"kind": "excavation"}).json()["count"] == 0
        assert admin.get("/hazards", params={"kind": "tower_crane"}).json()["count"] == everything
        assert admin.get("/hazards", params={"source": "sensor"}).json()["count"] == 0
        assert admin.get("/hazards", params={"end": "2000-01-01T00:00:00Z"}).json()["count"] == 0
        assert admin.get("/hazards", params={"start": "2000-01-01T00:00:00Z"}).json()["count"] > 0
        assert admin.get("/hazards", params={"start": "2000-01-01"}).status_code == 422
        rounds = admin.get("/rectifications", params={"region": "44", "outcome": "open"})
        assert {r["site_code"] for r in rounds.json()["data"]} == {"B"}


def test_period_statistics_are_scoped_to_the_caller(world: World) -> None:
    now = datetime.now(UTC)
    period = {
        "start": (now - timedelta(days=30)).isoformat(),
        "end": (now + timedelta(days=1)).isoformat(),
    }
    with client(world, "admin") as admin, client(world, "enterprise") as enterprise:
        everything = admin.get("/statistics/period", params={**period, "by": "province"}).json()
        assert [g["key"] for g in everything["groups"]] == ["42", "44"]
        mine = enterprise.get("/statistics/period", params=period).json()
        assert [g["key"] for g in mine["groups"]] == ["A"]
        assert mine["total"]["hazards"]["opened"] == everything["groups"][0]["hazards"]["opened"]
        assert mine["groups"][0]["missed_inspections"] == 1
        backwards = {"start": period["end"], "end": period["start"]}
        assert admin.get("/statistics/period", params=backwards).status_code == 422
