"""Re-baselining a series has a real entry point (API route and CLI): a dated record and an audit
line, and ingest measures the readings after it against the new baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg

from hazmon.settings import Settings
from tests.conftest import wait_until
from tests.inventories import load, pit_site
from tests.services import mosquitto_pub, running_api, running_ingest
from tests.tokens import bearer, issue


def _query(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql).fetchall()


def _publish(settings: Settings, tmp_path: Path, ts: datetime, value_mm: float) -> None:
    payload = {"ts": int(ts.timestamp() * 1000), "values": {"top_disp_h_mm": value_mm}}
    topic = f"{settings.topic_root}/P1/W1/telemetry"
    mosquitto_pub(settings, topic, json.dumps(payload).encode(), tmp_path)


def test_a_rebaseline_through_the_api_is_recorded_audited_and_graded_against(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, pit_site())
    now = datetime.now(UTC).replace(microsecond=0)
    with (
        running_ingest(settings) as service,
        running_api(settings) as base,
        httpx.Client(base_url=base, headers=bearer(issue(db_url))) as http,
    ):
        # the initial baseline; well inside the pit's offline delay, so no offline alert opens
        _publish(settings, tmp_path, now - timedelta(minutes=30), 0.0)
        assert wait_until(lambda: _query(db_url, "SELECT count(*) FROM baselines") == [(1,)], 5)
        series_id = http.get("/series").json()["data"][0]["id"]
        # The wall was moved 40 mm by a planned stage; from then on it is measured from there.
        created = http.post(
            f"/series/{series_id}/baselines",
            json={
                "value": 40.0,
                "valid_from": (now - timedelta(minutes=20)).isoformat(),
                "reason": "第二层土方开挖后复测 / re-surveyed after the second excavation stage",
            },
        )
        assert created.status_code == 201, created.text
        assert created.json()["set_by"].startswith("admin")
        listed = http.get(f"/series/{series_id}/baselines").json()
        assert [b["value"] for b in listed["data"]] == [0.0, 40.0]
        bad = http.post(
            f"/series/{series_id}/baselines",
            json={"value": 1.0, "valid_from": now.isoformat(), "reason": "initial"},
        )
        assert bad.status_code == 422
        version = _query(db_url, "SELECT version FROM registry_version")[0][0]
        assert wait_until(lambda: service._registry_version == version, 5), "ingest did not reload"
        _publish(settings, tmp_path, now, 45.0)  # 5 mm past the new baseline: normal
        assert wait_until(lambda: _query(db_url, "SELECT count(*) FROM readings") == [(2,)], 5)
        time.sleep(0.5)
        assert _query(db_url, "SELECT rule, state FROM alerts") == []
    audit = _query(db_url, "SELECT actor, action, subject, subject_id, detail FROM audit_log")
    assert len(audit) == 1
    actor, action, subject, subject_id, detail = audit[0]
    assert (action, subject, subject_id) == ("series.rebaseline", "series", series_id)
    assert actor.startswith("admin")
    assert detail["value"] == 40.0


def test_the_cli_rebaselines_too_and_refuses_bad_input(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, pit_site())
    series_id = _query(db_url, "SELECT id FROM series")[0][0]

    def hazmon(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "hazmon.cli",
                "baseline",
                "set",
                "--series",
                str(series_id),
                *args,
            ],
            env={**os.environ, "HAZMON_DATABASE_URL": db_url},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = hazmon(
        "--value",
        "12.5",
        "--valid-from",
        "2026-12-01T08:00+08:00",
        "--reason",
        "换传感器",
        "--by",
        "li.si",
    )
    assert done.returncode == 0, done.stderr
    assert _query(db_url, "SELECT value, reason, set_by FROM baselines") == [
        (12.5, "换传感器", "li.si")
    ]
    assert _query(db_url, "SELECT actor, action FROM audit_log") == [("li.si", "series.rebaseline")]
    for bad in (
        ["--value", "nan", "--valid-from", "2026-12-01T08:00+08:00", "--reason", "x"],
        ["--value", "1", "--valid-from", "2026-12-01T08:00", "--reason", "x"],
        ["--value", "1", "--valid-from", "yesterday", "--reason", "x"],
        ["--value", "1", "--valid-from", "2026-12-01T08:00+08:00", "--reason", " "],
    ):
        refused = hazmon(*bad)
        assert refused.returncode == 2, (bad, refused.stderr)
        assert "invalid input" in refused.stderr
    assert len(_query(db_url, "SELECT id FROM baselines")) == 1
