"""A real HTTP receiver for the notifier's tests, and the outbox helpers they share."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry

from notify import Notifier, RetryPolicy


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it; `started_s`/`ended_s` (monotonic) are when it
    arrived and when its answer was about to go."""

    path: str
    headers: dict[str, str]
    body: bytes
    started_s: float
    ended_s: float

    @property
    def transition_id(self) -> Any:
        """The transition of a generic message (others carry none)."""
        return json.loads(self.body).get("transition_id")


class Receiver:
    """A real HTTP server recording what it receives; answers from a script of (status, body),
    then 200 `{}`; each answer after `delay_s` seconds."""

    def __init__(self, answers: list[tuple[int, bytes]], delay_s: float = 0.0) -> None:
        self.requests: list[Received] = []
        self.answers = answers
        self.delay_s = delay_s
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                started_s = time.monotonic()
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status, answer = receiver.answers.pop(0) if receiver.answers else (200, b"{}")
                time.sleep(receiver.delay_s)
                with receiver.lock:  # recorded before the answer: the sender sees it done
                    receiver.requests.append(
                        Received(self.path, dict(self.headers), body, started_s, time.monotonic())
                    )
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def receiving(
    answers: list[tuple[int, bytes]] | None = None, delay_s: float = 0.0
) -> Iterator[Receiver]:
    """A receiver serving in a thread for the duration of the block."""
    receiver = Receiver(answers or [], delay_s)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def subscribe(conn: psycopg.Connection[Any], kind: str, url: str, **kw: Any) -> int:
    """Add a webhook subscription; return its id."""
    row = conn.execute(
        """INSERT INTO webhook_subscriptions (name, kind, url, secret, region_code, min_grade)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (kind, kind, url, kw.get("secret"), kw.get("region", ""), kw.get("min_grade", 2)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def notifier(registry: CollectorRegistry | None = None, **policy: Any) -> Notifier:
    """A notifier with fast retries (its database URL unused: tests pass the connection)."""
    return Notifier(
        "unused",
        policy=RetryPolicy(**{"first_s": 0.01, "max_s": 0.05, "timeout_s": 2, **policy}),
        registry=registry or CollectorRegistry(),
    )


def deliveries(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """`hazmon_notify_deliveries_total` by (kind, result)."""
    return {
        (s.labels["kind"], s.labels["result"]): s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "hazmon_notify_deliveries_total"
    }
