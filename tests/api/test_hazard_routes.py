"""The hazard loop through the API: each action by the role that owns it, each one recorded."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.tokens import bearer
from tests.support.world import World


def test_register_assign_rectify_reject_verify_close_with_audit_trail(world: World) -> None:
    site = world.ids["A"]["site"]

    def client(role: str) -> httpx.Client:
        return httpx.Client(base_url=world.base, headers=bearer(world.tokens[role] or ""))

    with (
        client("inspector") as inspector,
        client("enterprise") as enterprise,
        client("regulator") as regulator,
    ):
        created = enterprise.post(
            "/hazards",
            json={"site_id": site, "title": "塔吊附着螺栓松动", "level": "major",
                  "basis": "(2022版) 第六条", "work_id": world.ids["A"]["work"]},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        hazard = created.json()
        assert (hazard["state"], hazard["found_by"].split(":")[0]) == ("registered", "enterprise")
        url = f"/hazards/{hazard['id']}"

        def act(http: httpx.Client, action: str, want: int = 200, **body: object) -> dict[str, Any]:
            response = http.post(f"{url}/{action}", json=body)
            assert response.status_code == want, response.text
            return dict(response.json())

        act(enterprise, "assign", 403, responsible_unit="甲", responsible_person="张", deadline="2099-01-01T00:00:00Z")  # fmt: skip
        assigned = act(inspector, "assign", responsible_unit="甲建设", responsible_person="张工", deadline="2099-01-01T00:00:00Z")  # fmt: skip
        assert (assigned["state"], assigned["responsible_person"]) == ("assigned", "张工")
        assert act(inspector, "close", 409)["detail"].startswith("cannot close")
        assert act(regulator, "supervise", authority="武汉市住建局")["listed_supervision"]
        assert act(enterprise, "rectify", note="已紧固")["state"] == "rectified"
        # the enterprise cannot sign off its own fix; a supervisor rejects it once
        act(enterprise, "verify", 403, note="ok")
        assert act(inspector, "reject", note="扭矩不足")["state"] == "assigned"
        act(enterprise, "rectify", note="复紧并检测")
        verified = act(inspector, "verify", note="合格")
        assert verified["verified_by"].startswith("inspector:")
        closed = act(regulator, "close", note="销号")
        assert closed["state"] == "closed"
        assert closed["closed_at"] is not None
        trail = inspector.get(f"{url}/events").json()
        assert [e["action"] for e in trail["data"]] == [
            "register", "assign", "supervise", "rectify", "reject", "rectify", "verify", "close",
        ]  # fmt: skip
        assert [e["actor"].split(":")[0] for e in trail["data"]][3:] == [
            "enterprise", "inspector", "enterprise", "inspector", "regulator",
        ]  # fmt: skip
        assert trail["data"][4]["note"] == "扭矩不足"
        # an alert or work of another site cannot be attached to this site's hazard
        foreign = enterprise.post(
            "/hazards",
            json={"site_id": site, "title": "x", "level": "general",
                  "alert_id": world.ids["B"]["alert"]},
        )  # fmt: skip
        assert foreign.status_code == 409


def test_the_rectifier_cannot_verify_through_the_api(world: World) -> None:
    url = f"/hazards/{world.ids['A']['hazard_assigned']}"
    with httpx.Client(base_url=world.base, headers=bearer(world.tokens["admin"] or "")) as admin:
        assert admin.post(f"{url}/rectify", json={}).status_code == 200
        refused = admin.post(f"{url}/verify", json={})
        assert refused.status_code == 409
        assert "rectifier" in refused.json()["detail"]
    with httpx.Client(
        base_url=world.base, headers=bearer(world.tokens["inspector"] or "")
    ) as other:
        assert other.post(f"{url}/verify", json={}).json()["state"] == "verified"
