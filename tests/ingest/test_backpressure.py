"""Backpressure: while the database stalls, ingest stops acknowledging and stops reading with
bounded memory, the broker keeps the backlog, and nothing is lost or duplicated afterwards."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from hazmon.settings import Settings
from tests.support.common import free_port, wait_until
from tests.support.harness import (
    IngestProcess,
    PrivateMosquitto,
    Publisher,
    Stream,
    crane_inventory,
    digest_of,
    series_map,
    stored_count,
    stored_digest,
)
from tests.support.inventories import load

pytestmark = [pytest.mark.slow]

MAX_PENDING = 200


def test_a_stalled_database_stops_reading_with_bounded_pending_and_loses_nothing(
    on_private_broker: tuple[PrivateMosquitto, Settings], tmp_path: Path
) -> None:
    settings = on_private_broker[1].model_copy(update={"max_pending_messages": MAX_PENDING})
    db_url = settings.database_url
    load(db_url, tmp_path, *crane_inventory(["B1"], 10))
    stream = Stream.cranes(settings.topic_root, ["B1"], 10, 200)  # 2,000 messages
    with IngestProcess(settings, tmp_path / "ingest.log", metrics_port=free_port()) as ingest:
        with psycopg.connect(db_url) as blocker:
            # Every COPY into readings now waits: the database is "slow" for as long as we hold it.
            blocker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
            with Publisher(settings.mqtt_url, stream) as publisher:
                assert publisher.wait_acked(60), "the broker did not take the whole stream"
            time.sleep(1.0)
            stalled = ingest.scrape()
            blocker.rollback()
        assert wait_until(lambda: stored_count(db_url) >= stream.readings, 60)
        time.sleep(0.5)
        after = ingest.scrape()
    assert stalled["hazmon_ingest_messages_committed_total"] == 0, "acknowledged before commit"
    # At most the hand-off queue, the batch being collected and the batch with the writer are
    # in ingest, whatever the broker holds (here ten times as much). (Without any ack yet,
    # Mosquitto also honours the Receive Maximum: it measured exactly MAX_PENDING.)
    one_batch = settings.batch_max_readings // 50
    assert 0 < stalled["hazmon_ingest_pending_messages"] <= MAX_PENDING + 2 * one_batch + 1
    assert stalled["hazmon_ingest_messages_received_total"] < stream.messages / 2
    assert after["hazmon_ingest_messages_committed_total"] == stream.messages
    assert after["hazmon_ingest_pending_messages"] == 0
    assert stored_digest(db_url) == digest_of(*stream.expected(series_map(db_url)))
