"""Role × route × expected status, for every route, including cross-tenant attempts by id.

Each role runs the whole table against its own fresh world (own database, own server), so a
write by one role never changes what another sees. Rule of the table: anonymous → 401; a role
the route does not admit → 403 (the gateway is admitted nowhere); a scoped role reaching for
site B's ids → 404, exactly as for an id that does not exist; otherwise the route's success.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from registry.inspections import checklist
from tests.support.tokens import bearer
from tests.support.world import JPEG, ROLES, World

EVERYONE = ROLES
READERS = ("admin", "regulator", "inspector", "enterprise")
SUPERVISORS = ("admin", "regulator", "inspector")
EDITORS = ("admin", "regulator")
RECTIFIERS = ("admin", "enterprise")
ADMIN = ("admin",)
FUTURE = "2099-01-01T00:00:00Z"
PERIOD = {"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}

Body = Callable[[SimpleNamespace, SimpleNamespace], dict[str, Any] | bytes]


@dataclass(frozen=True)
class Case:
    """One route call: who may make it, what success is, and whose data it targets."""

    method: str
    path: str
    allowed: tuple[str, ...]
    status: int = 200
    tenant: str = "A"
    body: Body | None = field(default=None, repr=False)
    query: dict[str, str] | None = None


def _note(a: SimpleNamespace, b: SimpleNamespace) -> dict[str, Any]:
    return {"note": "ok"}


def _assign(a: SimpleNamespace, b: SimpleNamespace) -> dict[str, Any]:
    """The five items a major hazard needs before it is assigned (五到位)."""
    return {
        "measures": "复紧附着螺栓",
        "responsible_unit": "甲建设",
        "responsible_person": "张工",
        "funds_yuan": 5000,
        "deadline": FUTURE,
        "emergency_plan": "停止吊装，设警戒区",
    }


def _supervise(a: SimpleNamespace, b: SimpleNamespace) -> dict[str, Any]:
    return {"authority": "湖北省住建厅", "level": "province", "due": FUTURE}


def _plan(work: int, inspector: int) -> dict[str, Any]:
    return {"work_id": work, "inspector_user_id": inspector, "frequency_h": 12}


def _record(a: SimpleNamespace, b: SimpleNamespace) -> dict[str, Any]:
    items = [i["code"] for i in checklist("tower_crane").items]
    return {"results": [{"item": code, "result": "pass"} for code in items], "notes": "正常"}


def _failed_item(a: SimpleNamespace, b: SimpleNamespace) -> dict[str, Any]:
    return {"item": "safety_devices", "level": "major", "location": "1号塔吊"}


def _photo(a: SimpleNamespace, b: SimpleNamespace) -> bytes:
    """An upload's body: the file itself."""
    return JPEG


def _baseline() -> dict[str, Any]:
    return {"value": 1.5, "valid_from": "2026-01-01T00:00:00+08:00", "reason": "第二层开挖完成"}


