"""The last-resort guards of ingest/service.py: no message stops ingest, whatever goes wrong.

- The writer: a batch the database refuses for a reason other than the connection is bisected;
  every other message of it is committed, the culprit is dead-lettered as store_failed with the
  exception named, and the rule engine stays in step with the database (a refusal after the
  rules graded the batch rolls their state back with it).
- The decoder: a message whose decoding raises is dead-lettered as decode_failed.

The refusals are real: triggers created in this test's own database only.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

import ingest.service
from hazmon.logs import JsonFormatter
from hazmon.settings import MqttEndpoint, Settings
from hazmon.wire import TopicAddress
from ingest.decode import Decoded, Limits, SeriesLookup
from tests.support.common import wait_until
from tests.support.inventories import crane_site, load
from tests.support.services import running_ingest

REFUSED_READING = 6.625  # load_t: refused by a trigger on readings (before the rules run)
REFUSED_TRANSITION = 1.0625  # moment_ratio: red; its alert transition is refused (after them)

_TRIGGERS = f"""
CREATE FUNCTION test_refuse_reading() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.value = {REFUSED_READING} THEN
        RAISE EXCEPTION 'test trigger: reading value % refused', NEW.value;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_refuse_reading BEFORE INSERT ON readings
    FOR EACH ROW EXECUTE FUNCTION test_refuse_reading();
CREATE FUNCTION test_refuse_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.value = {REFUSED_TRANSITION} THEN
        RAISE EXCEPTION 'test trigger: transition at % refused', NEW.value;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_refuse_transition BEFORE INSERT ON alert_transitions
    FOR EACH ROW EXECUTE FUNCTION test_refuse_transition();
"""


def _burst(settings: Settings, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 from one paho client as fast as it goes (so ingest batches them)."""
    endpoint = MqttEndpoint.parse(settings.mqtt_url)
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"hazmon-burst-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _reading(ts_ms: int, **values: float) -> bytes:
    return json.dumps({"ts": ts_ms, "values": values}).encode()


@pytest.fixture
def refusing_db(db_url: str, tmp_path: Path) -> str:
    """This test's database with one crane and the two refusing triggers."""
    load(db_url, tmp_path, crane_site("S1", "TC1-M"))
    with psycopg.connect(db_url) as conn:
        conn.execute(_TRIGGERS)
    return db_url


