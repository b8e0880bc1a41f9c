"""Malformed payloads each land in dead_letters with a distinct reason; ingest keeps going."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from hazmon.settings import Settings
from ingest.mqtt import PREFIX_BYTES
from tests.conftest import wait_until
from tests.inventories import crane_site, load
from tests.services import mosquitto_pub, running_ingest


def test_each_malformed_payload_gives_one_dead_letter_and_ingest_goes_on(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    other = crane_site("S2", "TC9-M")
    load(db_url, tmp_path, crane_site("S1", "TC1-M"), other)
    root = settings.topic_root
    good = f"{root}/S1/TC1-M/telemetry"
    now_ms = int(time.time() * 1000)
    cases: list[tuple[str, str, bytes]] = [
        ("invalid_utf8", good, b'{"values": {"load_t": 1}}\xff\xfe'),
        ("invalid_json", good, b'{"ts": 1, "values": '),
        ("wrong_shape", good, b'{"ts": 1700000000000, "value": 3}'),
        ("unknown_site", f"{root}/NOPE/TC1-M/telemetry", b'{"values": {"load_t": 1}}'),
        ("unknown_device", f"{root}/S1/GHOST/telemetry", b'{"values": {"load_t": 1}}'),
        ("device_not_in_site", f"{root}/S1/TC9-M/telemetry", b'{"values": {"load_t": 1}}'),
        ("unknown_metric", good, json.dumps({"ts": now_ms, "values": {"depth_mm": 1}}).encode()),
        ("not_a_number", good, json.dumps({"ts": now_ms, "values": {"load_t": "heavy"}}).encode()),
        ("not_finite", good, b'{"ts": %d, "values": {"load_t": NaN}}' % now_ms),
        (
            "timestamp_too_old",
            good,
            json.dumps({"ts": 86_400_000, "values": {"load_t": 1}}).encode(),
        ),
        (
            "timestamp_in_future",
            good,
            json.dumps({"ts": now_ms + 86_400_000, "values": {"load_t": 1}}).encode(),
        ),
        (
            "too_many_readings",
            good,
            json.dumps([{"values": {"load_t": i}} for i in range(1001)]).encode(),
        ),
        ("payload_too_large", good, b'{"values": {"load_t": 1}, "pad": "' + b"x" * 300_000 + b'"}'),
        ("bad_topic", f"{root}//TC1-M/telemetry", b'{"values": {"load_t": 1}}'),
    ]
    with running_ingest(settings) as service:
        for _, topic, payload in cases:
            mosquitto_pub(settings, topic, payload, tmp_path)
        mosquitto_pub(
            settings, good, json.dumps({"ts": now_ms, "values": {"load_t": 2.5}}).encode(), tmp_path
        )

        def stored() -> bool:
            with psycopg.connect(db_url) as conn:
                n_dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
                n_read = conn.execute("SELECT count(*) FROM readings").fetchone()
            return bool(n_dead and n_read and n_dead[0] >= len(cases) and n_read[0] >= 1)

        assert wait_until(stored, 10), "dead letters or the valid reading did not arrive"
        counted = {
            sample.labels["reason"]: sample.value
            for family in service.metrics.dead_letters.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        }
    assert counted == {reason: 1.0 for reason, _, _ in cases}
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT topic, reason, detail, payload FROM dead_letters ORDER BY id"
        ).fetchall()
        readings = conn.execute("SELECT value FROM readings").fetchall()
    assert sorted(r[1] for r in rows) == sorted(reason for reason, _, _ in cases)
    by_reason = {r[1]: r for r in rows}
    for reason, topic, payload in cases:
        assert by_reason[reason][0] == topic
        # Of a payload over the size limit only a prefix is kept (ingest/mqtt.py).
        kept = payload[:PREFIX_BYTES] if reason == "payload_too_large" else payload
        assert bytes(by_reason[reason][3]) == kept, f"raw bytes of {reason} not kept"
        assert by_reason[reason][2], f"{reason} has no detail"
    assert readings == [(2.5,)]
