"""Statistics of the hazard loop over a period, per site or division: what the monthly circular
(通报) and the annual assessment report. Plain values out, for the API and a later report.

For a period `[start, end)` and each group (a site, or a county, city or province):

- hazards `opened` (found in the period), `closed` (closed out in it), `overdue` (marked overdue
  by the sweep in it), `closure_rate` (of those opened, the share closed out by `end`; None
  without any opened), `mean_close_h` and `p90_close_h` (hours from finding to close-out of
  those closed in the period; None without any), in all and by hazard kind and by level;
- alerts opened in the period by grade and by hazard kind;
- missed inspections (windows ending in the period without a record).

Every count is within a scope (the API's caller; everything from a report run by an admin).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, LiteralString

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from hazmon.vocabulary import Grade
from registry.lists import EVERYTHING, Scope

GroupBy = Literal["site", "county", "city", "province"]
_DIGITS: Mapping[str, int] = {"county": 6, "city": 4, "province": 2}


@dataclass(frozen=True, slots=True)
class HazardTally:
    """Hazard counts and times of one group (or one kind or level within it)."""

    opened: int = 0
    closed: int = 0
    overdue: int = 0
    closure_rate: float | None = None
    mean_close_h: float | None = None
    p90_close_h: float | None = None


@dataclass(frozen=True, slots=True)
class GroupStatistics:
    """One site's or division's figures for the period."""

    key: str
    """The site's code, or the division's prefix ('4201'); '' for the total."""
    name: str
    hazards: HazardTally = field(default_factory=HazardTally)
    hazards_by_kind: dict[str, HazardTally] = field(default_factory=dict)
    hazards_by_level: dict[str, HazardTally] = field(default_factory=dict)
    alerts_by_grade: dict[str, int] = field(default_factory=dict)
    alerts_by_kind: dict[str, int] = field(default_factory=dict)
    missed_inspections: int = 0


@dataclass(frozen=True, slots=True)
class PeriodStatistics:
    """The figures of every group with activity in the period, and their total."""

    start: datetime
    end: datetime
    by: GroupBy
    region: str
    groups: list[GroupStatistics]
    total: GroupStatistics


def _key(by: GroupBy) -> tuple[LiteralString, LiteralString]:
    """The group key's SQL over `sites s`, and its name's."""
    if by == "site":
        return "s.code", "s.name"
    digits = {"county": "6", "city": "4", "province": "2"}[by]
    key: LiteralString = "left(s.region_code, " + digits + ")"
    return key, "(SELECT r.name FROM regions r WHERE r.code = rpad(" + key + ", 6, '0'))"


_HAZARDS: LiteralString = """
WITH x AS (
    SELECT {key} AS key, {name} AS name, coalesce(w.hazard_kind, '') AS kind, h.level,
           (h.found_at >= %(start)s AND h.found_at < %(end)s) AS opened,
           (h.closed_at >= %(start)s AND h.closed_at < %(end)s) AS closed,
           (h.found_at >= %(start)s AND h.found_at < %(end)s AND h.closed_at < %(end)s)
               AS opened_closed,
           extract(epoch FROM h.closed_at - h.found_at) / 3600.0 AS close_h,
           EXISTS (SELECT 1 FROM hazard_events e WHERE e.hazard_id = h.id
                   AND e.action = 'overdue' AND e.at >= %(start)s AND e.at < %(end)s) AS overdue
    FROM hazards h JOIN sites s ON s.id = h.site_id LEFT JOIN works w ON w.id = h.work_id
    WHERE {where}
)
SELECT key, max(name) AS name, kind, level, GROUPING(key) AS no_key, GROUPING(kind) AS no_kind,
       GROUPING(level) AS no_level,
       count(*) FILTER (WHERE opened) AS opened,
       count(*) FILTER (WHERE closed) AS closed,
       count(*) FILTER (WHERE overdue) AS overdue,
       count(*) FILTER (WHERE opened_closed) AS opened_closed,
       avg(close_h) FILTER (WHERE closed) AS mean_close_h,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY close_h) FILTER (WHERE closed) AS p90_close_h
FROM x
WHERE opened OR closed OR overdue
GROUP BY GROUPING SETS ((key), (key, kind), (key, level), (), (kind), (level))"""
_ALERTS: LiteralString = """
SELECT {key} AS key, max({name}) AS name, a.grade, w.hazard_kind AS kind,
       GROUPING({key}) AS no_key, GROUPING(a.grade) AS no_grade, count(*) AS n
