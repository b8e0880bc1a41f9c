"""The deadline sweep on a real database with a controllable clock: reminders, overdue marks,
escalations and missed inspections are each written once, whatever how often it runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from registry.inspections import Window, missed_windows, plan_items
from registry.sweep import SweepResult, run_sweep
from tests.support.inventories import crane_site, load

DUE = datetime(2026, 12, 10, 1, tzinfo=UTC)  # 09:00 in Wuhan


def _sweep(db_url: str, now: datetime) -> SweepResult:
    async def once() -> SweepResult:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            return await run_sweep(conn, now=now)

    return asyncio.run(once())


def _counts(result: SweepResult) -> tuple[int, int, int, int]:
    return result.remind, result.overdue, result.escalate, result.inspection_missed


def _world(db_url: str, tmp_path: Path) -> dict[str, int]:
    load(db_url, tmp_path, crane_site("S1", region="420106"))
    with psycopg.connect(db_url) as conn:

        def one(query: str, *params: Any) -> int:
            row = conn.execute(query, params).fetchone()
            assert row is not None
            return int(row[0])

        site = one("SELECT id FROM sites")
        work = one("SELECT id FROM works")
        ids = {
            "assigned": one(
                """INSERT INTO hazards (site_id, work_id, title, level, state, found_by, found_at,
                                        responsible_unit, responsible_person, deadline)
                   VALUES (%s, %s, '附着松动', 'major', 'assigned', 'x', %s, 'u', 'p', %s)
                   RETURNING id""",
                site,
                work,
                DUE - timedelta(days=7),
                DUE,
            ),
            "rectified": one(
                """INSERT INTO hazards (site_id, work_id, title, level, state, found_by, found_at,
                                        deadline, verification_due, supervision_region,
                                        listed_supervision)
                   VALUES (%s, %s, '限位失效', 'major', 'rectified', 'x', %s, %s, %s, '4201', true)
                   RETURNING id""",
                site,
                work,
                DUE - timedelta(days=7),
                DUE - timedelta(days=5),
                DUE,
            ),
            "closed": one(
                """INSERT INTO hazards (site_id, title, level, state, found_by, found_at, deadline)
                   VALUES (%s, 'x', 'general', 'closed', 'x', %s, %s) RETURNING id""",
                site,
                DUE - timedelta(days=7),
                DUE - timedelta(days=1),
            ),
        }
        user = one("INSERT INTO users (name, role) VALUES ('巡查员', 'admin') RETURNING id")
        ids["plan"] = one(
            """INSERT INTO inspection_plans (work_id, name, frequency_h, inspector_user, items,
                                             starts_at, created_by)
               VALUES (%s, '日常巡查', 24, %s, %s, %s, 'test') RETURNING id""",
            work,
            user,
            Jsonb(plan_items("tower_crane")),
            DUE - timedelta(days=3),
        )
        # a record in the plan's second window only
        conn.execute(
            """INSERT INTO inspection_records (plan_id, work_id, performed_by, performed_at,
                                               results)
               VALUES (%s, %s, 'test', %s, '[]')""",
            (ids["plan"], work, DUE - timedelta(days=2) + timedelta(hours=3)),
        )
    return ids


def _events(db_url: str, hazard_id: int) -> list[tuple[str, dict[str, Any], str]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT action, data, actor FROM hazard_events WHERE hazard_id = %s ORDER BY id",
            (hazard_id,),
        ).fetchall()
    return [(a, d, actor) for a, d, actor in rows]


def test_each_reminder_overdue_mark_and_escalation_is_written_once(
    db_url: str, tmp_path: Path
) -> None:
    ids = _world(db_url, tmp_path)
    # (reminders, overdue, escalations, missed inspections) written by each sweep; the plan
    # started 3 days before DUE, daily, with a record in its second window only
    assert _counts(_sweep(db_url, DUE - timedelta(days=2))) == (0, 0, 0, 0)
    # a day ahead: both reminders; the first window ended (plus the grace hour) unrecorded
    assert _counts(_sweep(db_url, DUE - timedelta(hours=20))) == (2, 0, 0, 1)
    assert _counts(_sweep(db_url, DUE - timedelta(hours=20))) == (0, 0, 0, 0)  # twice: nothing
    assert _counts(_sweep(db_url, DUE - timedelta(hours=19))) == (0, 0, 0, 0)
    assert _counts(_sweep(db_url, DUE + timedelta(minutes=1))) == (0, 2, 0, 0)
    # three days late: the county hazard goes to the city, the one the city lists to the province
    assert _counts(_sweep(db_url, DUE + timedelta(days=3))) == (0, 0, 2, 3)
    assert _counts(_sweep(db_url, DUE + timedelta(days=3, seconds=30))) == (0, 0, 0, 0)
    assert _counts(_sweep(db_url, DUE + timedelta(days=6))) == (0, 0, 1, 3)
    assert _counts(_sweep(db_url, DUE + timedelta(days=6))) == (0, 0, 0, 0)

    due = DUE.isoformat()
    assigned = _events(db_url, ids["assigned"])
    assert [(a, d.get("to_region")) for a, d, _ in assigned] == [
        ("remind", None),
        ("overdue", None),
        ("escalate", "4201"),
        ("escalate", "42"),
    ]
    assert assigned[0][1] == {"due": due, "kind": "rectification"}
    assert assigned[1][1] == {"due": due, "kind": "rectification"}
    assert assigned[2][1] == {
        "due": due,
        "kind": "rectification",
        "to_region": "4201",
        "reason": f"rectification overdue since {due} by more than 3 days",
    }
    assert {actor for _, _, actor in assigned} == {"hazmon-sweep"}
    rectified = _events(db_url, ids["rectified"])
    assert [(a, d["kind"], d.get("to_region")) for a, d, _ in rectified] == [
        ("remind", "verification", None),
        ("overdue", "verification", None),
        ("escalate", "verification", "42"),
    ]
    assert _events(db_url, ids["closed"]) == []
    with psycopg.connect(db_url) as conn:
        missed = conn.execute(
            "SELECT window_start, data FROM inspection_events WHERE plan_id = %s ORDER BY 1",
            (ids["plan"],),
        ).fetchall()
    starts = [start for start, _ in missed]
    plan_start = DUE - timedelta(days=3)
    # windows 0, 2, ... missed; window 1 (the record's) not
    assert starts[:2] == [plan_start, plan_start + timedelta(days=2)]
    assert plan_start + timedelta(days=1) not in starts
    assert missed[0][1]["frequency_h"] == 24
    assert missed[0][1]["region_code"] == "420106"


def test_a_new_deadline_gets_its_own_reminder(db_url: str, tmp_path: Path) -> None:
    ids = _world(db_url, tmp_path)
    _sweep(db_url, DUE - timedelta(hours=20))
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE hazards SET deadline = %s WHERE id = %s",
            (DUE + timedelta(days=2), ids["assigned"]),
        )
    assert _sweep(db_url, DUE + timedelta(days=1, hours=10)).remind == 1
    reminders = [d for a, d, _ in _events(db_url, ids["assigned"]) if a == "remind"]
    assert [r["due"] for r in reminders] == [
        DUE.isoformat(),
        (DUE + timedelta(days=2)).isoformat(),
    ]


def test_the_cli_sweeps_once_and_twice_writes_nothing(db_url: str, tmp_path: Path) -> None:
    _world(db_url, tmp_path)

    def sweep() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "hazmon.cli", "registry", "sweep", "--now",
             (DUE + timedelta(hours=1)).isoformat()],
            env={"HAZMON_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "逾期 overdue 2" in sweep()
    again = sweep()
    assert (
        "提醒 reminders 0, 逾期 overdue 0, 升级 escalations 0, 漏检 missed inspections 0" in again
    )
    bad = subprocess.run(
        [sys.executable, "-m", "hazmon.cli", "registry", "sweep", "--now", "2026-12-10T09:00"],
        env={"HAZMON_DATABASE_URL": db_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert "time zone" in bad.stderr


def test_missed_windows_are_bounded_and_looked_at_once() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    missed, until = missed_windows(
        starts_at=start,
        frequency=day,
        checked_until=None,
        performed=[start + timedelta(hours=30)],
        now=start + 3 * day + timedelta(hours=2),
    )
    assert missed == [Window(start, start + day), Window(start + 2 * day, start + 3 * day)]
    assert until == start + 3 * day
    # within the grace hour the window that just ended is not yet looked at
    assert missed_windows(
        starts_at=start, frequency=day, checked_until=until, performed=[], now=start + 4 * day
    ) == ([], until)
    again, later = missed_windows(
        starts_at=start,
        frequency=day,
        checked_until=until,
        performed=[],
        now=start + 4 * day + timedelta(hours=2),
    )
    assert (again, later) == ([Window(start + 3 * day, start + 4 * day)], start + 4 * day)
    # a plan hourly for a year without a sweep: the latest windows only
    many, _ = missed_windows(
        starts_at=start,
        frequency=timedelta(hours=1),
        checked_until=None,
        performed=[],
        now=start + 365 * day,
        max_windows=10,
    )
    assert len(many) == 10