CASES: list[Case] = [
    # ops: no token needed
    Case("GET", "/healthz", EVERYONE),
    Case("GET", "/readyz", EVERYONE),
    Case("GET", "/metrics", EVERYONE),
    # reads, in scope and across tenants
    Case("GET", "/regions", READERS),
    Case("GET", "/regions/420106", READERS),
    Case("GET", "/sites", READERS),
    Case("GET", "/sites/{a.site}", READERS),
    Case("GET", "/sites/{b.site}", READERS, tenant="B"),
    Case("GET", "/works", READERS),
    Case("GET", "/works/{a.work}", READERS),
    Case("GET", "/works/{b.work}", READERS, tenant="B"),
    Case("GET", "/devices", READERS),
    Case("GET", "/devices/{a.device}", READERS),
    Case("GET", "/devices/{b.device}", READERS, tenant="B"),
    Case("GET", "/series", READERS),
    Case("GET", "/series/{a.series}", READERS),
    Case("GET", "/series/{b.series}", READERS, tenant="B"),
    Case("GET", "/series/{a.series}/readings", READERS),
    Case("GET", "/series/{b.series}/readings", READERS, tenant="B"),
    Case("GET", "/series/{a.series}/baselines", READERS),
    Case("GET", "/series/{b.series}/baselines", READERS, tenant="B"),
    Case("GET", "/thresholds", READERS),
    Case("GET", "/thresholds/{a.threshold}", READERS),
    Case("GET", "/thresholds/{b.threshold}", READERS, tenant="B"),
    Case("GET", "/works/{a.work}/thresholds", READERS),
    Case("GET", "/works/{b.work}/thresholds", READERS, tenant="B"),
    Case("GET", "/alerts", READERS),
    Case("GET", "/alerts/{a.alert}", READERS),
    Case("GET", "/alerts/{b.alert}", READERS, tenant="B"),
    Case("GET", "/hazards", READERS),
    Case("GET", "/hazards/export", READERS),
    Case("GET", "/hazards/supervised", READERS),
    Case("GET", "/hazards/supervised/export", READERS),
    Case("GET", "/rectifications/export", READERS),
    Case("GET", "/hazards/{a.hazard_registered}", READERS),
    Case("GET", "/hazards/{b.hazard_registered}", READERS, tenant="B"),
    Case("GET", "/hazards/{a.hazard_registered}/events", READERS),
    Case("GET", "/hazards/{b.hazard_registered}/events", READERS, tenant="B"),
    Case("GET", "/checklists", READERS),
    Case("GET", "/inspection-plans", READERS),
    Case("GET", "/inspection-plans/{a.plan}", READERS),
    Case("GET", "/inspection-plans/{b.plan}", READERS, tenant="B"),
    Case("GET", "/inspections", READERS),
    Case("GET", "/inspections/{a.inspection}", READERS),
    Case("GET", "/inspections/{b.inspection}", READERS, tenant="B"),
    Case("GET", "/inspection-events", READERS),
    Case("GET", "/evidence", READERS),
    Case("GET", "/evidence/{a.evidence}", READERS),
    Case("GET", "/evidence/{b.evidence}", READERS, tenant="B"),
    Case("GET", "/evidence/{a.evidence}/content", READERS),
    Case("GET", "/evidence/{b.evidence}/content", READERS, tenant="B"),
    Case("GET", "/rectifications", READERS),
    Case("GET", "/rectifications/{a.rectification_assigned}", READERS),
    Case("GET", "/rectifications/{b.rectification_assigned}", READERS, tenant="B"),
    Case("GET", "/statistics", READERS),
    Case("GET", "/statistics/regions", READERS),
    Case("GET", "/statistics/period", READERS, query=PERIOD),
    Case("GET", "/webhooks", ADMIN),
    Case("GET", "/webhooks/{x.webhook}", ADMIN),
    Case("GET", "/dead-letters", ADMIN),
    Case("GET", "/dead-letters/{x.dead_letter}", ADMIN),
    Case("GET", "/tokens", ADMIN),
    Case("GET", "/me", READERS),
    Case("GET", "/users", SUPERVISORS),
    Case("GET", "/users/{a.user}", SUPERVISORS),
    Case("GET", "/users/{b.user}", SUPERVISORS, tenant="B"),
    # re-baselining: those who edit thresholds, within their scope
    Case("POST", "/series/{a.series}/baselines", EDITORS, 201, body=lambda a, b: _baseline()),
    Case(
        "POST",
        "/series/{b.series}/baselines",
        EDITORS,
        201,
        tenant="B",
        body=lambda a, b: _baseline(),
    ),
    # registry writes: admin only
    Case(
        "POST",
        "/regions",
        ADMIN,
        201,
        body=lambda a, b: {"code": "420102", "name": "江岸区", "parent_code": "420100"},
    ),
    Case(
        "POST",
        "/sites",
        ADMIN,
        201,
        body=lambda a, b: {"code": "C", "name": "新工地", "region_code": "420106"},
    ),
    Case("PATCH", "/sites/{a.site}", ADMIN, body=lambda a, b: {"address": "武昌区中北路"}),
    Case("PATCH", "/sites/{b.site}", ADMIN, tenant="B", body=lambda a, b: {"address": "南山"}),
    Case(
        "POST",
        "/works",
        ADMIN,
        201,
        body=lambda a, b: {
            "site_id": a.site,
            "code": "TC2",
            "name": "2号塔吊",
            "hazard_kind": "tower_crane",
            "params": {"rated_load_t": 10, "rated_moment_tm": 200},
        },
    ),
    Case("PATCH", "/works/{a.work}", ADMIN, body=lambda a, b: {"params": {"rated_load_t": 9}}),
    Case(
        "POST",
        "/devices",
        ADMIN,
        201,
        body=lambda a, b: {"work_id": a.work, "code": "TC1-W", "metrics": ["wind_speed_ms"]},
    ),
    Case("POST", "/devices/{a.device}/credentials", ADMIN),
    Case("POST", "/devices/{b.device}/credentials", ADMIN, tenant="B"),
    # threshold overrides: admins and regulators, in scope
    Case(
        "POST",
        "/thresholds",
        EDITORS,
        201,
        body=lambda a, b: {
            "work_id": a.work,
            "metric": "load_ratio",
            "rule": "load_ratio",
            "params": {"levels": {"red": 0.95}},
        },
    ),
    Case(
        "POST",
        "/thresholds",
        EDITORS,
        201,
        tenant="B",
        body=lambda a, b: {
            "work_id": b.work,
            "metric": "load_ratio",
            "rule": "load_ratio",
            "params": {"levels": {"red": 0.95}},
        },
    ),
    Case("PATCH", "/thresholds/{a.threshold}", EDITORS, body=lambda a, b: {"source": "设计"}),
    Case(
        "PATCH",
        "/thresholds/{b.threshold}",
        EDITORS,
        tenant="B",
        body=lambda a, b: {"source": "设计"},
    ),
    # alerts
    Case("POST", "/alerts/{a.alert}/acknowledge", READERS, body=_note),
    Case("POST", "/alerts/{b.alert}/acknowledge", READERS, tenant="B", body=_note),
    # hazards: register and every lifecycle action, in scope and across tenants
    Case(
        "POST",
        "/hazards",
        READERS,
        201,
        body=lambda a, b: {"site_id": a.site, "title": "临边防护缺失", "level": "general"},
    ),
    Case(
        "POST",
        "/hazards",
        READERS,
        201,
        tenant="B",
        body=lambda a, b: {"site_id": b.site, "title": "临边防护缺失", "level": "general"},
    ),
    Case("POST", "/hazards/{a.hazard_registered}/assign", SUPERVISORS, body=_assign),
    Case("POST", "/hazards/{b.hazard_registered}/assign", SUPERVISORS, tenant="B", body=_assign),
    Case("POST", "/hazards/{a.hazard_assigned}/rectify", RECTIFIERS, body=_note),
    Case("POST", "/hazards/{b.hazard_assigned}/rectify", RECTIFIERS, tenant="B", body=_note),
    Case("POST", "/hazards/{a.hazard_rectified}/verify", SUPERVISORS, body=_note),
    Case("POST", "/hazards/{b.hazard_rectified}/verify", SUPERVISORS, tenant="B", body=_note),
    Case("POST", "/hazards/{a.hazard_rectified2}/reject", SUPERVISORS, body=_note),
    Case("POST", "/hazards/{a.hazard_verified}/close", SUPERVISORS, body=_note),
    Case("POST", "/hazards/{b.hazard_verified}/close", SUPERVISORS, tenant="B", body=_note),
    Case("POST", "/hazards/{a.hazard_registered}/plan", SUPERVISORS, body=_assign),
    Case("POST", "/hazards/{b.hazard_registered}/plan", SUPERVISORS, tenant="B", body=_assign),
    Case("POST", "/hazards/{a.hazard_assigned}/supervise", EDITORS, body=_supervise),
    Case("POST", "/hazards/{b.hazard_assigned}/supervise", EDITORS, tenant="B", body=_supervise),
    # investigation: plans, records, a failed item's hazard
    Case(
        "POST",
        "/inspection-plans",
        READERS,
        201,
        body=lambda a, b: _plan(a.work, a.inspector_user),
    ),
    Case(
        "POST",
        "/inspection-plans",
        READERS,
        201,
        tenant="B",
        body=lambda a, b: _plan(b.work, b.inspector_user),
    ),
    # signed links in notifications: the link is the authority, whoever holds it (no token);
    # expired 403, tampered 404 (api/routes/links.py)
    Case("GET", "/links/{x.link_alert}", EVERYONE),
    Case("GET", "/links/{x.link_hazard}", EVERYONE),
    Case("GET", "/links/{x.link_expired}", EVERYONE, 403),
    Case("GET", "/links/{x.link_forged}", EVERYONE, 404),
    Case("POST", "/links/{x.link_alert}/acknowledge", EVERYONE, body=_note),
    Case("POST", "/links/{x.link_hazard}/acknowledge", EVERYONE, 409, body=_note),
    Case("POST", "/links/{x.link_expired}/acknowledge", EVERYONE, 403, body=_note),
    Case("POST", "/links/{x.link_forged}/acknowledge", EVERYONE, 404, body=_note),
    Case("PATCH", "/inspection-plans/{a.plan}", READERS, body=lambda a, b: {"frequency_h": 8}),
    Case(
        "PATCH",
        "/inspection-plans/{b.plan}",
        READERS,
        tenant="B",
        body=lambda a, b: {"frequency_h": 8},
    ),
    Case("POST", "/inspection-plans/{a.plan}/records", READERS, 201, body=_record),
    Case("POST", "/inspection-plans/{b.plan}/records", READERS, 201, tenant="B", body=_record),
    Case("POST", "/inspections/{a.inspection}/hazards", READERS, 201, body=_failed_item),
    Case(
        "POST", "/inspections/{b.inspection}/hazards", READERS, 201, tenant="B", body=_failed_item
    ),
    # evidence: the file itself is the body
    Case("POST", "/hazards/{a.hazard_registered}/evidence", READERS, 201, body=_photo),
    Case("POST", "/hazards/{b.hazard_registered}/evidence", READERS, 201, tenant="B", body=_photo),
    Case("POST", "/rectifications/{a.rectification_assigned}/evidence", READERS, 201, body=_photo),
    Case(
        "POST",
        "/rectifications/{b.rectification_assigned}/evidence",
        READERS,
        201,
        tenant="B",
        body=_photo,
    ),
    Case("POST", "/inspections/{a.inspection}/evidence", READERS, 201, body=_photo),
    Case("POST", "/inspections/{b.inspection}/evidence", READERS, 201, tenant="B", body=_photo),
    # admin-only resources
    Case(
        "POST",
        "/webhooks",
        ADMIN,
        201,
        body=lambda a, b: {"name": "值班群", "kind": "wecom", "url": "https://example.com/hook"},
    ),
    Case("PATCH", "/webhooks/{x.webhook}", ADMIN, body=lambda a, b: {"min_grade": 3}),
    Case("POST", "/dead-letters/replay", ADMIN, body=lambda a, b: {}),
    Case(
        "POST",
        "/users",
        ADMIN,
        201,
        body=lambda a, b: {"name": "王工", "role": "inspector", "region": "4201", "unit": "武汉站"},
    ),
    Case("PATCH", "/users/{a.user}", ADMIN, body=lambda a, b: {"unit": "武汉市安监站"}),
    Case("PATCH", "/users/{b.user}", ADMIN, tenant="B", body=lambda a, b: {"unit": "深圳站"}),
    Case("POST", "/users/{a.user}/tokens", ADMIN, 201, body=lambda a, b: {"name": "手机"}),
    Case(
        "POST",
        "/tokens",
        ADMIN,
        201,
        body=lambda a, b: {"name": "武汉站", "role": "inspector", "region": "4201"},
    ),
    # deletions last
    Case("DELETE", "/thresholds/{a.threshold}", EDITORS, 204),
    Case("DELETE", "/thresholds/{b.threshold}", EDITORS, 204, tenant="B"),
    Case("DELETE", "/webhooks/{x.webhook}", ADMIN, 204),
    Case("DELETE", "/tokens/{x.spare_token}", ADMIN, 204),
]


