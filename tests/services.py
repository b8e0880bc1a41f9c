"""Run hazmon's services inside a test: ingest and the API, in threads, on the test's settings."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

from api import create_app
from hazmon.settings import MqttEndpoint, Settings
from ingest import IngestMetrics, IngestService
from tests.conftest import ThreadRunner, free_port, wait_until


@contextmanager
def running_ingest(settings: Settings) -> Iterator[IngestService]:
    """An ingest worker with a fresh metrics registry, subscribed before this yields."""
    service = IngestService(settings.ingest, IngestMetrics.create(CollectorRegistry()))
    with ThreadRunner(service.run, "ingest"):
        assert service.ready.wait(30), "ingest did not start"
        assert service.source.connected.wait(10), "ingest did not connect to the broker"
        yield service


@contextmanager
def running_api(settings: Settings) -> Iterator[str]:
    """The API served by uvicorn on a free port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings.api, CollectorRegistry()), host="127.0.0.1", port=port, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: server.started, 20), "API did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def mosquitto_pub(settings: Settings, topic: str, payload: bytes, tmp_path: Path) -> None:
    """Publish one QoS 1 message with Debian's mosquitto_pub, an independent client."""
    endpoint = MqttEndpoint.parse(settings.mqtt_url)
    body = tmp_path / f"payload-{abs(hash((topic, payload)))}.bin"
    body.write_bytes(payload)
    subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            endpoint.host,
            "-p",
            str(endpoint.port),
            "-q",
            "1",
            "-t",
            topic,
            "-f",
            str(body),
        ],
        check=True,
        timeout=10,
    )


def replay(db_url: str, reason: str | None = None, timeout_s: float = 30) -> Any:
    """Ask the running ingest worker for a dead-letter replay and wait for its result
    (`registry.dead_letters`, as the API and the CLI do)."""
    import asyncio

    import psycopg

    from registry import dead_letters

    async def ask() -> dead_letters.ReplayResult:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            request_id = await dead_letters.request_replay(conn, "test", reason)
            return await dead_letters.wait_for_replay(conn, request_id, timeout_s)

    return asyncio.run(ask())
