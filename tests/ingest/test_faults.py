"""Crashes and restarts mid-stream lose and duplicate nothing.

A 200,000-reading stream (4,000 payloads of 50 readings from 20 cranes) is published at QoS 1
while ingest runs as a real subprocess; halfway through, ingest is killed with SIGKILL, or the
broker or PostgreSQL restarts. Each test runs on a Mosquitto of its own configured with hazmon's
broker limits (deploy/mosquitto/hazmon.conf): what ingest misses while it is away must exceed
Mosquitto's default queue of 1000 messages. Afterwards the readings table must hold exactly the published
set: same count, no (series, time) twice, same SHA-256 over the sorted (series, time, value).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hazmon.migrate import migrate
from hazmon.settings import Settings
from tests.support.common import wait_until
from tests.support.harness import (
    IngestProcess,
    PrivateMosquitto,
    Publisher,
    Stream,
    ThrowawayPostgres,
    crane_inventory,
    digest_of,
    series_map,
    stored_count,
    stored_digest,
)
from tests.support.inventories import load

pytestmark = [pytest.mark.slow, pytest.mark.fault]

DEVICES = 20
MESSAGES_PER_DEVICE = 200  # 20 × 200 × 50 = 200,000 readings
RATE_MSGS_S = 800.0  # about 5 s of stream, so the fault lands in its middle
FAULT_AT_READINGS = 60_000


def _stream_through_fault(
    settings: Settings, tmp_path: Path, fault: Callable[[IngestProcess, Publisher], None]
) -> None:
    """Publish the stream, apply `fault` once a share of it is stored, verify the table."""
    db_url = settings.database_url
    load(db_url, tmp_path, *crane_inventory(["F1"], DEVICES))
    stream = Stream.cranes(settings.topic_root, ["F1"], DEVICES, MESSAGES_PER_DEVICE)
    assert stream.readings == 200_000
    with (
        IngestProcess(settings, tmp_path / "ingest.log") as ingest,
        Publisher(settings.mqtt_url, stream, rate_msgs_s=RATE_MSGS_S) as publisher,
    ):
        assert wait_until(lambda: stored_count(db_url) >= FAULT_AT_READINGS, 60), ingest.log_tail()
        assert publisher.published < stream.messages, "the stream ended before the fault"
        fault(ingest, publisher)
        assert publisher.wait_acked(120), f"broker acked {publisher.acked}/{stream.messages}"
        counts = [-1]

        def complete_or_stalled() -> bool:
            counts.append(stored_count(db_url))
            return counts[-1] >= stream.readings or (len(counts) > 10 and counts[-1] == counts[-11])

        wait_until(complete_or_stalled, 120, 0.5)  # stalled: unchanged for 5 s
        assert counts[-1] == stream.readings, f"{counts[-1]} stored; {ingest.log_tail()}"
        time.sleep(0.5)  # anything redelivered late must not add rows
    expected = digest_of(*stream.expected(series_map(db_url)))
    assert stored_digest(db_url) == expected


def test_kill_9_of_ingest_mid_stream(
    on_private_broker: tuple[PrivateMosquitto, Settings], tmp_path: Path
) -> None:
    def kill_and_restart(ingest: IngestProcess, publisher: Publisher) -> None:
        ingest.kill()
        # While ingest is away its session queues more than Mosquitto's default limit of 1000
        # messages: only the limits of deploy/mosquitto/hazmon.conf keep them all.
        published = publisher.published
        assert wait_until(lambda: publisher.published >= published + 1500, 30)
        ingest.start()

    _stream_through_fault(on_private_broker[1], tmp_path, kill_and_restart)


def test_broker_restart_mid_stream(
    on_private_broker: tuple[PrivateMosquitto, Settings], tmp_path: Path
) -> None:
    broker, settings = on_private_broker
    _stream_through_fault(settings, tmp_path, lambda *_: broker.restart(down_s=1.0))


def test_postgres_crash_mid_stream(
    on_private_broker: tuple[PrivateMosquitto, Settings], tmp_path: Path
) -> None:
    with ThrowawayPostgres() as pg:
        db_url = pg.url("hazmon")
        migrate(db_url)
        settings = on_private_broker[1].model_copy(update={"database_url": db_url})
        # Immediate shutdown: a crash, recovered from the WAL; ingest waits, unacknowledged.
        _stream_through_fault(settings, tmp_path, lambda *_: pg.restart(graceful=False, down_s=2.0))
