"""Tokens: stored hashed, expiring, revocable by CLI and API, scoped to fit their role."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from hazmon.auth import AuthError, grant, region_prefix
from tests.support.tokens import bearer, issue
from tests.support.world import World, hazmon


def test_cli_token_is_shown_once_stored_hashed_scoped_and_revocable(world: World) -> None:
    created = hazmon(
        world.db_url,
        "token",
        "create",
        "--role",
        "inspector",
        "--region",
        "420100",
        "--name",
        "武汉站",
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    with psycopg.connect(world.db_url) as conn:
        row = conn.execute(
            "SELECT id, token_hash, region_code FROM api_tokens WHERE name = '武汉站'"
        ).fetchone()
    assert row is not None
    token_id, stored, region = row
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored
    assert region == "4201"
    with httpx.Client(base_url=world.base, headers=bearer(token)) as http:
        me = http.get("/me").json()
        assert (me["token_id"], me["role"], me["region_prefix"]) == (token_id, "inspector", "4201")
        sites = http.get("/sites").json()
        assert [s["code"] for s in sites["data"]] == ["A"]
        assert hazmon(world.db_url, "token", "revoke", str(token_id)).returncode == 0
        refused = http.get("/sites")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
    assert hazmon(world.db_url, "token", "revoke", str(token_id)).returncode == 2
    listed = hazmon(world.db_url, "token", "list").stdout.splitlines()
    assert f"#{token_id}\tinspector\t4201\trevoked\t武汉站" in listed
    assert token not in "\n".join(listed)
    wrong = hazmon(world.db_url, "token", "create", "--role", "regulator", "--name", "x")
    assert wrong.returncode == 2
    assert "region" in wrong.stderr


def test_expired_revoked_and_forged_tokens_are_refused(world: World) -> None:
    expired = issue(world.db_url, "admin")
    with psycopg.connect(world.db_url) as conn:
        conn.execute(
            "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = %s",
            (hashlib.sha256(expired.encode()).hexdigest(),),
        )
    admin = bearer(world.tokens["admin"] or "")
    with httpx.Client(base_url=world.base) as http:
        assert http.get("/sites", headers=bearer(expired)).status_code == 401
        assert http.get("/sites", headers=bearer(expired + "x")).status_code == 401
        assert http.get("/sites", headers={"Authorization": "Basic YTpi"}).status_code == 401
        new = http.post(
            "/tokens",
            headers=admin,
            json={"name": "tmp", "role": "enterprise", "enterprise": "甲建设"},
        )
        assert new.status_code == 201
        assert http.get("/sites", headers=bearer(new.json()["token"])).status_code == 200
        assert "token" not in http.get("/tokens", headers=admin).json()["data"][0]
        assert http.delete(f"/tokens/{new.json()['id']}", headers=admin).status_code == 204
        assert http.get("/sites", headers=bearer(new.json()["token"])).status_code == 401
        assert http.delete(f"/tokens/{new.json()['id']}", headers=admin).status_code == 404
        misfit = http.post("/tokens", headers=admin, json={"name": "x", "role": "regulator"})
        assert misfit.status_code == 422
        assert "region" in misfit.json()["detail"]


@pytest.mark.parametrize(
    ("code", "prefix"), [("42", "42"), ("420000", "42"), ("420100", "4201"), ("420106", "420106")]
)
def test_region_scopes_normalise_to_their_prefix(code: str, prefix: str) -> None:
    assert region_prefix(code) == prefix


@pytest.mark.parametrize(
    "scope",
    [
        {"role": "regulator"},
        {"role": "inspector", "region": "4"},
        {"role": "enterprise"},
        {"role": "enterprise", "enterprise": "甲", "site_id": 1},
        {"role": "admin", "region": "42"},
        {"role": "gateway", "enterprise": "甲"},
    ],
)
def test_scopes_that_do_not_fit_the_role_are_refused(scope: dict[str, object]) -> None:
    with pytest.raises(AuthError):
        grant(name="x", expires_days=1, now=datetime.now(UTC), **scope)  # type: ignore[arg-type]