def expected(case: Case, role: str) -> int:
    """The status `role` must get for `case`."""
    if case.allowed == EVERYONE:
        return case.status
    if role == "anonymous":
        return 401
    if role not in case.allowed:
        return 403
    if case.tenant == "B" and role != "admin":
        return 404
    return case.status


def _shape(path: str) -> str:
    """A route template with every id (placeholder or literal code) as `{}`."""
    return "/".join(
        "{}" if part.startswith("{") or part.isdigit() else part for part in path.split("/")
    )


def test_every_route_is_in_the_table(world: World) -> None:
    spec = httpx.get(f"{world.base}/openapi.json").json()
    routes = {(m.upper(), _shape(path)) for path, item in spec["paths"].items() for m in item}
    covered = {(case.method, _shape(case.path)) for case in CASES}
    assert not routes - covered, f"routes without a row in the table: {sorted(routes - covered)}"
    assert not covered - routes, f"rows for no route: {sorted(covered - routes)}"


@pytest.mark.parametrize("role", ROLES)
def test_role_route_status_table(world: World, role: str) -> None:
    a = SimpleNamespace(**world.ids["A"])
    b = SimpleNamespace(**world.ids["B"])
    x = SimpleNamespace(**world.extra)
    token = world.tokens[role]
    headers = bearer(token) if token else {}
    mismatches = []
    with httpx.Client(base_url=world.base, headers=headers, timeout=10) as http:
        for case in CASES:
            path = case.path.format(a=a, b=b, x=x)
            body = case.body(a, b) if case.body else None
            if isinstance(body, bytes):
                response = http.request(
                    case.method,
                    path,
                    content=body,
                    headers={"content-type": "image/jpeg"},
                    params=case.query,
                )
            else:
                response = http.request(case.method, path, json=body, params=case.query)
            want = expected(case, role)
            if response.status_code != want:
                mismatches.append(
                    f"{case.method} {path} ({case.path}): got {response.status_code}, "
                    f"want {want}: {response.text[:200]}"
                )
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["status"] == response.status_code
    assert not mismatches, f"{role}:\n" + "\n".join(mismatches)
