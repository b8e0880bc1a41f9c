"""Poison messages mid-stream: each is one dead letter, every good reading is stored once, and
ingest never stops, alone (`hazmon ingest`) or supervised (`hazmon run`).

The poison is what an outside test sent (with Debian's mosquitto_pub) and what used to crash
ingest, again on every redelivery: JSON nested 10,000 levels deep on telemetry, on status and
inside `values`; 400- and 5,000-digit numbers; a 5,000-digit `ts`; statuses dated in
microseconds, past the year 9999 and in the year 3000 (which, stored, pinned the device offline:
an older report never overwrites a newer one). The good readings come from an independent paho
client at a steady rate.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import psycopg
import pytest

from hazmon.settings import Settings
from tests.support.common import REPO, free_port, wait_until
from tests.support.harness import (
    IngestProcess,
    Publisher,
    Stream,
    crane_inventory,
    digest_of,
    series_map,
    stored_count,
    stored_digest,
)
from tests.support.inventories import load
from tests.support.services import mosquitto_pub

pytestmark = [pytest.mark.slow]

DEEP = 10_000
YEAR_3000_MS = 32_503_680_000_000
YEAR_10000_MS = 253_402_300_800_000
RATE_MSGS_S = 20.0  # × 50 readings: 1,000 readings/s


def poison(root: str, site: str, device: str) -> list[tuple[str, bytes, str]]:
    """(topic, payload, expected dead-letter reason) of every reported poison message."""
    telemetry, status = f"{root}/{site}/{device}/telemetry", f"{root}/{site}/{device}/status"
    now_ms = int(time.time() * 1000)
    deep = "[" * DEEP + "]" * DEEP
    cases = [
        (telemetry, deep, "wrong_shape"),
        (telemetry, '{"values": {"load_t": ' + deep + "}}", "wrong_shape"),
        (telemetry, '{"values": {"load_t": 1.5}, "meta": ' + deep + "}", "wrong_shape"),
        (status, '{"status": ' + deep + "}", "wrong_shape"),
        (telemetry, f'{{"ts": {now_ms}, "values": {{"load_t": {"9" * 400}}}}}', "not_finite"),
        (telemetry, f'{{"ts": {now_ms}, "values": {{"load_t": {"9" * 5000}}}}}', "not_finite"),
        (telemetry, f'{{"ts": {"9" * 5000}, "values": {{"load_t": 1.5}}}}', "timestamp_in_future"),
        (status, json.dumps({"status": "offline", "ts": now_ms * 1000}), "timestamp_in_future"),
        (status, json.dumps({"status": "offline", "ts": YEAR_10000_MS}), "timestamp_in_future"),
        (status, json.dumps({"status": "offline", "ts": YEAR_3000_MS}), "timestamp_in_future"),
        (status, f'{{"status": "offline", "ts": {"9" * 5000}}}', "timestamp_in_future"),
    ]
    return [(topic, payload.encode(), reason) for topic, payload, reason in cases]


def _inject(settings: Settings, cases: list[tuple[str, bytes, str]], tmp_path: Path) -> None:
    """Each poison message with Debian's mosquitto_pub, then a plain `online` from the same
    device: stored only if no poison status pinned the device."""
    for topic, payload, _ in cases:
        mosquitto_pub(settings, topic, payload, tmp_path)
    mosquitto_pub(settings, cases[-1][0], b"online", tmp_path)


def _dead_letters(db_url: str) -> list[tuple[str, str, bytes]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT topic, reason, payload FROM dead_letters ORDER BY id"
        ).fetchall()
    return [(topic, reason, bytes(payload)) for topic, reason, payload in rows]


def _assert_outcome(db_url: str, stream: Stream, cases: list[tuple[str, bytes, str]]) -> None:
    """Exactly the stream's readings, one dead letter per poison message, the device online."""
    assert stored_digest(db_url) == digest_of(*stream.expected(series_map(db_url)))
    letters = _dead_letters(db_url)
    assert sorted(letters) == sorted((topic, reason, payload) for topic, payload, reason in cases)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT online, extract(epoch FROM now() - changed_at) FROM device_status"
        ).fetchone()
    assert row is not None
    assert row[0] is True, "a poison status pinned the device offline"
    assert abs(float(row[1])) < 120


