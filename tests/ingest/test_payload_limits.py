"""Oversized payloads: the broker refuses huge ones, ingest dead-letters moderately large ones
without keeping them, and ingest's memory is bounded by bytes held, not by message count."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from prometheus_client import Gauge

from hazmon.settings import MqttEndpoint, Settings
from ingest.mqtt import PREFIX_BYTES
from tests.conftest import wait_until
from tests.ingest.fixtures import (
    PrivateMosquitto,
    Publisher,
    Stream,
    crane_inventory,
    digest_of,
    series_map,
    stored_count,
    stored_digest,
)
from tests.inventories import crane_site, load
from tests.services import mosquitto_pub, running_ingest

pytestmark = [pytest.mark.slow]

MOSQ_ERR_CONN_LOST = 7
BOUND = 1024 * 1024


def _gauge(gauge: Gauge) -> float:
    return next(iter(gauge.collect())).samples[0].value


def _publish_file(broker_url: str, topic: str, path: Path, version: str) -> int:
    endpoint = MqttEndpoint.parse(broker_url)
    command = ["mosquitto_pub", "-h", endpoint.host, "-p", str(endpoint.port), "-q", "1"]
    done = subprocess.run(
        [*command, "-V", version, "-t", topic, "-f", str(path)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode


def test_the_broker_refuses_a_huge_payload_and_ingest_dead_letters_a_large_one(
    on_private_broker: tuple[PrivateMosquitto, Settings], tmp_path: Path
) -> None:
    broker, settings = on_private_broker
    db_url = settings.database_url
    load(db_url, tmp_path, crane_site("S1", "TC1-M"))
    topic = f"{settings.topic_root}/S1/TC1-M/telemetry"
    huge = tmp_path / "huge.json"  # 2 MB: over max_packet_size (1 MiB) in hazmon.conf
    huge.write_bytes(b'{"values": {"load_t": 1}, "pad": "' + b"x" * 2_000_000 + b'"}')
    # 512 KiB: over ingest's HAZMON_MAX_PAYLOAD_BYTES (256 KiB), under the broker's limit.
    large = b'{"values": {"load_t": 1}, "pad": "' + b"y" * (512 * 1024) + b'"}'
    now_ms = int(time.time() * 1000)
    with running_ingest(settings) as service:
        # MQTT 3.1.1: the broker drops the connection when the packet header arrives.
        assert _publish_file(broker.url, topic, huge, "mqttv311") == MOSQ_ERR_CONN_LOST
        # MQTT 5: CONNACK announced the Maximum Packet Size; libmosquitto does not send it.
        assert _publish_file(broker.url, topic, huge, "mqttv5") == 0
        mosquitto_pub(settings, topic, large, tmp_path)
        mosquitto_pub(settings, topic, b'{"ts": %d, "values": {"load_t": 2.5}}' % now_ms, tmp_path)

        def arrived() -> bool:
            with psycopg.connect(db_url) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM dead_letters), (SELECT count(*) FROM readings)"
                ).fetchone()
            return row == (1, 1)

        assert wait_until(arrived, 15), "the dead letter or the valid reading did not arrive"
        time.sleep(0.5)
        assert service.source.connected.is_set(), "ingest lost its connection"
        received = next(iter(service.metrics.messages_received.collect())).samples[0].value
    assert received == 2, "a payload over the broker's limit reached ingest"
    assert b"disconnected due to oversize packet" in broker.log_path.read_bytes()
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT topic, reason, detail, payload FROM dead_letters").fetchall()
    assert len(rows) == 1
    letter_topic, reason, detail, payload = rows[0]
    assert (letter_topic, reason) == (topic, "payload_too_large")
    assert f"{len(large)} bytes, limit {settings.max_payload_bytes}" in detail
    assert hashlib.sha256(large).hexdigest() in detail
    assert bytes(payload) == large[:PREFIX_BYTES]


def test_pending_bytes_stay_within_the_byte_bound_while_the_database_stalls(
    on_private_broker: tuple[PrivateMosquitto, Settings], tmp_path: Path
) -> None:
    settings = on_private_broker[1].model_copy(update={"max_pending_bytes": BOUND})
    db_url = settings.database_url
    load(db_url, tmp_path, *crane_inventory(["M1"], 10))
    # 80 messages of 1,000 readings padded to 200 KiB: 16 MB, sixteen times the bound.
    stream = Stream.cranes(settings.topic_root, ["M1"], 10, 8, entries=100, pad_to_bytes=200 * 1024)
    size = max(len(payload) for _, payload in stream.payloads())
    with running_ingest(settings) as service:
        pending_bytes = service.metrics.pending_bytes
        with psycopg.connect(db_url) as blocker:
            # Every COPY into readings now waits: the database is "slow" while we hold it.
            blocker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
            with Publisher(settings.mqtt_url, stream) as publisher:
                assert publisher.wait_acked(60), "the broker did not take the whole stream"
            time.sleep(1.0)
            stalled_bytes = _gauge(pending_bytes)
            stalled_messages = _gauge(service.metrics.pending_messages)
            blocker.rollback()
        assert wait_until(lambda: stored_count(db_url) >= stream.readings, 60)
        time.sleep(0.5)
        after_bytes = _gauge(pending_bytes)
        peak = service.source.messages.peak_held_bytes
    # Ingest took in messages up to the byte bound (not the 2,000-message one) and no further.
    assert BOUND - size < stalled_bytes <= BOUND + size
    assert stalled_messages <= BOUND // size + 1
    assert peak <= BOUND + size
    assert after_bytes == 0
    assert stored_digest(db_url) == digest_of(*stream.expected(series_map(db_url)))
