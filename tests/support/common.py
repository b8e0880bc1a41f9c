"""What every test shares: where the real services are, and small waiting helpers.

The fixtures that give each test its own database, topic root and settings are in
tests/conftest.py; the rest of tests/support/ holds the helpers several test packages use.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

SERVER_URL = os.environ.get(
    "HAZMON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MQTT_URL = os.environ.get("HAZMON_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
START_HINT = "start the local services with `make services` (scripts/services.sh up, as root)"
REPO = Path(__file__).resolve().parents[2]


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
