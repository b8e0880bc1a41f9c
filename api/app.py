"""The FastAPI application: lifespan-owned database pool, routes, /healthz and /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from api.routes import alerts
from hazmon import __version__
from hazmon.db import async_pool
from hazmon.settings import Settings


def create_app(settings: Settings | None = None, registry: CollectorRegistry = REGISTRY) -> FastAPI:
    """Build the application; the pool opens in the lifespan, never at import."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = async_pool(settings.database_url)
        await pool.open(wait=True, timeout=30)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close(timeout=5)

    app = FastAPI(
        title="hazmon",
        version=__version__,
        description="危大工程监测预警 / monitoring of major-hazard construction works",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(alerts.router)

    @app.get("/healthz", tags=["ops"], summary="进程存活 / the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/metrics", tags=["ops"], response_class=PlainTextResponse, summary="Prometheus metrics"
    )
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
