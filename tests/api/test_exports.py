"""The two lists and the notice of listed supervision as files: an XLSX that openpyxl opens with
the Chinese headers and the values, a CSV that Excel opens (UTF-8 with a BOM), scoped, bounded,
and the same from the CLI."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import psycopg

from registry.lists import HAZARD_LIST, MAX_ROWS, RECTIFICATION_LIST, SUPERVISION_LIST
from tests.support.tokens import bearer
from tests.support.world import World, hazmon

HAZARD_HEADERS = [
    "隐患编号 / No.", "隐患名称 / Hazard", "工程 / Works", "位置 / Location", "来源 / Source",
    "等级 / Level", "发现时间 / Found", "整改措施 / Measures", "责任单位 / Responsible unit",
    "责任人 / Responsible person", "资金（元） / Funds (yuan)", "整改期限 / Deadline",
    "状态 / State", "验收人 / Verified by", "销号时间 / Closed",
    "是否挂牌督办 / Listed supervision",
]  # fmt: skip


def _client(world: World, role: str) -> httpx.Client:
    return httpx.Client(base_url=world.base, headers=bearer(world.tokens[role] or ""), timeout=30)


def _sheet(content: bytes) -> list[tuple[Any, ...]]:
    book = openpyxl.load_workbook(io.BytesIO(content))
    (sheet,) = book.worksheets
    return list(sheet.iter_rows(values_only=True))


def _complete_a_hazard(world: World) -> int:
    """Site A's registered hazard planned, assigned, supervised by the city, rectified, verified
    and closed; its id."""
    hazard = world.ids["A"]["hazard_registered"]
    url = f"/hazards/{hazard}"
    plan = {
        "measures": "更换力矩限制器", "responsible_unit": "甲建设", "responsible_person": "张工",
        "funds_yuan": 12000.5, "deadline": "2099-01-01T00:00:00+08:00",
        "emergency_plan": "停用塔吊",
    }  # fmt: skip
    with _client(world, "regulator") as regulator, _client(world, "enterprise") as enterprise:
        for http, action, body in (
            (regulator, "assign", plan),
            (regulator, "supervise", {"authority": "武汉市住建局", "level": "city",
                                      "due": "2098-06-01T00:00:00Z"}),
            (enterprise, "rectify", {}),
            (regulator, "verify", {}),
            (regulator, "close", {}),
        ):  # fmt: skip
            response = http.post(f"{url}/{action}", json=body)
            assert response.status_code == 200, response.text
    return hazard


def test_the_hazard_list_as_xlsx_has_its_headers_and_values(world: World) -> None:
    hazard = _complete_a_hazard(world)
    with _client(world, "enterprise") as enterprise:
        got = enterprise.get("/hazards/export", params={"format": "xlsx", "region": "42"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert "filename*=UTF-8''" in got.headers["content-disposition"]
    rows = _sheet(got.content)
    assert list(rows[0]) == HAZARD_HEADERS == [c.heading for c in HAZARD_LIST.columns]
    by_id = {row[0]: row for row in rows[1:]}
    # the enterprise sees site A's hazards only
    with psycopg.connect(world.db_url) as conn:
        mine = {
            r[0]
            for r in conn.execute(
                "SELECT id FROM hazards WHERE site_id = %s", (world.ids["A"]["site"],)
            )
        }
    assert set(by_id) == mine
    row = dict(zip(HAZARD_HEADERS, by_id[hazard], strict=True))
    assert row["隐患名称 / Hazard"] == "A registered"
    assert row["工程 / Works"] == "测试工地 A 1号塔吊"
    assert row["来源 / Source"] == "上报"
    assert row["等级 / Level"] == "重大事故隐患"
    assert row["整改措施 / Measures"] == "更换力矩限制器"
    assert row["资金（元） / Funds (yuan)"] == 12000.5
    assert row["状态 / State"] == "已销号"
    assert row["验收人 / Verified by"] == "test-regulator"
    assert row["是否挂牌督办 / Listed supervision"] == "是"
    deadline = row["整改期限 / Deadline"]
    assert (deadline.year, deadline.month, deadline.day, deadline.hour) == (2099, 1, 1, 0)  # UTC+8
    assert row["销号时间 / Closed"] is not None


def test_the_hazard_list_as_csv_opens_in_excel(world: World) -> None:
    with _client(world, "inspector") as inspector:
        got = inspector.get("/hazards/export", params={"format": "csv", "state": "assigned"})
    assert got.status_code == 200
    assert got.headers["content-type"] == "text/csv; charset=utf-8"
    assert got.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert rows[0] == HAZARD_HEADERS
    assert [(r[1], r[12]) for r in rows[1:]] == [("A assigned", "整改中")]
    assert "\r\n" in got.content.decode("utf-8-sig")


def test_the_rectification_list_and_the_notice(world: World) -> None:
    _complete_a_hazard(world)
    with _client(world, "admin") as admin:
        got = admin.get("/rectifications/export")
        assert got.status_code == 200, got.text
        rounds = _sheet(got.content)
        assert list(rounds[0]) == [c.heading for c in RECTIFICATION_LIST.columns]
        assert rounds[0][:2] == ("隐患编号 / No.", "隐患名称 / Hazard")
        by_title = {row[1]: row for row in rounds[1:]}
        assert by_title["A registered"][13] == "验收合格"
        assert by_title["A rectified"][13] == "待复查"
        assert by_title["B assigned"][13] == "整改中"
        # a second listed hazard, due sooner: the notice lists it first
        url = f"/hazards/{world.ids['B']['hazard_assigned']}/supervise"
        body = {"authority": "深圳市住建局", "level": "city", "due": "2097-01-01T00:00:00Z"}
        assert admin.post(url, json=body).status_code == 200
        listed = admin.get("/hazards/supervised").json()
        assert [h["title"] for h in listed["data"]] == ["B assigned", "A registered"]
        assert [
            h["title"]
            for h in admin.get("/hazards/supervised", params={"open_only": True}).json()["data"]
        ] == ["B assigned"]
        notice = _sheet(admin.get("/hazards/supervised/export").content)
        headers = [c.heading for c in SUPERVISION_LIST.columns]
        assert list(notice[0]) == headers
        assert [r[1] for r in notice[1:]] == ["B assigned", "A registered"]
        assert notice[1][headers.index("督办单位 / Supervising authority")] == "深圳市住建局"
        assert notice[1][headers.index("督办层级 / Level of listing")] == "市级"
    with _client(world, "regulator") as regulator:
        mine = regulator.get("/hazards/supervised/export", params={"format": "csv"}).content
    assert [r[1] for r in csv.reader(io.StringIO(mine.decode("utf-8-sig")))][1:] == ["A registered"]


def test_a_list_over_its_bound_is_refused_not_cut(world: World) -> None:
    with psycopg.connect(world.db_url) as conn:
        conn.execute(
            """INSERT INTO hazards (site_id, title, level, state, found_by, found_at)
               SELECT %s, 'bulk ' || n, 'general', 'registered', 'test', now()
               FROM generate_series(1, %s) n""",
            (world.ids["A"]["site"], MAX_ROWS),
        )
    with _client(world, "admin") as admin:
        refused = admin.get("/hazards/export", params={"format": "csv"})
        assert refused.status_code == 422
        assert "narrow" in refused.json()["detail"]
        assert str(MAX_ROWS + 10) in refused.json()["detail"]
        fits = admin.get("/hazards/export", params={"format": "csv", "region": "44"})
        assert fits.status_code == 200


def test_the_cli_exports_the_same_lists(world: World, tmp_path: Path) -> None:
    _complete_a_hazard(world)
    xlsx = tmp_path / "清单.xlsx"
    done = hazmon(
        world.db_url, "registry", "export", "hazards", "--out", str(xlsx), "--region", "420100"
    )
    assert done.returncode == 0, done.stderr
    rows = _sheet(xlsx.read_bytes())
    assert list(rows[0]) == HAZARD_HEADERS
    assert {r[1] for r in rows[1:]} == {
        f"A {s}" for s in ("registered", "assigned", "rectified", "rectified2", "verified")
    }
    out = tmp_path / "rounds.csv"
    done = hazmon(
        world.db_url, "registry", "export", "rectifications", "--out", str(out), "--site", "B"
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    again = hazmon(world.db_url, "registry", "export", "rectifications", "--out", str(out))
    assert again.returncode == 2
    assert "exists" in again.stderr
    notice = tmp_path / "notice.csv"
    assert (
        hazmon(world.db_url, "registry", "export", "supervision", "--out", str(notice)).returncode
        == 0
    )
    assert "A registered" in notice.read_text(encoding="utf-8-sig")


def test_a_typed_formula_or_control_character_stays_text(world: World) -> None:
    title = '=HYPERLINK("http://evil.example","点击")\x07'
    with _client(world, "enterprise") as enterprise:
        made = enterprise.post(
            "/hazards", json={"site_id": world.ids["A"]["site"], "title": title, "level": "general"}
        )
        assert made.status_code == 201, made.text
        xlsx = enterprise.get("/hazards/export")
        assert xlsx.status_code == 200, xlsx.text
        text = enterprise.get("/hazards/export", params={"format": "csv"}).content.decode(
            "utf-8-sig"
        )
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    cells = [row[1] for row in book.worksheets[0].iter_rows(min_row=2)]
    (cell,) = [c for c in cells if "HYPERLINK" in str(c.value)]
    assert cell.data_type == "s"
    assert cell.value == "'" + title[:-1] + "\ufffd"
    assert "'=HYPERLINK" in text
