"""Users: tokens are issued to people; disabling a person stops their tokens; the migration gave
every earlier token a user; passwords are stored as scrypt hashes only."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest

from hazmon.auth import AuthError, check_password, hash_password, new_user
from hazmon.db import drop_database, with_database
from hazmon.migrate import available_migrations
from tests.support.common import SERVER_URL
from tests.support.tokens import bearer
from tests.support.world import World, hazmon


def test_disabling_a_user_stops_every_token_of_theirs(world: World) -> None:
    with httpx.Client(base_url=world.base, headers=bearer(world.tokens["admin"] or "")) as admin:
        user = admin.post(
            "/users",
            json={
                "name": "李工",
                "role": "inspector",
                "region": "420100",
                "phone": "13800000001",
                "unit": "武汉市建设工程安全监督站",
                "password": "correct horse battery",
            },
        ).json()
        assert (user["region_code"], user["has_password"], user["disabled"]) == (
            "4201",
            True,
            False,
        )
        assert "password" not in user
        assert "password_hash" not in user
        tokens = [
            admin.post(f"/users/{user['id']}/tokens", json={"name": n}).json()["token"]
            for n in ("手机", "电脑")
        ]
        for token in tokens:
            me = httpx.get(f"{world.base}/me", headers=bearer(token)).json()
            assert (me["user_id"], me["user_name"], me["role"]) == (user["id"], "李工", "inspector")
        assert admin.patch(f"/users/{user['id']}", json={"disabled": True}).json()["disabled"]
        for token in tokens:
            refused = httpx.get(f"{world.base}/sites", headers=bearer(token))
            assert refused.status_code == 401
        # a disabled user gets no new token
        assert admin.post(f"/users/{user['id']}/tokens", json={"name": "x"}).status_code == 404
        assert not admin.patch(f"/users/{user['id']}", json={"disabled": False}).json()["disabled"]
        assert httpx.get(f"{world.base}/sites", headers=bearer(tokens[0])).status_code == 200
        # the phone is unique; the scope must fit the role; an admin cannot lock themselves out
        again = admin.post(
            "/users",
            json={"name": "李工2", "role": "inspector", "region": "42", "phone": "13800000001"},
        )
        assert again.status_code == 409
        assert admin.post("/users", json={"name": "x", "role": "regulator"}).status_code == 422
        me = admin.get("/me").json()
        assert admin.patch(f"/users/{me['user_id']}", json={"disabled": True}).status_code == 409
    with psycopg.connect(world.db_url) as conn:
        stored = conn.execute("SELECT password_hash FROM users WHERE id = %s", (user["id"],))
        (password_hash,) = stored.fetchone() or (None,)
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit_log WHERE subject = 'user' AND subject_id = %s ORDER BY id",
                (user["id"],),
            )
        ]
    assert password_hash.startswith("scrypt$")
    assert check_password("correct horse battery", password_hash)
    assert not check_password("correct horse battery!", password_hash)
    assert actions == ["user.create", "token.create", "token.create", "user.update", "user.update"]


def test_supervisors_read_the_users_of_their_region_only(world: World) -> None:
    def names(role: str) -> set[tuple[str, str]]:
        token = world.tokens[role] or ""
        data = httpx.get(f"{world.base}/users", headers=bearer(token)).json()["data"]
        return {(u["role"], u["region_code"] or u["enterprise"]) for u in data}

    # enterprise users: 甲建设's token holder, and site A's safety officer (scoped by site: "")
    assert names("regulator") == {
        ("regulator", "42"),
        ("inspector", "4201"),
        ("enterprise", "甲建设"),
        ("enterprise", ""),
    }
    assert names("inspector") == {
        ("inspector", "4201"),
        ("enterprise", "甲建设"),
        ("enterprise", ""),
    }
    assert ("inspector", "44") in names("admin")
    enterprise = httpx.get(f"{world.base}/users", headers=bearer(world.tokens["enterprise"] or ""))
    assert enterprise.status_code == 403


def test_cli_creates_lists_disables_users_and_issues_their_tokens(world: World) -> None:
    created = hazmon(
        world.db_url, "user", "create", "--name", "赵工", "--role", "enterprise",
        "--site", "A", "--phone", "13900000002", "--unit", "甲建设",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    user_id = int(created.stdout.split("#")[1].split()[0])
    issued = hazmon(world.db_url, "token", "create", "--user", str(user_id), "--name", "手机")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    sites = httpx.get(f"{world.base}/sites", headers=bearer(token)).json()["data"]
    assert [s["code"] for s in sites] == ["A"]
    listed = hazmon(world.db_url, "user", "list").stdout
    assert (
        f"#{user_id}\tenterprise\tsite #{world.ids['A']['site']}\tenabled\ttokens 1\t赵工" in listed
    )
    assert hazmon(world.db_url, "user", "disable", str(user_id)).returncode == 0
    assert httpx.get(f"{world.base}/sites", headers=bearer(token)).status_code == 401
    assert "user disabled" in hazmon(world.db_url, "token", "list").stdout
    assert hazmon(world.db_url, "user", "disable", "999999").returncode == 2
    both = hazmon(world.db_url, "token", "create", "--user", str(user_id), "--name", "x")
    assert both.returncode == 2
    assert "no enabled user" in both.stderr
    mixed = hazmon(world.db_url, "token", "create", "--user", "1", "--role", "admin", "--name", "x")
    assert mixed.returncode == 2
    dup = hazmon(
        world.db_url, "user", "create", "--name", "钱", "--role", "admin", "--phone", "13900000002"
    )
    assert (dup.returncode, "already" in dup.stderr) == (2, True)


def test_tokens_by_name_role_and_scope_belong_to_one_user(world: World) -> None:
    first = hazmon(world.db_url, "token", "create", "--role", "admin", "--name", "值班")
    second = hazmon(world.db_url, "token", "create", "--role", "admin", "--name", "值班")
    other = hazmon(world.db_url, "token", "create", "--role", "admin", "--name", "值班2")
    users = [
        httpx.get(f"{world.base}/me", headers=bearer(r.stdout.strip().splitlines()[-1])).json()[
            "user_id"
        ]
        for r in (first, second, other)
    ]
    assert users[0] == users[1] != users[2]


def test_user_rows_are_checked_like_tokens() -> None:
    with pytest.raises(AuthError, match="region"):
        new_user(name="x", role="inspector")
    with pytest.raises(AuthError, match="phone"):
        new_user(name="x", role="admin", phone="12-34")
    with pytest.raises(AuthError, match="at least 12"):
        hash_password("short")
    row = new_user(name=" 王 ", role="regulator", region="420000", password="a long password")
    assert (row["name"], row["region_code"]) == ("王", "42")
    assert check_password("a long password", row["password_hash"])
    assert not check_password("a long password", None)
    assert not check_password("x", "md5$abc")


def test_migration_0013_gives_each_earlier_token_a_user() -> None:
    """Tokens with the same name, role and scope become one user; the rest one user each."""
    url = with_database(SERVER_URL, f"hazmon_t_users_{uuid.uuid4().hex[:8]}")
    drop_database(url)
    with psycopg.connect(with_database(SERVER_URL, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
    try:
        migrations = [m for m in available_migrations() if not m.needs_tsl]
        with psycopg.connect(url, autocommit=True) as conn:
            for m in migrations:
                if m.version >= "0013":
                    break
                with conn.transaction():
                    conn.execute(m.sql.encode())
            conn.execute(
                """INSERT INTO regions VALUES ('420106', '武昌区', NULL);
                   INSERT INTO sites (code, name, region_code) VALUES ('S', 'S', '420106');
                   INSERT INTO api_tokens (name, token_hash, role, region_code, enterprise,
                                           site_id, expires_at)
                   VALUES ('ops', 'h1', 'admin', '', '', NULL, now() + interval '1 day'),
                          ('ops', 'h2', 'admin', '', '', NULL, now() + interval '1 day'),
                          ('ops', 'h3', 'inspector', '4201', '', NULL, now() + interval '1 day'),
                          ('甲', 'h4', 'enterprise', '', '', 1, now() + interval '1 day'),
                          ('甲', 'h5', 'enterprise', '', '甲建设', NULL, now() + interval '1 day')"""
            )
            for m in migrations:
                if m.version.startswith("0013"):
                    with conn.transaction():
                        conn.execute(m.sql.encode())
            rows = conn.execute(
                """SELECT t.token_hash, u.id, u.name, u.role, u.region_code
                   FROM api_tokens t JOIN users u ON u.id = t.user_id ORDER BY t.id"""
            ).fetchall()
    finally:
        drop_database(url)
    user_of = {r[0]: r[1] for r in rows}
    assert user_of["h1"] == user_of["h2"]
    assert len({user_of[h] for h in ("h1", "h3", "h4", "h5")}) == 4
    assert [(r[2], r[3], r[4]) for r in rows][2] == ("ops", "inspector", "4201")
