"""A world of two tenants for the API tests, served by the real API on its own database.

Site A (武昌区 420106, enterprise 甲建设) and site B (深圳南山 440305, 乙建设) each have a tower
crane work, a device, its series, an open alert, a threshold override, and hazards in each
lifecycle state. Tokens: admin, a Hubei regulator (42), a Wuhan inspector (4201), 甲建设's
enterprise token and a gateway. Nobody but admin may see site B, except by guessing its ids.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from hazmon.links import Link, sign_link
from hazmon.settings import Settings
from registry.inspections import plan_items
from tests.support.inventories import crane_site, load
from tests.support.services import running_api, running_ingest
from tests.support.tokens import issue

EVIDENCE_MAX_BYTES = 64 * 1024
"""The world's evidence limit: small, so that a test can pass it."""
ROLES = ("anonymous", "gateway", "admin", "regulator", "inspector", "enterprise")
HAZARD_STATES = {
    "registered": ("registered", None),
    "assigned": ("assigned", None),
    "rectified": ("rectified", "enterprise:someone-else#0"),
    "rectified2": ("rectified", "enterprise:someone-else#0"),
    "verified": ("verified", "enterprise:someone-else#0"),
}


def hazmon(db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the `hazmon` CLI on the database at `db_url`, with extra HAZMON_* settings."""
    return subprocess.run(
        [sys.executable, "-m", "hazmon.cli", *args],
        env={**os.environ, "HAZMON_DATABASE_URL": db_url, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@dataclass(frozen=True)
class World:
    """The running API and what is in its database."""

    base: str
    db_url: str
    tokens: dict[str, str | None]
    ids: dict[str, dict[str, int]]
    """per site ("A", "B"): site, work, device, series, alert, threshold, hazard_<state>,
    rectification_<state> (its round), user, inspector_user, plan, inspection, evidence."""
    extra: dict[str, Any]
    """admin-only things: webhook, dead_letter, spare_token; and the signed links of a
    notification sent to the webhook: link_alert (A's alert), link_hazard (A's registered
    hazard), link_expired, link_forged (A's alert's link pointing at B's alert)."""


def _site(conn: psycopg.Connection[Any], code: str) -> dict[str, int]:
    ids: dict[str, int] = {}
    row = conn.execute(
        """SELECT s.id, w.id, d.id, se.id FROM sites s JOIN works w ON w.site_id = s.id
           JOIN devices d ON d.work_id = w.id JOIN series se ON se.device_id = d.id
           WHERE s.code = %s AND se.metric = 'moment_ratio'""",
        (code,),
    ).fetchone()
    assert row is not None
    ids["site"], ids["work"], ids["device"], ids["series"] = row

    def returning_id(query: str, params: tuple[Any, ...]) -> int:
        got = conn.execute(query, params).fetchone()
        assert got is not None
        return int(got[0])

    ids["alert"] = returning_id(
        """INSERT INTO alerts (series_id, rule, grade, state, opened_at, updated_at, value,
                               threshold, message_zh, message_en)
           VALUES (%s, 'moment_ratio', 4, 'open', now(), now(), 1.02, 1.0, '力矩超限', 'moment')
           RETURNING id""",
        (ids["series"],),
    )
    ids["threshold"] = returning_id(
        """INSERT INTO thresholds (work_id, metric, rule, params, source)
           VALUES (%s, 'moment_ratio', 'moment_ratio', '{"levels": {"red": 0.95}}', 'test')
           RETURNING id""",
        (ids["work"],),
    )
    for name, (state, rectified_by) in HAZARD_STATES.items():
        ids[f"hazard_{name}"] = returning_id(
            """INSERT INTO hazards (site_id, work_id, title, level, state, found_by, found_at,
                                    responsible_unit, responsible_person, deadline, rectified_by)
               VALUES (%s, %s, %s, 'major', %s, 'inspector:x#0', now(), 'unit', 'person',
                       now() + interval '7 days', %s)
               RETURNING id""",
            (ids["site"], ids["work"], f"{code} {name}", state, rectified_by),
        )
        if state != "registered":  # its round of rectification, as the loop would have opened
            ids[f"rectification_{name}"] = returning_id(
                """INSERT INTO rectifications (hazard_id, round, responsible_unit,
                       responsible_person, deadline, assigned_by, assigned_at, reported_by,
                       reported_at, outcome)
                   SELECT id, 1, responsible_unit, responsible_person, deadline, found_by, now(),
                          rectified_by, CASE WHEN rectified_by IS NOT NULL THEN now() END,
                          CASE WHEN state = 'verified' THEN 'accepted' END
                   FROM hazards WHERE id = %s RETURNING id""",
                (ids[f"hazard_{name}"],),
            )
    # investigation: the site's safety officer, a plan of the crane's checklist, a record with a
    # failed item, and a missed round
    ids["inspector_user"] = returning_id(
        "INSERT INTO users (name, role, site_id) VALUES (%s, 'enterprise', %s) RETURNING id",
        (f"安全员{code}", ids["site"]),
    )
    items = plan_items("tower_crane")
    ids["plan"] = returning_id(
        """INSERT INTO inspection_plans (work_id, name, frequency_h, inspector_user, items,
                                         starts_at, created_by)
           VALUES (%s, '塔吊日常巡查', 24, %s, %s, now() - interval '3 days', 'test')
           RETURNING id""",
        (ids["work"], ids["inspector_user"], Jsonb(items)),
    )
    results = [
        {"item": i["code"], "result": "fail" if i["code"] == "safety_devices" else "pass",
         "note": "力矩限制器失效" if i["code"] == "safety_devices" else ""}
        for i in items
    ]  # fmt: skip
    ids["inspection"] = returning_id(
        """INSERT INTO inspection_records (plan_id, work_id, performed_by, performed_at, results,
                                           failed)
           VALUES (%s, %s, 'test', now() - interval '1 hour', %s, 1) RETURNING id""",
        (ids["plan"], ids["work"], Jsonb(results)),
    )
    conn.execute(
        """INSERT INTO inspection_events (plan_id, action, window_start, window_end)
           VALUES (%s, 'inspection_missed', now() - interval '3 days', now() - interval '2 days')""",
        (ids["plan"],),
    )
    return ids


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)) * 4 + b"\xff\xd9"
"""A small file with a JPEG's magic bytes (the evidence of each site's registered hazard)."""


