"""Shared fixtures: real PostgreSQL + TimescaleDB and real Mosquitto, each test isolated.

Each test gets its own database (copied from a template migrated once per session) and its own
MQTT topic root and client ids. If a service is unreachable the run fails and says how to start
it: CI must never silently skip the tests that talk to real servers.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from hazmon.db import drop_database, with_database
from hazmon.migrate import migrate
from hazmon.settings import MqttEndpoint, Settings
from tests.support.common import (  # noqa: F401  (re-exported for the fixtures)
    MQTT_URL,
    REPO,
    SERVER_URL,
    START_HINT,
    ThreadRunner,
    free_port,
    wait_until,
)

pytest_plugins = ["tests.support.world"]
"""The two-tenant world of the API tests (`world`), used by the registry's broker tests too."""


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A database migrated once; tests copy it (CREATE DATABASE … TEMPLATE) to start fresh."""
    try:
        with psycopg.connect(SERVER_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        pytest.exit(f"PostgreSQL unreachable at {SERVER_URL}: {exc}; {START_HINT}", returncode=3)
    endpoint = MqttEndpoint.parse(MQTT_URL)
    try:
        socket.create_connection((endpoint.host, endpoint.port), timeout=5).close()
    except OSError as exc:
        pytest.exit(f"Mosquitto unreachable at {MQTT_URL}: {exc}; {START_HINT}", returncode=3)
    name = f"hazmon_tmpl_{uuid.uuid4().hex[:10]}"
    url = with_database(SERVER_URL, name)
    migrate(url)
    # TimescaleDB's background-worker scheduler connects to every database with the extension,
    # and CREATE DATABASE … TEMPLATE refuses a template anyone is connected to: lock it out.
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )

        def unused() -> bool:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            row = conn.execute(query, (name,)).fetchone()
            return bool(row and row[0] == 0)

        assert wait_until(unused, 10), f"template {name} still in use"
    yield url
    drop_database(url)


@pytest.fixture
def db_url(template_db: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own, dropped afterwards."""
    name = f"hazmon_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        template = template_db.rsplit("/", 1)[1]
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    url = with_database(SERVER_URL, name)
    yield url
    drop_database(url)


@pytest.fixture
def topic_root() -> str:
    """A topic root of this test's own, so tests never see each other's messages."""
    return f"test-{uuid.uuid4().hex[:10]}/hazmon/v1"


@pytest.fixture
def settings(db_url: str, topic_root: str) -> Settings:
    """Settings pointing at this test's database and topic root, with a unique MQTT client id."""
    return Settings(
        database_url=db_url,
        mqtt_url=MQTT_URL,
        topic_root=topic_root,
        mqtt_client_id=f"hazmon-test-{uuid.uuid4().hex[:10]}",
        mqtt_session_expiry_s=120,
        batch_max_wait_ms=20,
        registry_refresh_s=0.2,
    )


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to this test's own freshly migrated database."""
    with psycopg.connect(db_url) as c:
        yield c
