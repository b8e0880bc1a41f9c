"""`hazmon migrate`: idempotent, TimescaleDB hypertable, features recorded."""

from __future__ import annotations

import psycopg

from hazmon.db import drop_database, with_database
from hazmon.migrate import available_migrations, migrate
from tests.conftest import SERVER_URL


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
            features = dict(conn.execute("SELECT name, available FROM server_features").fetchall())
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
