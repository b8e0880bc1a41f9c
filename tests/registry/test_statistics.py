"""Period statistics of the hazard loop (registry/statistics.py) on a real database: opened,
closed, overdue, closure rate, mean and 90th-percentile time to close by kind and level, alerts by
grade and kind, missed inspections; per site and per division; within a scope."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from registry.lists import EVERYTHING, Scope
from registry.statistics import PeriodStatistics, period_statistics
from tests.support.inventories import crane_site, load, pit_site

MONTH = datetime(2026, 11, 1, tzinfo=UTC)
NEXT = datetime(2026, 12, 1, tzinfo=UTC)


def _stats(
    db_url: str, by: Any = "site", scope: Scope = EVERYTHING, region: str = ""
) -> PeriodStatistics:
    async def run() -> PeriodStatistics:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            return await period_statistics(
                conn,
                start=MONTH,
                end=NEXT,
                by=by,
                region=region,
                scope=scope,
            )

    return asyncio.run(run())


def _fill(db_url: str, tmp_path: Path) -> None:
    load(db_url, tmp_path, crane_site("C1", region="420106"), pit_site("P1"),
         crane_site("G1", region="440305"))  # fmt: skip
    with psycopg.connect(db_url) as conn:
        sites: dict[str, int] = dict(conn.execute("SELECT code, id FROM sites").fetchall())
        works: dict[int, int] = dict(conn.execute("SELECT site_id, id FROM works").fetchall())

        def hazard(site: str, level: str, found: datetime, closed: datetime | None) -> int:
            row = conn.execute(
                """INSERT INTO hazards (site_id, work_id, title, level, state, found_by, found_at,
                                        closed_at)
                   VALUES (%s, %s, 'h', %s, %s, 'x', %s, %s) RETURNING id""",
                (sites[site], works[sites[site]], level, "closed" if closed else "assigned",
                 found, closed),
            ).fetchone()  # fmt: skip
            assert row is not None
            return int(row[0])

        day = timedelta(days=1)
        # crane C1: three found in November, closed after 2, 4 and 10 days (one in December)
        hazard("C1", "general", MONTH + day, MONTH + 3 * day)
        hazard("C1", "major", MONTH + 2 * day, MONTH + 6 * day)
        late = hazard("C1", "major", MONTH + 25 * day, NEXT + 5 * day)
        # found in October, closed in November after 30 days: closed, not opened, in November
        hazard("C1", "general", MONTH - 20 * day, MONTH + 10 * day)
        # pit P1: one found, open, marked overdue in November
        pit = hazard("P1", "general", MONTH + 5 * day, None)
        conn.execute(
            "INSERT INTO hazard_events (hazard_id, action, actor, data, at) VALUES"
            ' (%s, \'overdue\', \'s\', \'{"kind": "rectification", "due": "a"}\', %s),'
            ' (%s, \'overdue\', \'s\', \'{"kind": "rectification", "due": "b"}\', %s)',
            (pit, MONTH + 9 * day, late, NEXT + day),
        )
        # Guangdong G1: one opened
        hazard("G1", "general", MONTH + 3 * day, None)
        # alerts: two red and one yellow on C1 in November, one in October
        series: dict[str, int] = dict(
            conn.execute(
                "SELECT s.code, min(se.id) FROM series se JOIN devices d ON d.id = se.device_id"
                " JOIN sites s ON s.id = d.site_id GROUP BY s.code"
            ).fetchall()
        )
        for code, rule, grade, at in (
            ("C1", "a", 4, MONTH + day), ("C1", "b", 4, MONTH + 2 * day),
            ("C1", "c", 2, MONTH + 3 * day), ("C1", "d", 4, MONTH - day),
            ("P1", "e", 3, MONTH + 4 * day),
        ):  # fmt: skip
            conn.execute(
                """INSERT INTO alerts (series_id, rule, grade, state, opened_at, updated_at,
                                       message_zh, message_en)
                   VALUES (%s, %s, %s, 'resolved', %s, %s, 'm', 'm')""",
                (series[code], rule, grade, at, at),
            )
        user = conn.execute("INSERT INTO users (name, role) VALUES ('x', 'admin') RETURNING id")
        (user_id,) = user.fetchone() or (0,)
        plan = conn.execute(
            """INSERT INTO inspection_plans (work_id, name, frequency_h, inspector_user, items,
                                             starts_at, created_by)
               VALUES (%s, 'p', 24, %s, '[{}]', %s, 'x') RETURNING id""",
            (works[sites["P1"]], user_id, MONTH - 5 * day),
        ).fetchone()
        assert plan is not None
        for n in (-2, 3, 4):  # two missed rounds end in November
            conn.execute(
                """INSERT INTO inspection_events (plan_id, action, window_start, window_end)
                   VALUES (%s, 'inspection_missed', %s, %s)""",
                (plan[0], MONTH + n * day - day, MONTH + n * day),
            )


def _group(stats: PeriodStatistics, key: str) -> Any:
    (group,) = [g for g in stats.groups if g.key == key]
    return group


def test_per_site_figures_for_the_month(db_url: str, tmp_path: Path) -> None:
    _fill(db_url, tmp_path)
    stats = _stats(db_url)
    assert [g.key for g in stats.groups] == ["C1", "G1", "P1"]
    crane = _group(stats, "C1")
    assert (crane.hazards.opened, crane.hazards.closed, crane.hazards.overdue) == (3, 3, 0)
    # of the three opened, two were closed by the month's end
    assert crane.hazards.closure_rate == round(2 / 3, 4)
    # closed in November after 2, 4 and 30 days
    assert crane.hazards.mean_close_h == round((2 + 4 + 30) * 24 / 3, 2)
    assert crane.hazards.p90_close_h == round((4 + 0.8 * 26) * 24, 2)  # linear interpolation
    assert crane.hazards_by_level["major"].opened == 2
    assert crane.hazards_by_level["major"].closed == 1
    assert crane.hazards_by_kind["tower_crane"].opened == 3
    assert crane.alerts_by_grade == {"red": 2, "yellow": 1}
    assert crane.alerts_by_kind == {"tower_crane": 3}
    pit = _group(stats, "P1")
    assert (pit.hazards.opened, pit.hazards.closed, pit.hazards.overdue) == (1, 0, 1)
    assert pit.hazards.closure_rate == 0.0
    assert pit.hazards.mean_close_h is None
    assert pit.missed_inspections == 2
    assert pit.name == "测试基坑工地 P1"
    total = stats.total
    assert (total.hazards.opened, total.hazards.closed, total.hazards.overdue) == (5, 3, 1)
    assert total.alerts_by_grade == {"red": 2, "orange": 1, "yellow": 1}
    assert total.missed_inspections == 2
    assert set(total.hazards_by_kind) == {"tower_crane", "excavation"}


def test_per_division_and_within_a_scope(db_url: str, tmp_path: Path) -> None:
    _fill(db_url, tmp_path)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO regions VALUES ('420000', '湖北省', NULL), ('440000', '广东省', NULL)"
        )
    provinces = _stats(db_url, by="province")
    assert [(g.key, g.name, g.hazards.opened) for g in provinces.groups] == [
        ("42", "湖北省", 4),
        ("44", "广东省", 1),
    ]
    counties = _stats(db_url, by="county", region="42")
    assert [g.key for g in counties.groups] == ["420106"]
    hubei: Scope = ("s.region_code LIKE %(scope_region)s", {"scope_region": "42%"})
    scoped = _stats(db_url, scope=hubei)
    assert {g.key for g in scoped.groups} == {"C1", "P1"}
    assert scoped.total.hazards.opened == 4
