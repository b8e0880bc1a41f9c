"""A real HTTP receiver for the notifier's tests, and the outbox helpers they share."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
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
    status: int = 200
    answer: bytes = b"{}"

    @property
    def transition_id(self) -> Any:
        """The transition of a generic message (others carry none)."""
        return json.loads(self.body).get("transition_id")

    @property
    def key(self) -> str:
        """The message's idempotency key: the generic header, or the `编号 / ref:` line of a chat
        robot's text."""
        if "Idempotency-Key" in self.headers:
            return self.headers["Idempotency-Key"]
        found = re.search(r"编号 / ref: (hzm-[A-Za-z0-9-]+)", self.body.decode())
        assert found, f"no idempotency key in {self.body[:300]!r}"
        return found[1]


Answer = tuple[int, bytes] | tuple[int, bytes, float]
"""(status, body) or (status, body, delay before answering in s)."""


class Receiver:
    """A real HTTP server recording what it receives; answers from a script of (status, body[,
    delay_s]), then 200 `{}`; each answer after `delay_s` seconds (or its own). `respond`, if
    given, answers instead: it gets the body and returns an Answer."""

    def __init__(
        self,
        answers: list[Answer],
        delay_s: float = 0.0,
        port: int = 0,
        respond: Callable[[bytes], Answer] | None = None,
    ) -> None:
        self.requests: list[Received] = []
        self.answers = answers
        self.delay_s = delay_s
        self.respond = respond
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                started_s = time.monotonic()
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    if receiver.respond is not None:
                        scripted: Answer = receiver.respond(body)
                    else:
                        scripted = receiver.answers.pop(0) if receiver.answers else (200, b"{}")
                status, answer = scripted[0], scripted[1]
                time.sleep(scripted[2] if len(scripted) > 2 else receiver.delay_s)
                with receiver.lock:  # recorded before the answer: the sender sees it done
                    receiver.requests.append(
                        Received(
                            self.path,
                            dict(self.headers),
                            body,
                            started_s,
                            time.monotonic(),
                            status,
                            answer,
                        )
                    )
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:  # the sender gave up waiting (a timeout test)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def accepted_keys(self) -> list[str]:
        """The idempotency keys of the messages answered 2xx, each once, in the order they
        arrived: what a receiver deduplicating on the key keeps."""
        with self.lock:
            arrived = sorted(self.requests, key=lambda r: r.started_s)
        keys = [r.key for r in arrived if 200 <= r.status < 300 and _ok(r)]
        return list(dict.fromkeys(keys))


def _ok(request: Received) -> bool:
    """A 2xx the sender counts as accepted: a chat robot's `errcode`/`code` is 0 too."""
    try:
        answer = json.loads(request.answer or b"{}")
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("errcode", answer.get("code", 0)) in (0, "0")


@contextmanager
def receiving(
    answers: list[Answer] | None = None,
    delay_s: float = 0.0,
    port: int = 0,
    respond: Callable[[bytes], Answer] | None = None,
) -> Iterator[Receiver]:
    """A receiver serving in a thread for the duration of the block."""
    receiver = Receiver(answers or [], delay_s, port, respond)
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


SUBSCRIPTION_COLUMNS = (
    "site_id",
    "escalation_only",
    "group_wait_s",
    "group_interval_s",
    "repeat_interval_s",
    "repeat_min_grade",
    "escalate_after_s",
    "enabled",
)


def subscribe(conn: psycopg.Connection[Any], kind: str, url: str, **kw: Any) -> int:
    """Add a webhook subscription; return its id. Without grouping times it sends each
    notification at once (group_wait_s 0: what the tests of single deliveries need); other
    columns of migration 0017 by name."""
    columns = {"group_wait_s": 0, **{k: v for k, v in kw.items() if k in SUBSCRIPTION_COLUMNS}}
    names = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    row = conn.execute(
        f"""INSERT INTO webhook_subscriptions (name, kind, url, secret, region_code, min_grade,
                                               {names})
            VALUES (%s, %s, %s, %s, %s, %s, {marks}) RETURNING id""",
        (
            kw.get("name", kind),
            kind,
            url,
            kw.get("secret"),
            kw.get("region", ""),
            kw.get("min_grade", 2),
            *columns.values(),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def notifier(
    registry: CollectorRegistry | None = None, clock: Any = None, **policy: Any
) -> Notifier:
    """A notifier with fast retries (its database URL unused: tests pass the connection)."""
    return Notifier(
        "unused",
        policy=RetryPolicy(**{"first_s": 0.01, "max_s": 0.05, "timeout_s": 2, **policy}),
        registry=registry or CollectorRegistry(),
        **({"clock": clock} if clock else {}),
    )


def deliveries(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    """`hazmon_notify_deliveries_total` by (kind, result)."""
    return {
        (s.labels["kind"], s.labels["result"]): s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "hazmon_notify_deliveries_total"
    }
