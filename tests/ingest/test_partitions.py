"""Scale-out: two ingest workers on disjoint site partitions store every reading exactly once."""

from __future__ import annotations

import uuid
from pathlib import Path

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


def test_two_workers_on_disjoint_partitions_store_every_reading_once(
    on_private_broker: tuple[PrivateMosquitto, Settings], db_url: str, tmp_path: Path
) -> None:
    settings = on_private_broker[1]
    sites = ["PA", "PB"]
    load(db_url, tmp_path, *crane_inventory(sites, 10))
    stream = Stream.cranes(settings.topic_root, sites, 10, 100)  # 100,000 readings
    per_site = stream.readings // 2
    client = f"hazmon-part-{uuid.uuid4().hex[:8]}"
    workers = [
        IngestProcess(
            settings,
            tmp_path / f"ingest-{site}.log",
            metrics_port=free_port(),
            site_partition=site,
            mqtt_client_id=f"{client}-{site}",
        )
        for site in sites
    ]
    with workers[0], workers[1]:
        with Publisher(settings.mqtt_url, stream) as publisher:
            assert publisher.wait_acked(60)
        assert wait_until(lambda: stored_count(db_url) >= stream.readings, 60)
        committed = [w.scrape().get("hazmon_ingest_readings_committed_total", 0.0) for w in workers]
        duplicates = [
            w.scrape().get("hazmon_ingest_readings_duplicate_total", 0.0) for w in workers
        ]
        pending = [w.scrape()["hazmon_ingest_pending_messages"] for w in workers]
        paths = [
            {
                path: w.scrape().get(f"hazmon_ingest_write_batches_total{{path={path}}}", 0.0)
                for path in ("direct", "staged")
            }
            for w in workers
        ]
        dead = [
            sum(
                v for k, v in w.scrape().items() if k.startswith("hazmon_ingest_dead_letters_total")
            )
            for w in workers
        ]
    assert stored_digest(db_url) == digest_of(*stream.expected(series_map(db_url)))
    # Each worker took exactly its own site's readings: nothing twice, nothing refused.
    assert committed == [per_site, per_site]
    assert duplicates == [0, 0]
    assert dead == [0, 0]
    assert pending == [0, 0], "messages left unacknowledged"
    # In steady state every batch takes the direct COPY; the staged path is for redeliveries.
    assert all(p["direct"] > 0 and p["staged"] == 0 for p in paths), paths