@pytest.fixture
def ingest_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The log records of ingest, from INFO up."""
    caplog.set_level(logging.INFO, logger="ingest")
    return caplog


def _counted(service: ingest.IngestService) -> dict[str, float]:
    return {
        sample.labels["reason"]: sample.value
        for family in service.metrics.dead_letters.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def test_a_refused_batch_is_bisected_and_only_the_culprits_are_dead_lettered(
    settings: Settings, refusing_db: str, ingest_logs: pytest.LogCaptureFixture
) -> None:
    db_url = refusing_db
    root = settings.topic_root
    telemetry, status = f"{root}/S1/TC1-M/telemetry", f"{root}/S1/TC1-M/status"
    t0 = int(time.time() * 1000) - 60_000
    good = [_reading(t0 + k * 1000, load_t=1.0 + k / 8) for k in range(5)]
    refused_reading = _reading(t0 + 5_000, load_t=REFUSED_READING)
    refused_transition = _reading(t0 + 6_000, moment_ratio=REFUSED_TRANSITION)
    unknown_metric = _reading(t0 + 7_000, depth_mm=3.0)
    batch = [
        (telemetry, good[0]),
        (telemetry, good[1]),
        (telemetry, refused_reading),
        (telemetry, good[2]),
        (telemetry, refused_transition),
        (telemetry, unknown_metric),
        (status, b"online"),
        (telemetry, good[3]),
        (telemetry, good[4]),
    ]
    # One batch: ingest collects for 1.5 s after the first message of the burst.
    with running_ingest(settings.model_copy(update={"batch_max_wait_ms": 1500})) as service:
        _burst(settings, batch)

        def settled() -> bool:
            return service.source.pending == 0 and _counted(service).get("store_failed") == 2

        assert wait_until(settled, 30), _counted(service)
        # The engine was rebuilt after the refused transition: this red reading opens an alert
        # (an engine still holding the refused one's state would think it open already).
        _burst(settings, [(telemetry, _reading(t0 + 8_000, moment_ratio=1.03))])
        with psycopg.connect(db_url) as conn:

            def alert_opened() -> bool:
                row = conn.execute("SELECT count(*) FROM alert_transitions").fetchone()
                conn.rollback()
                return bool(row and row[0] >= 1)

            assert wait_until(alert_opened, 10)
        counted = _counted(service)
        [committed] = [
            sample.value
            for family in service.metrics.messages_committed.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        ]

    assert counted == {"store_failed": 2.0, "unknown_metric": 1.0}
    assert committed == len(batch) + 1
    refusals = [r for r in ingest_logs.records if r.getMessage().startswith("batch refused")]
    assert [r.__dict__["messages"] for r in refusals] == [len(batch)], "not one batch"
    with psycopg.connect(db_url) as conn:
        values = conn.execute(
            """SELECT se.metric, r.value FROM readings r JOIN series se ON se.id = r.series_id
               ORDER BY r.time"""
        ).fetchall()
        letters = conn.execute(
            "SELECT reason, detail, payload FROM dead_letters ORDER BY id"
        ).fetchall()
        transitions = conn.execute(
            "SELECT action, value FROM alert_transitions ORDER BY id"
        ).fetchall()
        online = conn.execute("SELECT online FROM device_status").fetchall()
    assert values == [("load_t", 1.0 + k / 8) for k in range(5)] + [("moment_ratio", 1.03)]
    by_payload = {bytes(payload): (reason, detail) for reason, detail, payload in letters}
    assert len(letters) == 3
    assert by_payload[unknown_metric][0] == "unknown_metric"
    for culprit, what in ((refused_reading, "reading value"), (refused_transition, "transition")):
        reason, detail = by_payload[culprit]
        assert reason == "store_failed"
        assert "psycopg.errors.RaiseException" in detail
        assert f"test trigger: {what}" in detail
    assert [action for action, _ in transitions] == ["open"]
    assert transitions[0][1] == 1.03
    assert online == [(True,)]


def test_a_message_whose_decoding_raises_is_dead_lettered_and_ingest_goes_on(
    settings: Settings,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ingest_logs: pytest.LogCaptureFixture,
) -> None:
    load(db_url, tmp_path, crane_site("S1", "TC1-M"))
    topic = f"{settings.topic_root}/S1/TC1-M/telemetry"
    now_ms = int(time.time() * 1000)
    poison = _reading(now_ms - 2000, load_t=4.5)
    real_decode = ingest.decode.decode_telemetry

    def decode_with_a_bug(
        address: TopicAddress,
        payload: bytes,
        received_us: int,
        limits: Limits,
        lookup: SeriesLookup,
    ) -> Decoded:
        if payload == poison:
            raise RecursionError("maximum recursion depth exceeded\x00 " + "x" * 5000)
        return real_decode(address, payload, received_us, limits, lookup)

    monkeypatch.setattr(ingest.service, "decode_telemetry", decode_with_a_bug)
    with running_ingest(settings) as service:
        _burst(settings, [(topic, poison), (topic, _reading(now_ms - 1000, load_t=2.5))])
        assert wait_until(lambda: _counted(service).get("decode_failed") == 1, 10)
        assert wait_until(lambda: service.source.pending == 0, 10), "not acknowledged"
    with psycopg.connect(db_url) as conn:
        letters = conn.execute("SELECT reason, detail, payload FROM dead_letters").fetchall()
        values = conn.execute("SELECT value FROM readings").fetchall()
    assert values == [(2.5,)]
    [(reason, detail, payload)] = letters
    assert (reason, bytes(payload)) == ("decode_failed", poison)
    assert detail.startswith("decoding raised RecursionError: maximum recursion depth exceeded")
    assert "\x00" not in detail
    assert len(detail) < 400
    [record] = [r for r in ingest_logs.records if r.getMessage().startswith("message could not")]
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["reason"] == "decode_failed"
    assert entry["topic"] == topic
    assert entry["payload_bytes"] == len(poison)
    assert entry["error"].startswith("RecursionError: ")
    assert "load_t" not in line, "the log line dumps the payload"