def _evidence(conn: psycopg.Connection[Any], ids: dict[str, int], directory: Path) -> int:
    sha = hashlib.sha256(JPEG).hexdigest()
    (directory / sha[:2]).mkdir(parents=True, exist_ok=True)
    (directory / sha[:2] / sha).write_bytes(JPEG)
    row = conn.execute(
        """INSERT INTO evidence (sha256, size_bytes, media_type, filename, site_id, hazard_id,
                                 uploaded_by)
           VALUES (%s, %s, 'image/jpeg', '现场照片.jpg', %s, %s, 'test') RETURNING id""",
        (sha, len(JPEG), ids["site"], ids["hazard_registered"]),
    ).fetchone()
    assert row is not None
    return int(row[0])


def build_world(db_url: str, tmp_path: Path) -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
    """Fill the database (and the evidence directory `tmp_path/evidence`); return the per-site
    ids and the admin-only ids."""
    site_a = {**crane_site("A", "TC1-M", region="420106"), "enterprise": "甲建设"}
    site_b = {**crane_site("B", "TC1-M", region="440305"), "enterprise": "乙建设"}
    load(db_url, tmp_path, site_a, site_b)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            """INSERT INTO regions (code, name, parent_code) VALUES
               ('420000', '湖北省', NULL), ('420100', '武汉市', '420000'),
               ('420106', '武昌区', '420100'), ('440000', '广东省', NULL),
               ('440300', '深圳市', '440000'), ('440305', '南山区', '440300')"""
        )
        ids = {"A": _site(conn, "A"), "B": _site(conn, "B")}
        for site in ids.values():
            site["evidence"] = _evidence(conn, site, tmp_path / "evidence")
        extra = {
            "webhook": conn.execute(
                """INSERT INTO webhook_subscriptions (name, kind, url, secret)
                   VALUES ('ops', 'generic', 'http://127.0.0.1:9/hook', 's3cret') RETURNING id"""
            ).fetchone()[0],  # type: ignore[index]
            "dead_letter": conn.execute(
                """INSERT INTO dead_letters (topic, reason, detail, payload)
                   VALUES ('hazmon/v1/B/TC1-M/telemetry', 'invalid_json', 'x', '\\xff00')
                   RETURNING id"""
            ).fetchone()[0],  # type: ignore[index]
        }
    return ids, extra


LINK_SECRET = "test-link-secret-of-at-least-32-characters"


def with_links(settings: Settings) -> Settings:
    """`settings` with a link secret: the API checks, and the notifier signs, links with it."""
    return settings.model_copy(update={"link_secret": SecretStr(LINK_SECRET)})


def links(ids: dict[str, dict[str, int]], webhook: int) -> dict[str, str]:
    """Signed links as a notification to `webhook` carries them (hazmon/links.py)."""
    secret = LINK_SECRET
    later = int(time.time()) + 3600
    alert = sign_link(secret, Link("alert", ids["A"]["alert"], webhook, later))
    # the same signature on another alert's link: tampered
    forged = alert.replace(f"v1.a{ids['A']['alert']}.", f"v1.a{ids['B']['alert']}.")
    return {
        "link_alert": alert,
        "link_hazard": sign_link(
            secret, Link("hazard", ids["A"]["hazard_registered"], webhook, later)
        ),
        "link_expired": sign_link(
            secret, Link("alert", ids["A"]["alert"], webhook, int(time.time()) - 60)
        ),
        "link_forged": forged,
    }


@pytest.fixture
def world(settings: Settings, db_url: str, tmp_path: Path) -> Iterator[World]:
    """The two-tenant world, its tokens, and the API serving it (with an ingest worker)."""
    ids, extra = build_world(db_url, tmp_path)
    settings = settings.model_copy(
        update={"evidence_dir": tmp_path / "evidence", "evidence_max_bytes": EVIDENCE_MAX_BYTES}
    )
    tokens: dict[str, str | None] = {
        "anonymous": None,
        "gateway": issue(db_url, "gateway"),
        "admin": issue(db_url, "admin"),
        "regulator": issue(db_url, "regulator", region="420000"),
        "inspector": issue(db_url, "inspector", region="4201"),
        "enterprise": issue(db_url, "enterprise", enterprise="甲建设"),
    }
    issue(db_url, "inspector", region="44")
    with psycopg.connect(db_url) as conn:
        spare = conn.execute("SELECT max(id), max(user_id) FROM api_tokens").fetchone()
        wuhan = conn.execute("SELECT id FROM users WHERE region_code = '4201'").fetchone()
    assert spare is not None
    assert wuhan is not None
    extra["spare_token"] = int(spare[0])
    extra.update(links(ids, extra["webhook"]))
    # users: the Wuhan inspector (in every A-side scope) and the Guangdong inspector (B side)
    ids["A"]["user"], ids["B"]["user"] = int(wuhan[0]), int(spare[1])
    # an ingest worker carries out the dead-letter replays the API asks for
    with running_ingest(settings), running_api(with_links(settings)) as base:
        yield World(base, db_url, tokens, ids, extra)
