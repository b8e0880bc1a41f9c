"""The FastAPI application: lifespan-owned database pool, routes, problem details, ops endpoints.

Middleware, outermost first: `Observe` (access log and request metrics), `BodyLimit`
(413 over `HAZMON_API_MAX_BODY_BYTES`), then FastAPI's own error handling, which turns every
error into RFC 9457 problem details (api/problems.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import psycopg
import psycopg_pool
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from pydantic import BaseModel

from api import problems
from api.middleware import ApiMetrics, BodyLimit, Observe, PoolCollector
from api.routes import (
    alerts,
    baselines,
    dead_letters,
    devices,
    evidence,
    hazards,
    inspections,
    links,
    rectifications,
    regions,
    series,
    sites,
    statistics,
    thresholds,
    tokens,
    users,
    webhooks,
    works,
)
from hazmon import __version__
from hazmon.db import async_pool
from hazmon.settings import ApiSettings, Settings

READY_TIMEOUT_S = 2.0
API_ERRORS = problems.problem_responses(400, 401, 403, 404, 409, 413, 422, 500, 503)
TAGS = [
    {"name": "regions", "description": "行政区划 / administrative divisions (GB/T 2260)"},
    {"name": "sites", "description": "工地 / construction sites"},
    {"name": "works", "description": "危大工程 / major-hazard works, kind and design values"},
    {"name": "devices", "description": "监测设备 / devices and their broker credentials"},
    {"name": "series", "description": "监测序列与数据 / series and readings"},
    {"name": "thresholds", "description": "阈值覆盖 / threshold overrides"},
    {"name": "alerts", "description": "报警 / alerts"},
    {"name": "hazards", "description": "隐患闭环 / hazard registry and its lifecycle"},
    {"name": "rectifications", "description": "整改措施清单 / rounds of rectification"},
    {"name": "inspections", "description": "隐患排查 / checklists, inspection plans and records"},
    {"name": "evidence", "description": "佐证材料 / photos and PDFs of hazards and inspections"},
    {"name": "statistics", "description": "统计 / statistics"},
    {"name": "webhooks", "description": "推送订阅 / webhook subscriptions (admin)"},
    {"name": "links", "description": "通知链接 / signed links in notifications (no token)"},
    {"name": "dead letters", "description": "死信 / refused payloads (admin)"},
    {"name": "users", "description": "用户 / people, to whom tokens are issued"},
    {"name": "tokens", "description": "令牌 / API tokens (admin)"},
    {"name": "ops", "description": "运维 / health, readiness, metrics"},
]


class Readiness(BaseModel):
    """Whether the API can serve: its database and the MQTT broker are reachable."""

    status: Literal["ready", "unavailable"]
    database: bool
    broker: bool


async def _database_ready(app: FastAPI) -> bool:
    try:
        async with app.state.pool.connection(timeout=READY_TIMEOUT_S) as conn:
            await conn.execute("SELECT 1")
    except (psycopg.Error, psycopg_pool.PoolTimeout):
        return False
    return True


async def _broker_ready(settings: ApiSettings) -> bool:
    endpoint = settings.mqtt
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port), READY_TIMEOUT_S
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def create_app(
    settings: ApiSettings | None = None, registry: CollectorRegistry = REGISTRY
) -> FastAPI:
    """Build the application; the pool opens in the lifespan, never at import."""
    settings = settings or Settings().api

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = async_pool(settings.database_url, statement_timeout_s=settings.statement_timeout_s)
        await pool.open(wait=True, timeout=30)
        app.state.pool = pool
        try:
            yield
        finally:
            app.state.pool = None
            await pool.close(timeout=5)

    app = FastAPI(
        title="hazmon",
        version=__version__,
        description="危大工程监测预警 / monitoring of major-hazard construction works. "
        "角色与范围见 docs/api.md / roles and scopes: docs/api.md",
        lifespan=lifespan,
        openapi_tags=TAGS,
    )
    app.state.settings = settings
    app.state.pool = None
    problems.install(app)
    for router in (
        regions.router,
        sites.router,
        works.router,
        thresholds.effective_router,
        devices.router,
        series.router,
        baselines.router,
        thresholds.router,
        alerts.router,
        hazards.router,
        rectifications.router,
        inspections.router,
        hazards.inspection_hazards_router,
        evidence.router,
        statistics.router,
        webhooks.router,
        links.router,
        dead_letters.router,
        users.router,
        tokens.user_tokens_router,
        tokens.router,
        tokens.me_router,
    ):
        app.include_router(router, responses=API_ERRORS)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        larger=((evidence.UPLOAD_PATH, settings.evidence_max_bytes),),
    )
    app.add_middleware(Observe, metrics=ApiMetrics.create(registry))
    registry.register(PoolCollector(app.state))

    @app.get("/healthz", tags=["ops"], summary="进程存活 / the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "database or broker unreachable"}},
        summary="可以服务 / database and broker reachable",
    )
    async def readyz() -> JSONResponse:
        database, broker = await asyncio.gather(_database_ready(app), _broker_ready(settings))
        ready = database and broker
        body = Readiness(
            status="ready" if ready else "unavailable", database=database, broker=broker
        )
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get(
        "/metrics", tags=["ops"], response_class=PlainTextResponse, summary="Prometheus metrics"
    )
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
