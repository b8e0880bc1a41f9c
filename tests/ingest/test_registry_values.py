"""Registry content never stops ingest: a work whose rules cannot be resolved is isolated (its
readings stored, not graded, an alert raised for the administrators), and an idle ingest never
reloads its registry (issue "No message, value or client can stop hazmon", items 4 and 5)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hazmon.settings import Settings
from tests.conftest import wait_until
from tests.inventories import crane_site, load, pit_site
from tests.services import mosquitto_pub, running_ingest

GOOD = {"rated_load_t": 8, "rated_moment_tm": 160}
DEEP = "[" * 5000 + "]" * 5000

# What an admin write, a restore or a hand edit could have left in the database before the
# API and the import checked design values as the engine resolves them.
CORRUPTIONS = {
    "curve_not_a_curve": ("params", json.dumps({**GOOD, "rated_curve": "a"})),
    "load_of_400_digits": ("params", '{"rated_load_t": ' + "9" * 400 + "}"),
    "load_of_5000_digits": ("params", '{"rated_load_t": ' + "9" * 5000 + "}"),
    "params_not_an_object": ("params", "[1, 2]"),
    "override_nested_5000_deep": ("threshold", '{"source": ' + DEEP + "}"),
    "override_the_engine_refuses": ("threshold", '{"debounce": 0}'),
}


def _corrupt(db_url: str, site: str, how: tuple[str, str]) -> None:
    target, value = how
    with psycopg.connect(db_url) as conn:
        work = conn.execute(
            "SELECT w.id FROM works w JOIN sites s ON s.id = w.site_id WHERE s.code = %s", (site,)
        ).fetchone()
        assert work is not None
        if target == "params":
            conn.execute("UPDATE works SET params = %s::jsonb WHERE id = %s", (value, work[0]))
        else:
            conn.execute(
                "INSERT INTO thresholds (work_id, metric, rule, params)"
                " VALUES (%s, 'moment_ratio', 'moment_ratio', %s::jsonb)",
                (work[0], value),
            )


def _alerts(db_url: str) -> list[tuple[str, str, int, str]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """SELECT s.code, a.rule, a.grade, a.state FROM alerts a
               JOIN series se ON se.id = a.series_id JOIN devices d ON d.id = se.device_id
               JOIN sites s ON s.id = d.site_id ORDER BY a.id"""
        ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]


def _stored(db_url: str, site: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """SELECT count(*) FROM readings r JOIN series se ON se.id = r.series_id
               JOIN devices d ON d.id = se.device_id JOIN sites s ON s.id = d.site_id
               WHERE s.code = %s""",
            (site,),
        ).fetchone()
    return int(row[0]) if row else 0


def _overload(settings: Settings, site: str, device: str, tmp_path: Path, ts_ms: int) -> None:
    payload: dict[str, Any] = {"ts": ts_ms, "values": {"moment_ratio": 1.02, "load_t": 6.5}}
    topic = f"{settings.topic_root}/{site}/{device}/telemetry"
    mosquitto_pub(settings, topic, json.dumps(payload).encode(), tmp_path)


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_work_that_cannot_be_resolved_is_isolated_and_the_others_graded(
    settings: Settings, db_url: str, tmp_path: Path, corruption: str
) -> None:
    load(db_url, tmp_path, crane_site("S1", "TC1-M"), crane_site("S2", "TC2-M"))
    _corrupt(db_url, "S2", CORRUPTIONS[corruption])
    now_ms = int(time.time() * 1000)
    with running_ingest(settings) as service:
        assert service._engine is not None
        assert len(service._engine.isolated) == 1
        assert service.metrics.works_isolated._value.get() == 1
        _overload(settings, "S1", "TC1-M", tmp_path, now_ms)
        _overload(settings, "S2", "TC2-M", tmp_path, now_ms)
        assert wait_until(lambda: _stored(db_url, "S1") == 2 and _stored(db_url, "S2") == 2, 10)
        assert wait_until(lambda: ("S1", "moment_ratio", 4, "open") in _alerts(db_url), 5)
        alerts = _alerts(db_url)
        assert ("S2", "rules_unresolved", 2, "open") in alerts
        assert not [a for a in alerts if a[0] == "S2" and a[1] != "rules_unresolved"]
        with psycopg.connect(db_url) as conn:
            message = conn.execute(
                "SELECT message_zh, message_en FROM alerts WHERE rule = 'rules_unresolved'"
            ).fetchone()
        assert message is not None
        assert "TC1" in message[0]
        assert "cannot be resolved" in message[1]
        # The administrators fix the work: grading resumes and their alert resolves.
        with psycopg.connect(db_url) as conn:
            conn.execute("DELETE FROM thresholds")
            conn.execute(
                "UPDATE works w SET params = %s::jsonb FROM sites s"
                " WHERE s.id = w.site_id AND s.code = 'S2'",
                (json.dumps(GOOD),),
            )
        assert wait_until(lambda: ("S2", "rules_unresolved", 2, "resolved") in _alerts(db_url), 5)
        assert service._engine is not None
        assert not service._engine.isolated
        assert service.metrics.works_isolated._value.get() == 0
        _overload(settings, "S2", "TC2-M", tmp_path, now_ms + 1000)
        assert wait_until(lambda: ("S2", "moment_ratio", 4, "open") in _alerts(db_url), 5)


def test_an_idle_ingest_never_reloads_its_registry(
    settings: Settings, db_url: str, tmp_path: Path
) -> None:
    load(db_url, tmp_path, pit_site(metrics=("top_disp_h_mm", "settlement_mm")))
    now_ms = int(time.time() * 1000)
    # Readings stored before ingest starts: loading the engine pins their initial baselines.
    with psycopg.connect(db_url) as conn:
        conn.execute(
            """INSERT INTO readings (time, series_id, value)
               SELECT to_timestamp(%s / 1000.0) - interval '1 hour', id, 1.5 FROM series""",
            (now_ms,),
        )

    def version() -> int:
        with psycopg.connect(db_url) as conn:
            row = conn.execute("SELECT version FROM registry_version").fetchone()
        return int(row[0]) if row else -1

    with running_ingest(settings) as service:
        topic = f"{settings.topic_root}/P1/W1/telemetry"
        payload = {"ts": now_ms, "values": {"top_disp_h_mm": 2.0, "settlement_mm": 1.0}}
        mosquitto_pub(settings, topic, json.dumps(payload).encode(), tmp_path)
        with psycopg.connect(db_url) as conn:
            assert wait_until(
                lambda: conn.execute("SELECT count(*) FROM baselines").fetchone() == (2,), 5
            )
        settled = version()
        loaded = service._registry_version
        time.sleep(10 * settings.registry_refresh_s)
        assert version() == settled, "an idle ingest changed the registry version"
        assert service._registry_version == loaded == settled
    # A real change still moves it.
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE works SET name = '1号基坑（改）'")
    assert version() == settled + 1
