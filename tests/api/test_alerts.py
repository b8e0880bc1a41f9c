"""Alerts through the API: scoped filters, acknowledgement recorded by the rule engine's store."""

from __future__ import annotations

import httpx
import psycopg

from tests.support.tokens import bearer
from tests.support.world import World


def test_acknowledge_records_who_and_why_once_and_refuses_resolved_alerts(world: World) -> None:
    alert = world.ids["A"]["alert"]
    with httpx.Client(
        base_url=world.base, headers=bearer(world.tokens["enterprise"] or "")
    ) as http:
        active = http.get("/alerts", params={"state": "active", "min_grade": 4}).json()
        assert [a["id"] for a in active["data"]] == [alert]
        assert active["data"][0]["grade_name"] == "red"
        blank = http.post(f"/alerts/{alert}/acknowledge", json={"note": "   "})
        assert blank.status_code == 422
        acked = http.post(f"/alerts/{alert}/acknowledge", json={"note": "已停止吊装，检查限位器"})
        assert acked.status_code == 200
        body = acked.json()
        assert body["state"] == "acknowledged"
        assert body["acknowledged_by"].startswith("enterprise:")
        assert body["ack_note"] == "已停止吊装，检查限位器"
        again = http.post(f"/alerts/{alert}/acknowledge", json={"note": "again"})
        assert again.status_code == 200
        assert again.json()["ack_note"] == "已停止吊装，检查限位器"
        assert http.get("/alerts", params={"state": "open"}).json()["count"] == 0
    with psycopg.connect(world.db_url) as conn:
        actions = conn.execute(
            "SELECT action, actor FROM alert_transitions WHERE alert_id = %s", (alert,)
        ).fetchall()
        assert [a for a, _ in actions] == ["acknowledge"]
        conn.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = now() WHERE id = %s",
            (world.ids["B"]["alert"],),
        )
    with httpx.Client(base_url=world.base, headers=bearer(world.tokens["admin"] or "")) as http:
        resolved = http.post(f"/alerts/{world.ids['B']['alert']}/acknowledge", json={"note": "x"})
        assert resolved.status_code == 409
        assert "resolved" in resolved.json()["detail"]
