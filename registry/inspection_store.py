"""Every write of investigation (排查): inspection plans, records, and missed inspections.

The rules are `registry.inspections` (pure); this module writes on the caller's async
connection, in the caller's transaction. `sweep_missed` is the sweep's part for inspections: each
window of an active plan's frequency that ended without a record becomes one
`inspection_events` row (`inspection_missed`), written once (unique on plan, action and window).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from registry.inspections import (
    ChecklistItem,
    InspectionError,
    ItemResult,
    check_results,
    missed_windows,
)
from registry.lifecycle import Actor

_USER_MAY_INSPECT = """
SELECT EXISTS (
    SELECT 1 FROM users u, works w JOIN sites s ON s.id = w.site_id
    WHERE u.id = %(user_id)s AND w.id = %(work_id)s AND u.disabled_at IS NULL
      AND u.role <> 'gateway'
      AND (u.role = 'admin'
           OR (u.role IN ('regulator', 'inspector') AND s.region_code LIKE u.region_code || '%%')
           OR (u.role = 'enterprise'
               AND (u.site_id = s.id OR (u.site_id IS NULL AND u.enterprise = s.enterprise))))
) AS ok"""
"""Whether a user may be a work's responsible inspector: enabled, and the work within their scope."""
_PLAN_COLUMNS = frozenset({"name", "frequency_h", "inspector_user", "active"})


async def _check_inspector(conn: AsyncConnection[Any], user_id: int, work_id: int) -> None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_USER_MAY_INSPECT, {"user_id": user_id, "work_id": work_id})
        row = await cur.fetchone()
    if not (row and row["ok"]):
        raise InspectionError(
            f"user {user_id} is not an enabled user whose scope holds work {work_id}",
            "inspector_user_id",
        )


async def create_plan(
    conn: AsyncConnection[Any],
    *,
    work_id: int,
    name: str,
    frequency_h: int,
    inspector_user: int,
    items: Sequence[ChecklistItem],
    starts_at: datetime,
    actor: Actor,
) -> int:
    """Store an inspection plan of `work_id`; return its id.

    Raises:
        InspectionError: the inspector is not an enabled user whose scope holds the work.
    """
    await _check_inspector(conn, inspector_user, work_id)
    cur = await conn.execute(
        """INSERT INTO inspection_plans (work_id, name, frequency_h, inspector_user, items,
                                         starts_at, created_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (work_id, name, frequency_h, inspector_user, Jsonb(list(items)), starts_at, actor.label),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["id"] if isinstance(row, dict) else row[0])


async def update_plan(
    conn: AsyncConnection[Any], plan_id: int, work_id: int, fields: Mapping[str, Any]
) -> None:
    """Change a plan's name, frequency, responsible inspector or whether it is active.

    A plan made active again is checked for missed rounds from now on, not for the time it
    was inactive.
    """
    unknown = set(fields) - _PLAN_COLUMNS
    if unknown:
        raise ValueError(f"not a plan column: {sorted(unknown)}")
    if not fields:
        return
    if "inspector_user" in fields:
        await _check_inspector(conn, int(fields["inspector_user"]), work_id)
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in fields
    )
    # checked_until is read before the SET applies: a plan made active again starts afresh
    await conn.execute(
        sql.SQL(
            "UPDATE inspection_plans SET {}, checked_until = CASE WHEN NOT active"
            " AND %(resume)s THEN now() ELSE checked_until END, updated_at = now()"
            " WHERE id = %(id)s"
        ).format(assignments),
        {**fields, "id": plan_id, "resume": bool(fields.get("active"))},
    )


async def record_inspection(
    conn: AsyncConnection[Any],
    *,
    plan: Mapping[str, Any],
    results: Sequence[ItemResult],
    performed_at: datetime,
    notes: str,
    actor: Actor,
) -> int:
    """Store an inspection record of `plan` (a row with `id`, `work_id`, `items`); every item
    answered once (`check_results`). Returns its id."""
    ordered = check_results(plan["items"], results)
    failed = sum(1 for r in ordered if r["result"] == "fail")
    cur = await conn.execute(
        """INSERT INTO inspection_records (plan_id, work_id, performed_by, performed_by_user,
                                           performed_at, results, failed, notes)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (
            plan["id"],
            plan["work_id"],
            actor.label,
            actor.user_id,
            performed_at,
            Jsonb(list(ordered)),
            failed,
            notes,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row["id"] if isinstance(row, dict) else row[0])


_ACTIVE_PLANS = """
SELECT p.id, p.work_id, w.site_id, s.region_code, p.frequency_h, p.inspector_user, p.starts_at,
       p.checked_until, p.name
FROM inspection_plans p JOIN works w ON w.id = p.work_id JOIN sites s ON s.id = w.site_id
WHERE p.active AND p.starts_at < %(now)s
ORDER BY p.id"""
_PERFORMED = """
SELECT performed_at FROM inspection_records
WHERE plan_id = %(plan_id)s AND performed_at >= %(since)s AND performed_at < %(until)s"""
_INSERT_MISSED = """
INSERT INTO inspection_events (plan_id, action, window_start, window_end, data, at)
VALUES (%(plan_id)s, 'inspection_missed', %(start)s, %(end)s, %(data)s, %(at)s)
ON CONFLICT DO NOTHING"""


async def sweep_missed(conn: AsyncConnection[Any], *, now: datetime) -> int:
    """Write an `inspection_missed` event for every window of an active plan that ended without
    a record (`missed_windows`); return how many were written. Idempotent."""
    written = 0
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_ACTIVE_PLANS, {"now": now})
        plans = await cur.fetchall()
    for plan in plans:
        frequency = timedelta(hours=plan["frequency_h"])
        since = plan["checked_until"] or plan["starts_at"]
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                _PERFORMED, {"plan_id": plan["id"], "since": since - frequency, "until": now}
            )
            performed = [r["performed_at"] for r in await cur.fetchall()]
        missed, checked_until = missed_windows(
            starts_at=plan["starts_at"],
            frequency=frequency,
            checked_until=plan["checked_until"],
            performed=performed,
            now=now,
        )
        for window in missed:
            data = {
                "plan_id": plan["id"],
                "plan": plan["name"],
                "work_id": plan["work_id"],
                "site_id": plan["site_id"],
                "region_code": plan["region_code"],
                "inspector_user": plan["inspector_user"],
                "frequency_h": plan["frequency_h"],
                "window_start": window.start.isoformat(),
                "window_end": window.end.isoformat(),
            }
            result = await conn.execute(
                _INSERT_MISSED,
                {
                    "plan_id": plan["id"],
                    "start": window.start,
                    "end": window.end,
                    "data": Jsonb(data),
                    "at": now,
                },
            )
            written += result.rowcount
        if checked_until is not None and checked_until != plan["checked_until"]:
            await conn.execute(
                "UPDATE inspection_plans SET checked_until = %s WHERE id = %s",
                (checked_until, plan["id"]),
            )
    return written
