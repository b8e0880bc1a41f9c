"""The walking skeleton: mosquitto_pub → ingest → readings + alert → GET /alerts, within 2 s."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import psycopg

from hazmon.settings import Settings
from tests.support.common import wait_until
from tests.support.inventories import crane_site, load
from tests.support.services import mosquitto_pub, running_api, running_ingest
from tests.support.tokens import bearer, issue


def test_over_limit_reading_opens_an_alert_visible_in_the_api(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1", "TC1-M"))
    topic = f"{settings.topic_root}/S1/TC1-M/telemetry"
    with (
        running_ingest(settings),
        running_api(settings) as base,
        httpx.Client(base_url=base, headers=bearer(issue(db_url))) as http,
    ):
        assert http.get("/alerts").json()["count"] == 0
        ts_ms = int(time.time() * 1000)
        payload = {"ts": ts_ms, "values": {"moment_ratio": 1.02, "load_t": 6.5}}
        published = time.monotonic()
        mosquitto_pub(settings, topic, json.dumps(payload).encode(), tmp_path)

        def alert_listed() -> bool:
            return bool(http.get("/alerts", params={"state": "active"}).json()["data"])

        assert wait_until(alert_listed, 2.0, 0.02), "no alert at GET /alerts within 2 s"
        assert time.monotonic() - published < 2.0
        alert = http.get("/alerts").json()["data"][0]
        assert alert["site_code"] == "S1"
        assert alert["metric"] == "moment_ratio"
        assert alert["grade_name"] == "red"
        assert alert["value"] == 1.02
        assert "力矩" in alert["message_zh"]
        assert "moment" in alert["message_en"]
        with psycopg.connect(db_url) as conn:
            rows = conn.execute(
                """SELECT se.metric, r.value, extract(epoch FROM r.time) * 1000
                   FROM readings r JOIN series se ON se.id = r.series_id ORDER BY se.metric"""
            ).fetchall()
        assert [(m, v, round(float(t))) for m, v, t in rows] == [
            ("load_t", 6.5, ts_ms),
            ("moment_ratio", 1.02, ts_ms),
        ]
        assert http.get("/healthz").json() == {"status": "ok"}
        metrics = http.get("/metrics")
        assert metrics.status_code == 200
        assert "# TYPE" in metrics.text
