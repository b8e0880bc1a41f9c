"""Operations: /metrics passes promtool, /readyz tells the truth, errors are problem details
without internals, bodies are size-limited, access logs carry no secrets."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from hazmon.settings import Settings
from tests.support.common import free_port, wait_until
from tests.support.services import running_api
from tests.support.tokens import bearer
from tests.support.world import World


def test_metrics_pass_promtool_check(world: World) -> None:
    with httpx.Client(base_url=world.base, headers=bearer(world.tokens["admin"] or "")) as http:
        for path in ("/sites", "/alerts", "/sites/999", "/nowhere"):
            http.get(path)
        text = http.get("/metrics").text
    assert (
        'hazmon_api_requests_total{method="GET",route="/sites/{site_id}",status="404"} 1.0' in text
    )
    assert 'route="unmatched"' in text
    assert "hazmon_api_db_pool_size" in text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readyz_reports_an_unreachable_broker(settings: Settings, world: World) -> None:
    assert httpx.get(f"{world.base}/readyz").json() == {
        "status": "ready", "database": True, "broker": True,
    }  # fmt: skip
    nowhere = settings.model_copy(update={"mqtt_url": f"mqtt://127.0.0.1:{free_port()}"})
    with running_api(nowhere) as base:
        response = httpx.get(f"{base}/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "unavailable", "database": True, "broker": False}
        assert httpx.get(f"{base}/healthz").status_code == 200


def test_errors_are_problem_details_and_bodies_are_limited(world: World) -> None:
    with httpx.Client(base_url=world.base, headers=bearer(world.tokens["admin"] or "")) as http:
        malformed = http.post(
            "/sites", content=b'{"code": ', headers={"content-type": "application/json"}
        )
        invalid = http.post("/sites", json={"code": "../etc", "name": "", "region_code": "42"})
        duplicate = http.post("/sites", json={"code": "A", "name": "x", "region_code": "420106"})
        nul = http.patch(f"/sites/{world.ids['A']['site']}", json={"address": "a\u0000b"})
        for response, status in ((malformed, 422), (invalid, 422), (duplicate, 409), (nul, 422)):
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["status"] == status
            assert problem["instance"].startswith("/sites")
            assert "Traceback" not in response.text
            assert "psycopg" not in response.text
        assert {e["loc"][-1] for e in invalid.json()["errors"]} == {"code", "name", "region_code"}
        assert "already exists" in duplicate.json()["detail"]
        assert "NUL" in nul.json()["detail"]

        big = b"[" + b"1," * 600_000 + b"1]"
        declared = http.post("/sites", content=big, headers={"content-type": "application/json"})
        assert declared.status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"code": "'
            for _ in range(200):
                yield b"x" * 8192

        streamed = http.post(
            "/sites", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert streamed.json()["title"] == "Content Too Large"


def test_access_log_names_route_status_and_role_but_no_secret(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    token = world.tokens["inspector"] or ""

    def access_records() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "hazmon.api.access"]

    with caplog.at_level(logging.INFO, logger="hazmon.api.access"):
        httpx.get(f"{world.base}/sites/{world.ids['B']['site']}", headers=bearer(token))
        httpx.post(f"{world.base}/tokens?x={token}", headers=bearer(token), json={"name": token})
        # the line is written once the response has gone out, so it may trail the client
        assert wait_until(lambda: len(access_records()) == 2, 5)
    records = access_records()
    first = records[0].__dict__
    assert (first["route"], first["status"], first["role"]) == (
        "/sites/{site_id}",
        404,
        "inspector",
    )
    assert records[1].__dict__["status"] == 403
    for record in records:
        assert token not in str(record.__dict__)


def test_a_query_past_the_statement_timeout_is_cancelled_with_503(
    settings: Settings, world: World
) -> None:
    hazard = world.ids["A"]["hazard_registered"]
    impatient = settings.model_copy(update={"api_statement_timeout_s": 0.5})
    with (
        running_api(impatient) as base,
        psycopg.connect(world.db_url) as blocker,
    ):
        # another session holds the hazard's row lock, so the action's FOR UPDATE must wait
        blocker.execute("SELECT 1 FROM hazards WHERE id = %s FOR UPDATE", (hazard,))
        response = httpx.post(
            f"{base}/hazards/{hazard}/rectify",
            headers=bearer(world.tokens["admin"] or ""),
            json={},
            timeout=10,
        )
        blocker.rollback()
    assert response.status_code == 503
    assert "too long" in response.json()["detail"]


def test_a_write_is_committed_before_its_response_is_sent(world: World) -> None:
    admin = bearer(world.tokens["admin"] or "")
    with (
        httpx.Client(base_url=world.base, headers=admin) as http,
        psycopg.connect(world.db_url, autocommit=True) as conn,
    ):
        for i in range(30):
            created = http.post(
                "/regions", json={"code": f"4290{i:02d}", "name": f"r{i}", "parent_code": None}
            )
            assert created.status_code == 201
            seen = conn.execute("SELECT 1 FROM regions WHERE code = %s", (f"4290{i:02d}",))
            assert seen.fetchone() is not None, f"write {i} answered 201 before it committed"
