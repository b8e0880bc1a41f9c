"""Late and out-of-order data: a gateway flushes an hour it buffered during a network cut."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import Histogram

from hazmon.settings import Settings
from tests.support.common import wait_until
from tests.support.inventories import crane_site, load
from tests.support.services import mosquitto_pub, running_ingest

SAMPLING_S = 10
CUT_S = 3600


def _histogram(metric: Histogram) -> tuple[float, float]:
    """(sum, count) of a histogram without labels."""
    samples = {s.name: s.value for family in metric.collect() for s in family.samples}
    return samples[metric._name + "_sum"], samples[metric._name + "_count"]


def test_an_hour_flushed_after_a_cut_is_stored_graded_late_and_its_age_measured(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1", "TC1-M"))
    topic = f"{settings.topic_root}/S1/TC1-M/telemetry"
    now_ms = int(time.time() * 1000)

    def stored() -> set[tuple[str, int, float]]:
        with psycopg.connect(db_url) as conn:
            rows = conn.execute(
                """SELECT se.metric, (extract(epoch FROM r.time) * 1000)::bigint, r.value
                   FROM readings r JOIN series se ON se.id = r.series_id"""
            ).fetchall()
        return {(metric, int(ts), value) for metric, ts, value in rows}

    live: dict[str, Any] = {"ts": now_ms, "values": {"moment_ratio": 0.5, "wind_speed_ms": 3.0}}
    # The buffered hour, oldest first; one moment reading in it was over the rated moment.
    flushed: list[dict[str, Any]] = [
        {
            "ts": now_ms - (CUT_S - k * SAMPLING_S) * 1000,
            "values": {"moment_ratio": 1.05 if k == 100 else 0.4, "wind_speed_ms": 2.5},
        }
        for k in range(CUT_S // SAMPLING_S)
    ]
    expected = {(m, e["ts"], v) for e in [live, *flushed] for m, v in e["values"].items()}
    with running_ingest(settings) as service:
        mosquitto_pub(settings, topic, json.dumps(live).encode(), tmp_path)
        assert wait_until(lambda: len(stored()) == 2, 10)
        age_before = _histogram(service.metrics.oldest_reading_age_seconds)
        mosquitto_pub(settings, topic, json.dumps(flushed).encode(), tmp_path)
        assert wait_until(lambda: len(stored()) == len(expected), 10)
        age_sum, age_count = _histogram(service.metrics.oldest_reading_age_seconds)
    assert stored() == expected
    assert age_count == age_before[1] + 1
    assert CUT_S <= age_sum - age_before[0] < CUT_S + 30, "the flush's age was not measured"
    with psycopg.connect(db_url) as conn:
        actions = [
            row[0]
            for row in conn.execute("SELECT action FROM alert_transitions ORDER BY id").fetchall()
        ]
        open_alerts = conn.execute("SELECT count(*) FROM alerts WHERE state <> 'resolved'")
        n_open = open_alerts.fetchone()
        dead = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    # Graded at its own time, an hour ago: recorded as late, no alert opened now.
    assert actions == ["late"]
    assert n_open == (0,)
    assert dead == (0,)
