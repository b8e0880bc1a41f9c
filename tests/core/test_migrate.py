"""`hazmon migrate`: idempotent, TimescaleDB hypertable, features recorded."""

from __future__ import annotations

import psycopg

from hazmon.db import drop_database, with_database
from hazmon.migrate import available_migrations, migrate
from tests.support.common import SERVER_URL


def test_migrate_twice_is_harmless_and_creates_the_hypertable() -> None:
    url = with_database(SERVER_URL, "hazmon_t_migrate_twice")
    drop_database(url)
    try:
        first = migrate(url)
        second = migrate(url)
        assert first.created_database
        assert "0001_schema" in first.applied
        assert not second.created_database
        assert second.applied == ()
        with psycopg.connect(url) as conn:
            hypertables = [
                r[0]
                for r in conn.execute(
                    "SELECT hypertable_name FROM timescaledb_information.hypertables"
                )
            ]
            assert hypertables == ["readings"]
            versions = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            regular = {m.version for m in available_migrations() if not m.needs_tsl}
            assert regular <= versions
            rows = conn.execute("SELECT name, available FROM server_features").fetchall()
            features: dict[str, bool] = {str(name): bool(ok) for name, ok in rows}
            license_ = conn.execute("SELECT current_setting('timescaledb.license')").fetchone()
            assert license_ is not None
            expected = license_[0] == "timescale"
            assert features == {
                "compression": expected,
                "continuous_aggregates": expected,
                "retention_policies": expected,
            }
            # Timescale-licensed migrations are applied exactly when the server offers them.
            tsl = {m.version for m in available_migrations() if m.needs_tsl}
            assert (tsl <= versions) == expected
            assert tsl.isdisjoint(versions) == (not expected)
    finally:
        drop_database(url)


def test_readings_are_unique_on_series_and_time(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO readings VALUES ('2026-01-01T00:00:00Z', 1, 1.0)")
        try:
            conn.execute("INSERT INTO readings VALUES ('2026-01-01T00:00:00Z', 1, 2.0)")
        except psycopg.errors.UniqueViolation:
            pass
        else:
            raise AssertionError("a second reading at the same (series, time) was accepted")


def test_a_status_stored_in_the_future_no_longer_pins_its_device(db_url: str) -> None:
    """Migration 0008: a status dated past the accepted window (stored before ingest checked
    status times) is dated now, so that the device's next report wins again."""
    sql = next(m.sql for m in available_migrations() if m.version.startswith("0008_"))
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO regions (code, name) VALUES ('420106', '武昌区');"
            "INSERT INTO sites (code, name, region_code) VALUES ('S1', 'S1', '420106');"
            "INSERT INTO works (site_id, code, name, hazard_kind) VALUES (1, 'W1', 'W1', 'facade');"
            "INSERT INTO devices (site_id, work_id, code) VALUES (1, 1, 'D1'), (1, 1, 'D2');"
            "INSERT INTO device_status VALUES (1, false, '3000-01-01'), (2, true, now());"
        )
        conn.execute(sql)
        rows = conn.execute(
            "SELECT device_id, online, changed_at <= now() FROM device_status ORDER BY 1"
        ).fetchall()
    assert rows == [(1, False, True), (2, True, True)]


LEGACY_NAMES = {"0001_schema", "0003_api", "0004_ingest", "0004_ingest_dead_letter_redelivery"}
"""Applied before the numbering was checked, and kept as they are named: `schema_migrations`
records file names, so renaming one would apply it a second time on every existing database."""


def test_new_migrations_are_numbered_without_gaps_or_duplicates() -> None:
    versions = [m.version for m in available_migrations() if not m.needs_tsl]
    assert set(versions) >= LEGACY_NAMES
    numbers = [int(v.split("_", 1)[0]) for v in versions if v not in LEGACY_NAMES]
    assert numbers == list(range(5, 5 + len(numbers))), numbers
    tsl = [int(m.version.split("_", 1)[0]) for m in available_migrations() if m.needs_tsl]
    assert tsl == list(range(1000, 1000 + len(tsl))), "TSL-only files count from 1000"
