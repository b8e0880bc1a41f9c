"""Gateway status: `online` on the status topic, `offline` from the broker as its last will."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import psycopg

from hazmon.settings import MqttEndpoint, Settings
from tests.support.common import wait_until
from tests.support.inventories import crane_site, load
from tests.support.services import mosquitto_pub, running_ingest


def _status(db_url: str) -> tuple[bool, datetime] | None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT online, changed_at FROM device_status").fetchone()
    return (row[0], row[1]) if row else None


def test_status_topic_and_last_will_record_online_then_offline(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1", "TC1-M"))
    status_topic = f"{settings.topic_root}/S1/TC1-M/status"
    endpoint = MqttEndpoint.parse(settings.mqtt_url)
    with running_ingest(settings):
        # A gateway that sets `offline` as its last will, then dies without a DISCONNECT.
        connect = [
            "-h",
            endpoint.host,
            "-p",
            str(endpoint.port),
            "-i",
            f"gw-{uuid.uuid4().hex[:8]}",
        ]
        will = ["--will-topic", status_topic, "--will-payload", "offline", "--will-qos", "1"]
        gateway = subprocess.Popen(
            ["mosquitto_sub", *connect, "-t", f"{settings.topic_root}/none", *will],
            stdout=subprocess.DEVNULL,
        )
        try:
            mosquitto_pub(settings, status_topic, b"online", tmp_path)
            assert wait_until(lambda: (_status(db_url) or (False,))[0], 10)
            online = _status(db_url)
            assert online is not None
            assert abs(online[1].timestamp() - time.time()) < 10
        finally:
            gateway.kill()
            gateway.wait(10)
        assert wait_until(lambda: (_status(db_url) or (True,))[0] is False, 10)
        offline = _status(db_url)
        assert offline is not None
        assert offline[1] >= online[1]

        # A report older than the stored one never overwrites it (a gateway's delayed flush).
        stale = {"status": "online", "ts": int((time.time() - 3600) * 1000)}
        mosquitto_pub(settings, status_topic, json.dumps(stale).encode(), tmp_path)
        marker = {"ts": int(time.time() * 1000), "values": {"load_t": 1.0}}
        mosquitto_pub(
            settings,
            f"{settings.topic_root}/S1/TC1-M/telemetry",
            json.dumps(marker).encode(),
            tmp_path,
        )
        with psycopg.connect(db_url) as conn:

            def marker_stored() -> bool:
                row = conn.execute("SELECT count(*) FROM readings").fetchone()
                conn.rollback()
                return bool(row and row[0] == 1)

            assert wait_until(marker_stored, 10)
        assert _status(db_url) == offline
