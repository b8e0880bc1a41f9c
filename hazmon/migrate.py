"""Versioned SQL migrations and detection of the TimescaleDB features the server offers.

Migrations are the files `hazmon/migrations/NNNN_name.sql`, applied in order, each in its own
transaction, once. Files named `NNNN_name.tsl.sql` use Timescale-licensed features (compression,
continuous aggregates, policies) and are applied only when the server's TimescaleDB offers them:
Debian's build is Apache-only, the upstream image is not, and hazmon must work on both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from hazmon.db import connect, ensure_database

log = logging.getLogger(__name__)

# A fixed key so that two `hazmon migrate` runs never interleave.
_MIGRATE_LOCK_KEY = 0x6A5A_0001

_BOOTSTRAP = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS server_features (
    name       text PRIMARY KEY,
    available  boolean NOT NULL,
    detail     text NOT NULL DEFAULT '',
    checked_at timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL file: its version (the file name without `.sql`) and whether it needs the TSL."""

    version: str
    sql: str
    needs_tsl: bool


@dataclass(frozen=True, slots=True)
class MigrateResult:
    """What a migrate run did."""

    created_database: bool
    applied: tuple[str, ...]
    skipped_tsl: tuple[str, ...]
    timescale_license: str


def available_migrations() -> list[Migration]:
    """All migration files shipped with the package, in version order."""
    folder = resources.files("hazmon") / "migrations"
    found = [
        Migration(
            version=entry.name.removesuffix(".sql"),
            sql=entry.read_text(encoding="utf-8"),
            needs_tsl=entry.name.endswith(".tsl.sql"),
        )
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found, key=lambda m: m.version)


def timescale_license(conn: psycopg.Connection[tuple[Any, ...]]) -> str:
    """The server's `timescaledb.license`: 'apache' (Debian's build) or 'timescale'."""
    row = conn.execute("SELECT current_setting('timescaledb.license', true)").fetchone()
    return str(row[0]) if row and row[0] else "none"


def migrate(url: str) -> MigrateResult:
    """Create the database if needed and apply every pending migration; safe to run repeatedly."""
    created = ensure_database(url)
    applied: list[str] = []
    skipped: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK_KEY,))
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute(_BOOTSTRAP)
            license_ = timescale_license(conn)
            tsl = license_ == "timescale"
            done = {str(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}
            for migration in available_migrations():
                if migration.version in done:
                    continue
                if migration.needs_tsl and not tsl:
                    skipped.append(migration.version)
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version) VALUES (%s)", (migration.version,)
                    )
                applied.append(migration.version)
                log.info("migration applied", extra={"version": migration.version})
            _record_features(conn, license_)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATE_LOCK_KEY,))
    return MigrateResult(created, tuple(applied), tuple(skipped), license_)


def _record_features(conn: psycopg.Connection[tuple[Any, ...]], license_: str) -> None:
    tsl = license_ == "timescale"
    detail = f"timescaledb.license={license_}"
    with conn.transaction():
        for feature in ("compression", "continuous_aggregates", "retention_policies"):
            conn.execute(
                """INSERT INTO server_features (name, available, detail, checked_at)
                   VALUES (%s, %s, %s, now())
                   ON CONFLICT (name) DO UPDATE
                   SET available = EXCLUDED.available, detail = EXCLUDED.detail,
                       checked_at = EXCLUDED.checked_at""",
                (feature, tsl, detail),
            )
