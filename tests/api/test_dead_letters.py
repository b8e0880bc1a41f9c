"""Dead letters through the API: inspect the raw bytes, fix the registry, replay."""

from __future__ import annotations

import base64
import json
import time

import httpx
import psycopg

from hazmon.settings import Settings
from tests.support.tokens import bearer
from tests.support.world import World


def test_a_dead_letter_from_an_unregistered_device_replays_once_the_device_exists(
    world: World, settings: Settings
) -> None:
    ts_ms = int(time.time() * 1000)
    payload = json.dumps({"ts": ts_ms, "values": {"load_t": 2.5}}).encode()
    topic = f"{settings.topic_root}/A/TC1-NEW/telemetry"
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute(
            """INSERT INTO dead_letters (topic, reason, detail, payload)
               VALUES (%s, 'unknown_device', 'TC1-NEW', %s) RETURNING id""",
            (topic, payload),
        ).fetchone()
    assert row is not None
    letter = row[0]
    with httpx.Client(base_url=world.base, headers=bearer(world.tokens["admin"] or "")) as http:
        shown = http.get(f"/dead-letters/{letter}").json()
        assert base64.b64decode(shown["payload_base64"]) == payload
        assert shown["payload_text"] == payload.decode()
        listed = http.get("/dead-letters", params={"reason": "unknown_device"}).json()
        assert [d["id"] for d in listed["data"]] == [letter]

        before = http.post("/dead-letters/replay", json={"reason": "unknown_device"}).json()
        assert before["replayed"] == 0
        assert before["still_refused"] == {"unknown_device": 1}

        device = http.post(
            "/devices",
            json={"work_id": world.ids["A"]["work"], "code": "TC1-NEW", "metrics": ["load_t"]},
        )
        assert device.status_code == 201
        after = http.post("/dead-letters/replay", json={"reason": "unknown_device"}).json()
        assert (after["replayed"], after["readings_stored"]) == (1, 1)
        assert http.get(f"/dead-letters/{letter}").json()["replayed_at"] is not None
        assert http.get("/dead-letters", params={"replayed": False}).json()["count"] == 1

        (series,) = http.get("/series", params={"device_id": device.json()["id"]}).json()["data"]
        readings = http.get(f"/series/{series['id']}/readings").json()
        assert [p["value"] for p in readings["data"]] == [2.5]
        refused = http.post("/dead-letters/replay", json={"reason": "not_a_reason"})
        assert refused.status_code == 422
