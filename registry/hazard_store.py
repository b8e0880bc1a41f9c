"""Every write of the hazard registry: the loop's actions, the hazards of alerts, the deadline sweep.

The lifecycle (`registry.lifecycle`) decides; this module writes its `Change`s: the hazard row,
the current rectification round (`rectifications`) and the `hazard_events` line that records
each action, in the caller's transaction. The API uses the async `HazardStore`; the deadline
sweep (`sweep_deadlines`, run by `hazmon registry sweep`) writes its reminders, overdue marks and
escalations through it; ingest registers the hazards of its alerts with `register_alert_hazards`
inside the transaction that records the alert transitions, so that no orange or red alert is
ever committed without its entry in the closed loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, LiteralString

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hazmon.vocabulary import Grade, HazardSource
from registry.lifecycle import (
    DEFAULT_POLICY,
    ENGINE_ACTOR,
    Actor,
    Change,
    DeadlinePolicy,
    Deadlines,
    Hazard,
    RoundEffect,
    alert_hazard_change,
    deadline_changes,
    sweep_key,
)

_INSERT_HAZARD = """
INSERT INTO hazards (site_id, work_id, alert_id, title, description, level, state, basis,
                     found_by, found_at, source, location, inspection_id, inspection_item)
VALUES (%(site_id)s, %(work_id)s, %(alert_id)s, %(title)s, %(description)s, %(level)s,
        %(state)s, %(basis)s, %(found_by)s, %(found_at)s, %(source)s, %(location)s,
        %(inspection_id)s, %(inspection_item)s)
RETURNING id"""
_INSERT_EVENT = """
INSERT INTO hazard_events (hazard_id, action, actor, actor_user, note, data)
VALUES (%(hazard_id)s, %(action)s, %(actor)s, %(actor_user)s, %(note)s, %(data)s)"""
_UPDATABLE = frozenset(
    {
        "state",
        "level",
        "measures",
        "responsible_unit",
        "responsible_person",
        "funds_yuan",
        "deadline",
        "emergency_plan",
        "rectified_by",
        "rectified_by_user",
        "rectified_at",
        "verification_due",
        "verified_by",
        "verified_by_user",
        "verified_at",
        "closed_at",
        "listed_supervision",
        "supervising_authority",
        "supervision_level",
        "supervision_region",
        "supervision_due",
        "supervised_at",
    }
)
_PLAN_COLUMNS: LiteralString = (
    "measures, responsible_unit, responsible_person, funds_yuan, deadline, emergency_plan"
)
_OPEN_ROUND: LiteralString = f"""
INSERT INTO rectifications (hazard_id, round, {_PLAN_COLUMNS}, assigned_by, assigned_at)
SELECT h.id, coalesce((SELECT max(round) FROM rectifications WHERE hazard_id = h.id), 0) + 1,
       {_PLAN_COLUMNS}, %(actor)s, now()
