"""ASGI middleware: request body limit, access log and request metrics.

Both are plain ASGI (no BaseHTTPMiddleware), so streaming and error handling stay intact.
The access log names the route template, status, duration and the caller's role and token id;
never a header, a query string or a body, so no secret reaches the logs.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem

log = logging.getLogger("hazmon.api.access")

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, whether declared or streamed.

    `larger` gives the POST paths matching a pattern another limit: evidence uploads (photos,
    PDFs) are larger than any JSON body, and their routes stream them to disk.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: Sequence[tuple[re.Pattern[str], int]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = tuple(larger)

    def _limit(self, scope: Scope) -> int:
        if scope.get("method") == "POST":
            for pattern, limit in self.larger:
                if pattern.fullmatch(scope["path"]):
                    return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            response = problem(Request(scope), 413, self._message(limit))
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, self._message(limit))
            return message

        await self.app(scope, limited, send)

    @staticmethod
    def _message(limit: int) -> str:
        return f"the request body exceeds {limit} bytes"


@dataclass(frozen=True, slots=True)
class ApiMetrics:
    """The API's request metrics, registered in one registry."""

    requests: Counter
    duration: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ApiMetrics:
        """Register the metrics in `registry`."""
        return cls(
            requests=Counter(
                "hazmon_api_requests",
                "HTTP requests answered, by method, route template and status",
                ["method", "route", "status"],
                registry=registry,
            ),
            duration=Histogram(
                "hazmon_api_request_duration_seconds",
                "Time to answer an HTTP request, by route template",
                ["route"],
                registry=registry,
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            ),
        )


class PoolCollector(Collector):
    """Connection pool statistics of the running application, read at scrape time."""

    def __init__(self, state: Any) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield the pool's size, idle connections and waiting requests (none before startup)."""
        pool = getattr(self._state, "pool", None)
        if pool is None:
            return
        stats = pool.get_stats()
        for key, name, text in (
            ("pool_size", "size", "Connections in the API's database pool"),
            ("pool_available", "available", "Idle connections in the API's database pool"),
            ("requests_waiting", "requests_waiting", "Requests waiting for a pool connection"),
        ):
            yield GaugeMetricFamily(f"hazmon_api_db_pool_{name}", text, value=stats.get(key, 0))


class Observe:
    """Count, time and log every request by its route template (a bounded label)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            elapsed_s = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(route).observe(elapsed_s)
            principal = scope.get("state", {}).get("principal")
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed_s * 1000, 2),
                    "role": getattr(principal, "role", None),
                    "token_id": getattr(principal, "token_id", None),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
