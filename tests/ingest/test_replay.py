"""`hazmon dead-letters replay`: once the registry is fixed, refused payloads are stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from hazmon.settings import Settings
from tests.support.common import REPO, wait_until
from tests.support.inventories import crane_site, load
from tests.support.services import mosquitto_pub, running_ingest


def _replay(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
    env.update(HAZMON_DATABASE_URL=settings.database_url, HAZMON_TOPIC_ROOT=settings.topic_root)
    return subprocess.run(
        [sys.executable, "-m", "hazmon.cli", "dead-letters", "replay", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _letters(db_url: str) -> dict[str, tuple[bool, str | None]]:
    """reason → (replayed, replay_result) of every dead letter."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT reason, replayed_at IS NOT NULL, replay_result FROM dead_letters"
        ).fetchall()
    return {reason: (replayed, result) for reason, replayed, result in rows}


def _readings(db_url: str) -> list[tuple[str, str, str, float]]:
    with psycopg.connect(db_url) as conn:
        return [
            (site, device, metric, value)
            for site, device, metric, value in conn.execute(
                """SELECT si.code, d.code, se.metric, r.value FROM readings r
                   JOIN series se ON se.id = r.series_id JOIN devices d ON d.id = se.device_id
                   JOIN sites si ON si.id = d.site_id ORDER BY 1, 2, 3"""
            ).fetchall()
        ]


def test_replay_stores_what_the_fixed_registry_accepts_and_keeps_the_rest(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1", "TC1-M"))
    root = settings.topic_root
    now_ms = int(time.time() * 1000)
    published = {
        "unknown_device": (
            f"{root}/S1/GHOST/telemetry",
            json.dumps({"ts": now_ms, "values": {"load_t": 1.5, "tilt_deg": 0.25}}).encode(),
        ),
        "unknown_site": (
            f"{root}/S9/TC7-M/telemetry",
            json.dumps({"ts": now_ms, "values": {"wind_speed_ms": 4.0}}).encode(),
        ),
        "invalid_json": (f"{root}/S1/TC1-M/telemetry", b'{"ts": 1, "values": '),
    }
    with running_ingest(settings):
        for topic, payload in published.values():
            mosquitto_pub(settings, topic, payload, tmp_path)
        assert wait_until(lambda: len(_letters(db_url)) == len(published), 10)
    assert _readings(db_url) == []

    # The registry is fixed: the missing device and the missing site are registered.
    load(db_url, tmp_path, crane_site("S1", "GHOST"), crane_site("S9", "TC7-M"))
    with running_ingest(settings):
        _replays(settings, db_url)

    nobody = _replay(settings, "--wait-s", "0.5")
    assert nobody.returncode == 1, "with no ingest worker the request is queued, not done"
    assert "stays queued" in nobody.stderr


def _replays(settings: Settings, db_url: str) -> None:
    only_device = _replay(settings, "--reason", "unknown_device")
    assert only_device.returncode == 0, only_device.stderr
    assert "replayed: 1 of 1" in only_device.stdout
    assert _readings(db_url) == [("S1", "GHOST", "load_t", 1.5), ("S1", "GHOST", "tilt_deg", 0.25)]
    letters = _letters(db_url)
    assert letters["unknown_device"][0]
    assert (letters["unknown_device"][1] or "").startswith("stored 2 readings")
    assert letters["unknown_site"] == (False, None)

    everything = _replay(settings)
    assert everything.returncode == 0, everything.stderr
    assert "replayed: 1 of 2" in everything.stdout
    assert "invalid_json 1" in everything.stdout
    assert ("S9", "TC7-M", "wind_speed_ms", 4.0) in _readings(db_url)
    letters = _letters(db_url)
    assert letters["unknown_site"][0]
    replayed, result = letters["invalid_json"]
    assert not replayed, "a payload that still fails must stay replayable"
    assert (result or "").startswith("still refused: invalid_json")

    again = _replay(settings)
    assert again.returncode == 0, again.stderr
    assert "replayed: 0 of 1" in again.stdout
    assert len(_readings(db_url)) == 3

    typo = _replay(settings, "--reason", "unknown_devise")
    assert typo.returncode == 2
    assert "unknown reason" in typo.stderr


def test_replayed_readings_are_graded_by_the_worker_that_owns_their_rule_state(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, crane_site("S1", "TC1-M"))
    now_ms = int(time.time() * 1000)
    topic = f"{settings.topic_root}/S1/GHOST/telemetry"
    overload = json.dumps({"ts": now_ms, "values": {"moment_ratio": 1.05}}).encode()
    with running_ingest(settings):
        mosquitto_pub(settings, topic, overload, tmp_path)
        assert wait_until(lambda: len(_letters(db_url)) == 1, 10)
    load(db_url, tmp_path, crane_site("S1", "GHOST"))
    with running_ingest(settings):
        done = _replay(settings)
        assert done.returncode == 0, done.stderr
    with psycopg.connect(db_url) as conn:
        alerts = conn.execute(
            """SELECT d.code, a.rule, a.grade FROM alerts a JOIN series se ON se.id = a.series_id
               JOIN devices d ON d.id = se.device_id"""
        ).fetchall()
        requests = conn.execute("SELECT state, claimed_by FROM replay_requests").fetchall()
    assert ("GHOST", "moment_ratio", 4) in alerts, "the replayed overload was not graded"
    assert [state for state, _ in requests] == ["done"]
    assert requests[0][1] == settings.mqtt_client_id
