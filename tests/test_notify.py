"""The notifier: outbox rows from alert transitions, delivered to real HTTP receivers, retried."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from notify import Notifier, RetryPolicy, sign_generic
from tests.alerts import open_alert
from tests.inventories import crane_site, load


class Receiver:
    """A real HTTP server recording what it receives; answers from a script of status codes."""

    def __init__(self, answers: list[tuple[int, bytes]]) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answers = answers
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.path, dict(self.headers), body))
                status, answer = receiver.answers.pop(0) if receiver.answers else (200, b"{}")
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def receiving(answers: list[tuple[int, bytes]] | None = None) -> Iterator[Receiver]:
    receiver = Receiver(answers or [])
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def _subscribe(conn: psycopg.Connection[Any], kind: str, url: str, **kw: Any) -> int:
    row = conn.execute(
        """INSERT INTO webhook_subscriptions (name, kind, url, secret, region_code, min_grade)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING id""",
        (kind, kind, url, kw.get("secret"), kw.get("region", ""), kw.get("min_grade", 2)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _notifier() -> Notifier:
    return Notifier(
        "unused",
        policy=RetryPolicy(first_s=0.01, max_s=0.05, timeout_s=2),
        registry=CollectorRegistry(),
    )


def test_transition_enqueues_for_matching_subscriptions_only(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, crane_site("S1", region="420106"))
    with psycopg.connect(db_url, autocommit=True) as conn:
        match_city = _subscribe(conn, "generic", "http://x", region="4201")
        _subscribe(conn, "generic", "http://x", region="4301")  # another province
        _subscribe(conn, "generic", "http://x", min_grade=4)  # red only
        open_alert(conn, grade=3)
        rows = conn.execute("SELECT subscription_id, payload FROM outbox").fetchall()
    assert [r[0] for r in rows] == [match_city]
    payload = rows[0][1]
    assert payload["site_code"] == "S1"
    assert payload["metric"] == "moment_ratio"
    assert payload["grade"] == 3
    assert payload["action"] == "open"


def test_generic_webhook_is_signed_and_retried_until_accepted(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    with (
        receiving([(500, b"busy"), (503, b"")]) as receiver,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        _subscribe(conn, "generic", receiver.url + "/hook", secret="s3cret")
        open_alert(conn, grade=4)
        notifier = _notifier()
        with httpx.Client(timeout=2) as http:
            for _ in range(50):
                notifier.deliver_due(conn, http)
                row = conn.execute("SELECT delivered_at, attempts FROM outbox").fetchone()
                assert row is not None
                if row[0] is not None:
                    break
                threading.Event().wait(0.02)
        assert row[0] is not None, "never delivered"
        assert row[1] == 3
    assert len(receiver.requests) == 3
    path, headers, body = receiver.requests[-1]
    assert path == "/hook"
    stamp = headers["X-Hazmon-Timestamp"]
    assert headers["X-Hazmon-Signature"] == "sha256=" + sign_generic("s3cret", stamp, body)
    message = json.loads(body)
    assert message["grade"] == 4
    assert "红色预警" in message["text"]
    assert "RED (I)" in message["text"]


@pytest.mark.parametrize(
    ("kind", "refusal", "check"),
    [
        ("wecom", b'{"errcode": 93000, "errmsg": "invalid webhook url"}', "markdown"),
        ("dingtalk", b'{"errcode": 310000, "errmsg": "sign not match"}', "markdown"),
        ("feishu", b'{"code": 19021, "msg": "sign match fail"}', "text"),
    ],
)
def test_chat_robots_get_their_format_and_a_200_refusal_is_retried(
    db_url: str, tmp_path: Path, kind: str, refusal: bytes, check: str
) -> None:
    load(db_url, tmp_path, crane_site("S1"))
    ok = b'{"errcode": 0, "code": 0}'
    with (
        receiving([(200, refusal), (200, ok)]) as receiver,
        psycopg.connect(db_url, autocommit=True) as conn,
    ):
        _subscribe(conn, kind, receiver.url + "/robot?key=abc", secret="sec")
        open_alert(conn, grade=3)
        notifier = _notifier()
        with httpx.Client(timeout=2) as http:
            for _ in range(50):
                notifier.deliver_due(conn, http)
                if len(receiver.requests) >= 2:
                    break
                threading.Event().wait(0.02)
        row = conn.execute("SELECT delivered_at, attempts, last_error FROM outbox").fetchone()
    assert row is not None
    assert row[0] is not None
    assert row[1] == 2
    path, _, body = receiver.requests[-1]
    message = json.loads(body)
    assert check in json.dumps(message)
    assert "橙色预警" in body.decode()
    if kind == "dingtalk":
        assert "timestamp=" in path
        assert "sign=" in path
    if kind == "feishu":
        assert message["sign"]
        assert message["timestamp"]
