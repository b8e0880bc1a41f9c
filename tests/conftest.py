"""Shared fixtures: real PostgreSQL + TimescaleDB and real Mosquitto, each test isolated.

Each test gets its own database (copied from a template migrated once per session) and its own
MQTT topic root and client ids. If a service is unreachable the run fails and says how to start
it: CI must never silently skip the tests that talk to real servers.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from hazmon.db import drop_database, with_database
from hazmon.migrate import migrate
from hazmon.settings import MqttEndpoint, Settings

SERVER_URL = os.environ.get(
    "HAZMON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MQTT_URL = os.environ.get("HAZMON_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
START_HINT = "start the local services with `make services` (scripts/services.sh up, as root)"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: object, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll `predicate()` until it is truthy or the timeout passes; return its last truthiness."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return bool(predicate())


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


class ThreadRunner:
    """Run a `run(stop_event)` callable in a thread; stop and join it on exit."""

    def __init__(self, target: object, name: str) -> None:
        assert callable(target)
        self.stop = threading.Event()
        self.error: BaseException | None = None

        def body() -> None:
            try:
                target(self.stop)
            except BaseException as exc:
                self.error = exc
                raise

        self.thread = threading.Thread(target=body, name=name, daemon=True)

    def __enter__(self) -> ThreadRunner:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "service thread did not stop within 30 s"
        if self.error is not None:
            raise self.error