FROM alerts a JOIN series se ON se.id = a.series_id JOIN devices d ON d.id = se.device_id
JOIN works w ON w.id = d.work_id JOIN sites s ON s.id = d.site_id
WHERE a.opened_at >= %(start)s AND a.opened_at < %(end)s AND {where}
GROUP BY GROUPING SETS (({key}, a.grade), ({key}, w.hazard_kind), (a.grade), (w.hazard_kind))"""
_MISSED: LiteralString = """
SELECT {key} AS key, max({name}) AS name, GROUPING({key}) AS no_key, count(*) AS n
FROM inspection_events e JOIN inspection_plans p ON p.id = e.plan_id
JOIN works w ON w.id = p.work_id JOIN sites s ON s.id = w.site_id
WHERE e.action = 'inspection_missed' AND e.window_end >= %(start)s AND e.window_end < %(end)s
  AND {where}
GROUP BY GROUPING SETS (({key}), ())"""


def _tally(row: Mapping[str, Any]) -> HazardTally:
    opened = int(row["opened"])
    return HazardTally(
        opened=opened,
        closed=int(row["closed"]),
        overdue=int(row["overdue"]),
        closure_rate=round(int(row["opened_closed"]) / opened, 4) if opened else None,
        mean_close_h=round(float(row["mean_close_h"]), 2)
        if row["mean_close_h"] is not None
        else None,
        p90_close_h=round(float(row["p90_close_h"]), 2) if row["p90_close_h"] is not None else None,
    )


async def period_statistics(
    conn: AsyncConnection[Any],
    *,
    start: datetime,
    end: datetime,
    by: GroupBy = "site",
    region: str = "",
    scope: Scope = EVERYTHING,
) -> PeriodStatistics:
    """The loop's figures for `[start, end)`, one group per site or division with activity.

    Args:
        conn: any connection (read only).
        start / end: the period, aware times.
        by: group per site, county, city or province.
        region: only sites whose region code starts with this prefix ('' for all).
        scope: the caller's scope on `sites s`.
    """
    if end <= start:
        raise ValueError("the period's end must be after its start")
    key, name = _key(by)
    where = sql.SQL("({}) AND s.region_code LIKE %(region)s || '%%'").format(sql.SQL(scope[0]))
    params = {**scope[1], "start": start, "end": end, "region": region}

    def query(text: LiteralString) -> sql.Composed:
        return sql.SQL(text).format(key=sql.SQL(key), name=sql.SQL(name), where=where)

    groups: dict[str, dict[str, Any]] = {}

    def group(k: str | None, n: str | None) -> dict[str, Any]:
        entry = groups.setdefault(
            k or "",
            {"name": n or "", "by_kind": {}, "by_level": {}, "grades": {}, "kinds": {}},
        )
        if n and not entry["name"]:
            entry["name"] = n
        return entry

    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query(_HAZARDS), params)
        for row in await cur.fetchall():
            g = group(None if row["no_key"] else row["key"], row["name"])
            if not row["no_kind"]:
                g["by_kind"][row["kind"]] = _tally(row)
            elif not row["no_level"]:
                g["by_level"][row["level"]] = _tally(row)
            else:
                g["tally"] = _tally(row)
        await cur.execute(query(_ALERTS), params)
        for row in await cur.fetchall():
            g = group(None if row["no_key"] else row["key"], row["name"])
            if not row["no_grade"]:
                g["grades"][Grade(int(row["grade"])).code] = int(row["n"])
            else:
                g["kinds"][row["kind"]] = int(row["n"])
        await cur.execute(query(_MISSED), params)
        for row in await cur.fetchall():
            group(None if row["no_key"] else row["key"], row["name"])["missed"] = int(row["n"])

    def build(k: str, g: Mapping[str, Any]) -> GroupStatistics:
        return GroupStatistics(
            key=k,
            name=g["name"] if k else "合计 / total",
            hazards=g.get("tally", HazardTally()),
            hazards_by_kind=dict(sorted(g["by_kind"].items())),
            hazards_by_level=dict(sorted(g["by_level"].items())),
            alerts_by_grade=dict(sorted(g["grades"].items(), key=lambda kv: -Grade[kv[0].upper()])),
            alerts_by_kind=dict(sorted(g["kinds"].items())),
            missed_inspections=g.get("missed", 0),
        )

    total = build("", group(None, None))
    groups.pop("")
    return PeriodStatistics(
        start=start,
        end=end,
        by=by,
        region=region,
        groups=[build(k, g) for k, g in sorted(groups.items())],
        total=total,
    )