FROM hazards h WHERE h.id = %(hazard_id)s"""
_ROUND_SQL: Mapping[RoundEffect, Sequence[LiteralString]] = {
    "open": (_OPEN_ROUND,),
    "update": (
        f"""UPDATE rectifications r SET ({_PLAN_COLUMNS}) =
               (SELECT {_PLAN_COLUMNS} FROM hazards h WHERE h.id = r.hazard_id)
            WHERE r.hazard_id = %(hazard_id)s AND r.outcome IS NULL""",
    ),
    "report": (
        """UPDATE rectifications r SET reported_by = h.rectified_by,
                  reported_by_user = h.rectified_by_user, reported_at = h.rectified_at,
                  verification_due = h.verification_due, report_note = %(note)s
           FROM hazards h
           WHERE h.id = r.hazard_id AND r.hazard_id = %(hazard_id)s AND r.outcome IS NULL""",
    ),
    "accept": (
        """UPDATE rectifications r SET outcome = 'accepted', verified_by = h.verified_by,
                  verified_by_user = h.verified_by_user, verified_at = h.verified_at,
                  verification_note = %(note)s
           FROM hazards h
           WHERE h.id = r.hazard_id AND r.hazard_id = %(hazard_id)s AND r.outcome IS NULL""",
    ),
    "reject": (
        """UPDATE rectifications SET outcome = 'rejected', verified_by = %(actor)s,
                  verified_by_user = %(actor_user)s, verified_at = now(),
                  verification_note = %(note)s
           WHERE hazard_id = %(hazard_id)s AND outcome IS NULL""",
        _OPEN_ROUND,
    ),
}
"""What each round effect writes, after the hazard row has its new columns."""


@dataclass(frozen=True, slots=True)
class NewHazard:
    """What is known of a hazard when it is registered."""

    site_id: int
    title: str
    found_by: str
    found_at: datetime
    work_id: int | None = None
    alert_id: int | None = None
    description: str = ""
    basis: str = ""
    location: str = ""
    inspection_id: int | None = None
    inspection_item: str | None = None
    found_by_user: int | None = None


def _hazard_row(new: NewHazard, change: Change) -> dict[str, Any]:
    source: HazardSource = change.fields.get("source", "report")
    return {
        "site_id": new.site_id,
        "work_id": new.work_id,
        "alert_id": new.alert_id,
        "title": new.title,
        "description": new.description,
        "level": change.fields["level"],
        "state": change.state,
        "basis": new.basis,
        "found_by": new.found_by,
        "found_at": new.found_at,
        "source": source,
        "location": new.location,
        "inspection_id": new.inspection_id,
        "inspection_item": new.inspection_item,
    }


def _event_row(
    hazard_id: int, change: Change, actor: str, note: str, actor_user: int | None = None
) -> dict[str, Any]:
    return {
        "hazard_id": hazard_id,
        "action": change.action,
        "actor": actor,
        "actor_user": actor_user,
        "note": note,
        "data": Jsonb(dict(change.data)),
    }


def _update_statement(fields: Mapping[str, Any]) -> sql.Composed:
    unknown = set(fields) - _UPDATABLE
    if unknown:
        raise ValueError(f"not a hazard column the loop sets: {sorted(unknown)}")
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in fields
    )
    return sql.SQL("UPDATE hazards SET {}, updated_at = now() WHERE id = %(id)s").format(
        assignments
    )


class HazardStore:
    """The hazard loop's writes on an async connection, in the caller's transaction."""

    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn

    async def register(self, new: NewHazard, change: Change, note: str = "") -> int:
        """Insert a hazard registered by `change` (`lifecycle.register`) and its event."""
        cur = await self._conn.execute(_INSERT_HAZARD, _hazard_row(new, change))
        row = await cur.fetchone()
        assert row is not None
        hazard_id = int(row["id"] if isinstance(row, dict) else row[0])
        await self._conn.execute(
            _INSERT_EVENT, _event_row(hazard_id, change, new.found_by, note, new.found_by_user)
        )
        return hazard_id

    async def apply(
        self, hazard_id: int, change: Change, actor: Actor | str, note: str = ""
    ) -> None:
        """Write one lifecycle action: the hazard's new state and columns, the effect on its
        current rectification round, and its event."""
        who = actor if isinstance(actor, Actor) else Actor(actor)
        fields = {"state": change.state, **change.fields}
        await self._conn.execute(_update_statement(fields), {**fields, "id": hazard_id})
        params = {
            "hazard_id": hazard_id,
            "actor": who.label,
            "actor_user": who.user_id,
            "note": note,
        }
        for statement in _ROUND_SQL[change.round] if change.round else ():
            await self._conn.execute(statement, params)
        await self._conn.execute(
            _INSERT_EVENT, _event_row(hazard_id, change, who.label, note, who.user_id)
        )


SWEEP_ACTOR = "hazmon-sweep"
"""Who writes the deadline sweep's events (`hazard_events.actor`)."""
_OPEN_DEADLINES = """
SELECT h.id, h.state, s.region_code, h.deadline, h.verification_due, h.supervision_region,
       coalesce((SELECT array_agg(jsonb_build_array(e.action, e.data))
                 FROM hazard_events e
                 WHERE e.hazard_id = h.id AND e.action IN ('remind', 'overdue', 'escalate')),
                '{}') AS written
FROM hazards h JOIN sites s ON s.id = h.site_id
WHERE (h.state = 'assigned' AND h.deadline < %(horizon)s)
   OR (h.state = 'rectified' AND h.verification_due < %(horizon)s)
ORDER BY h.id"""
_INSERT_SWEEP_EVENT = """
INSERT INTO hazard_events (hazard_id, action, actor, note, data, at)
VALUES (%(hazard_id)s, %(action)s, %(actor)s, %(note)s, %(data)s, %(at)s)
ON CONFLICT DO NOTHING"""


@dataclass(frozen=True, slots=True)
class SweepCount:
    """What one deadline sweep wrote, by action."""

    remind: int = 0
    overdue: int = 0
    escalate: int = 0