def test_poison_mid_stream_is_dead_lettered_and_ingest_stores_every_good_reading(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, *crane_inventory(["P1"], 4))
    stream = Stream.cranes(settings.topic_root, ["P1"], 4, 50)  # 200 messages, 10,000 readings
    cases = poison(settings.topic_root, "P1", "D000")
    log_path = tmp_path / "ingest.log"
    with IngestProcess(settings, log_path, metrics_port=free_port()) as ingest:
        pid = ingest.pid
        with Publisher(settings.mqtt_url, stream, rate_msgs_s=RATE_MSGS_S * 2) as publisher:
            assert wait_until(lambda: stored_count(db_url) >= 2000, 60), ingest.log_tail()
            _inject(settings, cases, tmp_path)
            assert publisher.published < stream.messages, "the stream ended before the poison"
            assert publisher.wait_acked(60)
        assert wait_until(lambda: stored_count(db_url) >= stream.readings, 60), ingest.log_tail()
        assert wait_until(lambda: len(_dead_letters(db_url)) >= len(cases), 30)
        assert wait_until(lambda: ingest.scrape()["hazmon_ingest_pending_messages"] == 0, 30)
        metrics = ingest.scrape()
        assert ingest.pid == pid
        assert ingest.terminate() == 0, "ingest was not running to the end"
    _assert_outcome(db_url, stream, cases)
    counted = {
        key.split("reason=", 1)[1].rstrip("}"): value
        for key, value in metrics.items()
        if key.startswith("hazmon_ingest_dead_letters_total{")
    }
    assert counted == dict(Counter(reason for _, _, reason in cases))
    assert metrics["hazmon_ingest_readings_committed_total"] == stream.readings
    log = log_path.read_text()
    assert log.count('"ingest started"') == 1
    assert "Traceback" not in log


class _Sampler(threading.Thread):
    """Count the stored readings every 0.1 s: (monotonic time, count) pairs."""

    def __init__(self, db_url: str) -> None:
        super().__init__(name="sampler", daemon=True)
        self.db_url = db_url
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while not self.done.wait(0.1):
                row = conn.execute("SELECT count(*) FROM readings").fetchone()
                self.samples.append((time.monotonic(), int(row[0]) if row else 0))

    def rate(self, start: float, end: float) -> float:
        """Readings committed per second between two monotonic times (interpolated)."""
        t, n = np.array(self.samples).T
        return float((np.interp(end, t, n) - np.interp(start, t, n)) / (end - start))


def _run_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    for name, value in settings.model_dump().items():
        env[f"HAZMON_{name.upper()}"] = str(value)
    env["HAZMON_API_PORT"] = str(free_port())
    return env


def test_under_hazmon_run_poison_neither_restarts_ingest_nor_slows_storage(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, *crane_inventory(["R1"], 4))
    stream = Stream.cranes(settings.topic_root, ["R1"], 4, 75)  # 15 s at 20 messages/s
    cases = poison(settings.topic_root, "R1", "D000")
    log_path = tmp_path / "run.log"
    window_s = 4.0
    sampler = _Sampler(db_url)
    with (
        log_path.open("wb") as log,
        subprocess.Popen(
            [sys.executable, "-m", "hazmon.cli", "run"],
            env=_run_env(settings),
            stdout=log,
            stderr=log,
            cwd=REPO,
        ) as run,
    ):
        try:
            subscribed = wait_until(lambda: b'"mqtt subscribed"' in log_path.read_bytes(), 60)
            assert subscribed, log_path.read_text()[-3000:]
            sampler.start()
            with Publisher(settings.mqtt_url, stream, rate_msgs_s=RATE_MSGS_S) as publisher:
                assert wait_until(lambda: stored_count(db_url) > 0, 30)
                time.sleep(window_s + 1)  # a steady flow before the poison
                poisoned_at = time.monotonic()
                _inject(settings, cases, tmp_path)
                time.sleep(max(0.0, poisoned_at + window_s + 0.5 - time.monotonic()))
                assert publisher.published < stream.messages, "the stream ended too soon"
                assert publisher.wait_acked(60)
            _assert_no_restart(log_path)
            before = sampler.rate(poisoned_at - window_s, poisoned_at)
            after = sampler.rate(poisoned_at, poisoned_at + window_s)
            offered = RATE_MSGS_S * 50
            assert before > 0.7 * offered, f"before the poison: {before:.0f} readings/s"
            assert after > 0.75 * before, (
                f"{before:.0f} readings/s before the poison, {after:.0f} after"
            )
            assert wait_until(lambda: stored_count(db_url) >= stream.readings, 60)
            assert wait_until(lambda: len(_dead_letters(db_url)) >= len(cases), 30)
            run.send_signal(signal.SIGTERM)
            assert run.wait(30) == 0
        finally:
            sampler.done.set()
            if sampler.is_alive():
                sampler.join(10)
            if run.poll() is None:
                run.kill()
    _assert_outcome(db_url, stream, cases)
    _assert_no_restart(log_path)


def _assert_no_restart(log_path: Path) -> None:
    """The supervisor started each child once and saw none exit; ingest started once."""
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    exits = [e for e in lines if e["msg"] == "service exited; restarting"]
    assert not exits, exits
    started = [e for e in lines if e["msg"] == "service started"]
    assert sorted(e["service"] for e in started) == ["api", "ingest", "notify", "sweep"]
    assert sum(e["msg"] == "ingest started" for e in lines) == 1
