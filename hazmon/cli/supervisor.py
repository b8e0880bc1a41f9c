"""Run several hazmon services as one supervised process group (`hazmon run`).

Each service is a child process (ingest and the API each get a core of their own rather than
sharing one interpreter's GIL). A child that dies unexpectedly is restarted after a capped,
jittered backoff; SIGINT/SIGTERM are passed on and every child is awaited before exit.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from hazmon.backoff import Backoff

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 15.0


@dataclass(slots=True)
class _Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    backoff: Backoff = field(default_factory=lambda: Backoff(initial_s=0.5, max_s=30.0))
    restart_at: float = 0.0


class Supervisor:
    """Start, watch and stop a set of `hazmon <service>` children."""

    def __init__(self, services: dict[str, list[str]]) -> None:
        self._children = [
            _Child(name, [sys.executable, "-m", "hazmon.cli", *argv])
            for name, argv in services.items()
        ]
        self.stop_event = threading.Event()

    def install_signal_handlers(self) -> None:
        """Turn SIGINT and SIGTERM into a clean stop of every child."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop_event.set())

    def run(self) -> int:
        """Supervise until stopped; return 0 after a clean stop."""
        for child in self._children:
            self._start(child)
        while not self.stop_event.wait(0.2):
            now = time.monotonic()
            for child in self._children:
                if child.process is not None and child.process.poll() is not None:
                    code = child.process.returncode
                    delay = child.backoff.next_delay_s()
                    log.error(
                        "service exited; restarting",
                        extra={
                            "service": child.name,
                            "code": code,
                            "restart_in_s": round(delay, 2),
                        },
                    )
                    child.process = None
                    child.restart_at = now + delay
                if child.process is None and now >= child.restart_at:
                    self._start(child)
        self._stop_all()
        return 0

    def _start(self, child: _Child) -> None:
        child.process = subprocess.Popen(child.argv)  # noqa: S603 - our own interpreter and module
        log.info("service started", extra={"service": child.name, "pid": child.process.pid})

    def _stop_all(self) -> None:
        running = [c for c in self._children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("service did not stop in time; killing", extra={"service": child.name})
                child.process.kill()
                child.process.wait()
            log.info("service stopped", extra={"service": child.name})