async def sweep_deadlines(
    conn: AsyncConnection[Any], *, now: datetime, policy: DeadlinePolicy = DEFAULT_POLICY
) -> SweepCount:
    """Write the reminders, overdue marks and escalations due at `now` (`deadline_changes`).

    Idempotent: an event already written is not written again (and the unique index
    `hazard_events_sweep_uq` makes two concurrent sweeps safe), so running it twice in a minute
    writes nothing new. Runs in the caller's transaction.

    Args:
        conn: an async connection (the caller commits).
        now: the sweep's clock (tests inject it).
        policy: lead and escalation periods.
    """
    counts = {"remind": 0, "overdue": 0, "escalate": 0}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_OPEN_DEADLINES, {"horizon": now + policy.remind_before})
        rows = await cur.fetchall()
    for row in rows:
        written = frozenset(sweep_key(action, data) for action, data in row["written"])
        deadlines = Deadlines(
            state=row["state"],
            region_code=row["region_code"],
            deadline=row["deadline"],
            verification_due=row["verification_due"],
            supervision_region=row["supervision_region"],
        )
        for change in deadline_changes(deadlines, now=now, written=written, policy=policy):
            cur2 = await conn.execute(
                _INSERT_SWEEP_EVENT,
                {
                    "hazard_id": row["id"],
                    "action": change.action,
                    "actor": SWEEP_ACTOR,
                    "note": str(change.data.get("reason", "")),
                    "data": Jsonb(dict(change.data)),
                    "at": now,
                },
            )
            counts[change.action] += cur2.rowcount
    return SweepCount(**counts)


@dataclass(frozen=True, slots=True)
class AlertTransitionRecord:
    """An alert transition as recorded, what the hazard of its alert depends on."""

    transition_id: int
    alert_id: int
    action: str
    grade_to: Grade
    reading_at: datetime
    message_zh: str
    message_en: str


_ALERT_HAZARDS_SQL = """
SELECT a.id, a.rule, se.metric, d.site_id, d.work_id, d.code, h.id, h.state, h.level
FROM alerts a
JOIN series se ON se.id = a.series_id
JOIN devices d ON d.id = se.device_id
LEFT JOIN hazards h ON h.alert_id = a.id
WHERE a.id = ANY(%s)
"""


def register_alert_hazards(
    conn: psycopg.Connection[Any], records: Sequence[AlertTransitionRecord]
) -> int:
    """Register or raise the hazards of recorded alert transitions (`alert_hazard_change`).

    Runs in the caller's transaction, the one that recorded the transitions; in order, so an
    open and an escalation of one alert in one batch give one hazard, raised. Returns how many
    hazard events were written.
    """
    relevant = [r for r in records if alert_hazard_change(r.action, r.grade_to, None) is not None]
    if not relevant:
        return 0
    rows = conn.execute(_ALERT_HAZARDS_SQL, (sorted({r.alert_id for r in relevant}),)).fetchall()
    alerts: dict[int, tuple[str, str, int, int | None, str]] = {}
    hazards: dict[int, tuple[int, Hazard]] = {}
    for alert_id, rule, metric, site_id, work_id, device, h_id, h_state, h_level in rows:
        alerts[alert_id] = (rule, metric, site_id, work_id, device)
        if h_id is not None:
            hazards[alert_id] = (h_id, Hazard(h_state, h_level))
    written = 0
    for r in relevant:
        rule, metric, site_id, work_id, device = alerts[r.alert_id]
        existing = hazards.get(r.alert_id)
        data = {"alert_id": r.alert_id, "transition_id": r.transition_id, "grade": int(r.grade_to)}
        change = alert_hazard_change(
            r.action, r.grade_to, existing[1] if existing else None, **data
        )
        if change is None:
            continue
        note = f"{r.message_zh}\n{r.message_en}"
        if existing is None:
            new = NewHazard(
                site_id=site_id,
                work_id=work_id,
                alert_id=r.alert_id,
                title=f"监测报警 / monitoring alert: {device} {metric}",
                description=note,
                basis=f"hazmon rule {rule} (alert {r.alert_id})",
                found_by=ENGINE_ACTOR,
                found_at=r.reading_at,
            )
            row = conn.execute(_INSERT_HAZARD, _hazard_row(new, change)).fetchone()
            assert row is not None
            hazard_id = int(row[0])
        else:
            hazard_id = existing[0]
            fields = {"state": change.state, **change.fields}
            conn.execute(_update_statement(fields), {**fields, "id": hazard_id})
        conn.execute(_INSERT_EVENT, _event_row(hazard_id, change, ENGINE_ACTOR, note))
        level = change.fields.get("level", "major")
        hazards[r.alert_id] = (hazard_id, Hazard(change.state, level, source="sensor"))
        written += 1
    return written
