"""Same-timestamp readings never overwrite each other, and a conflicting one is not dropped
silently: the stored value is kept and the conflicting payload goes to dead letters."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from hazmon.settings import Settings
from tests.conftest import wait_until
from tests.inventories import crane_site, load
from tests.services import mosquitto_pub, replay, running_ingest


def test_a_reading_at_a_stored_time_with_another_value_is_kept_out_and_dead_lettered(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1", "TC1-M"))
    topic = f"{settings.topic_root}/S1/TC1-M/telemetry"
    t1 = int(time.time() * 1000) - 60_000
    t2 = t1 + 1000
    first = json.dumps({"ts": t1, "values": {"load_t": 1.0, "tilt_deg": 0.1}}).encode()
    conflicting = json.dumps({"ts": t1, "values": {"load_t": 2.0}}).encode()
    twice_in_one = json.dumps(
        [{"ts": t2, "values": {"load_t": 3.0}}, {"ts": t2, "values": {"load_t": 4.0}}]
    ).encode()

    def state() -> tuple[list[tuple[int, float]], list[tuple[str, bytes]]]:
        with psycopg.connect(db_url) as conn:
            readings = conn.execute(
                """SELECT (extract(epoch FROM r.time) * 1000)::bigint, r.value FROM readings r
                   JOIN series se ON se.id = r.series_id WHERE se.metric = 'load_t'
                   ORDER BY r.time"""
            ).fetchall()
            letters = conn.execute(
                "SELECT reason, payload FROM dead_letters ORDER BY id"
            ).fetchall()
        return [(int(t), v) for t, v in readings], [(r, bytes(p)) for r, p in letters]

    with running_ingest(settings) as service:
        mosquitto_pub(settings, topic, first, tmp_path)
        assert wait_until(lambda: len(state()[0]) == 1, 10)
        mosquitto_pub(settings, topic, first, tmp_path)  # a resend: harmless, no dead letter
        mosquitto_pub(settings, topic, conflicting, tmp_path)
        mosquitto_pub(settings, topic, twice_in_one, tmp_path)
        assert wait_until(lambda: len(state()[1]) == 2 and len(state()[0]) == 2, 10), state()
        paths = {
            sample.labels["path"]: sample.value
            for family in service.metrics.write_path.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        }
        readings_before_replay = state()[0]
        summary = replay(db_url)
    readings, letters = state()
    assert readings == readings_before_replay
    assert readings == [(t1, 1.0), (t2, 3.0)], "a stored value was overwritten or lost"
    assert letters == [("duplicate_conflict", conflicting), ("duplicate_conflict", twice_in_one)]
    assert paths["staged"] >= 1, "the duplicates did not take the staged path"

    with psycopg.connect(db_url) as conn:
        results = conn.execute(
            "SELECT replayed_at IS NULL, replay_result FROM dead_letters ORDER BY id"
        ).fetchall()
    assert summary.replayed == 0
    assert dict(summary.still_refused) == {"duplicate_conflict": 2}
    assert all(unreplayed and "duplicate_conflict" in result for unreplayed, result in results)
    assert state()[0] == readings
