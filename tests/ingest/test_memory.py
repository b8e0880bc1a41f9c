"""Ingest's peak memory is bounded by bytes held, whatever the messages look like.

Each case publishes into an ingest subprocess while the readings table is locked, so ingest
takes in all it may hold and stops there (the broker keeps the rest); its peak resident memory
(VmHWM) must stay under one generous cap. Before the byte bound, ingest held up to 2,000
messages whatever their size: the padded and the 10 MB cases went far past the cap. The exact
figures of full 3-million-reading runs are `bench/ingest_bench.py memory` (bench/README.md).
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from hazmon.settings import Settings
from tests.conftest import free_port, wait_until
from tests.ingest.fixtures import (
    IngestProcess,
    PrivateMosquitto,
    Publisher,
    Stream,
    crane_inventory,
    stored_count,
)
from tests.inventories import load

pytestmark = [pytest.mark.slow]

PEAK_RSS_CAP_MB = 200
NO_PACKET_LIMIT = "max_packet_size 268435455"  # MQTT's own maximum: lifts hazmon.conf's limit
DEVICES = 10


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def _stream(case: str, topic_root: str) -> Stream:
    if case == "messages_50":  # 2,400 messages of 50 readings: past the 2,000-message bound
        return Stream.cranes(topic_root, ["R1"], DEVICES, 240)
    if case == "messages_1000":  # 2,400 of 1,000 readings (21 KB): 50 MB
        return Stream.cranes(topic_root, ["R1"], DEVICES, 240, entries=100)
    if case == "padded_256k":  # 1,000 of 1,000 readings padded to the 256 KiB limit: 262 MB
        return Stream.cranes(topic_root, ["R1"], DEVICES, 100, entries=100, pad_to_bytes=262_144)
    # 40 payloads of 10 MB, over ingest's limit: each one a payload_too_large dead letter.
    return Stream.cranes(topic_root, ["R1"], DEVICES, 4, pad_to_bytes=10 * 1024 * 1024)


@pytest.mark.parametrize("case", ["messages_50", "messages_1000", "padded_256k", "refused_10mb"])
def test_peak_memory_of_ingest_stays_under_a_cap_whatever_the_payloads(
    settings: Settings, tmp_path: Path, case: str
) -> None:
    # A broker without hazmon's packet limit, so that the 10 MB payloads reach ingest (with the
    # limit the broker refuses them: test_payload_limits.py); no snapshot while the test runs.
    with PrivateMosquitto(extra=f"{NO_PACKET_LIMIT}\nautosave_interval 3600") as broker:
        settings = settings.model_copy(update={"mqtt_url": broker.url})
        db_url = settings.database_url
        load(db_url, tmp_path, *crane_inventory(["R1"], DEVICES))
        stream = _stream(case, settings.topic_root)
        with IngestProcess(settings, tmp_path / "ingest.log", metrics_port=free_port()) as ingest:
            with psycopg.connect(db_url) as blocker:
                blocker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
                with Publisher(settings.mqtt_url, stream) as publisher:
                    assert publisher.wait_acked(120), "the broker did not take the whole stream"
                time.sleep(1.0)
                stalled = ingest.scrape()
                peak_mb = _peak_rss_mb(ingest.pid)
                blocker.rollback()
            if case == "refused_10mb":
                done = lambda: ingest.scrape()["hazmon_ingest_messages_committed_total"]  # noqa: E731
                assert wait_until(lambda: done() >= stream.messages, 60), ingest.log_tail()
            else:
                assert wait_until(lambda: stored_count(db_url) >= stream.readings, 120)
            peak_mb = max(peak_mb, _peak_rss_mb(ingest.pid))
    assert peak_mb < PEAK_RSS_CAP_MB, f"{case}: peak RSS {peak_mb:.0f} MB"
    assert stalled["hazmon_ingest_pending_bytes"] <= settings.max_pending_bytes + 262_144
