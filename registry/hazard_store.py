"""Every write of the hazard registry: the loop's actions and the hazards of alerts.

The lifecycle (`registry.lifecycle`) decides; this module writes its `Change`s: the hazard row
and the `hazard_events` line that records each action, in the caller's transaction. The API and
the deadline job use the async `HazardStore`; ingest registers the hazards of its alerts with
`register_alert_hazards` inside the transaction that records the alert transitions, so that no
orange or red alert is ever committed without its entry in the closed loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from hazmon.vocabulary import Grade
from registry.lifecycle import ENGINE_ACTOR, Change, Hazard, alert_hazard_change

_INSERT_HAZARD = """
INSERT INTO hazards (site_id, work_id, alert_id, title, description, level, state, basis,
                     found_by, found_at)
VALUES (%(site_id)s, %(work_id)s, %(alert_id)s, %(title)s, %(description)s, %(level)s,
        %(state)s, %(basis)s, %(found_by)s, %(found_at)s)
RETURNING id"""
_INSERT_EVENT = """
INSERT INTO hazard_events (hazard_id, action, actor, note, data)
VALUES (%(hazard_id)s, %(action)s, %(actor)s, %(note)s, %(data)s)"""
_UPDATABLE = frozenset(
    {
        "state",
        "level",
        "responsible_unit",
        "responsible_person",
        "deadline",
        "rectified_by",
        "verified_by",
        "closed_at",
        "listed_supervision",
        "supervising_authority",
    }
)


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


def _hazard_row(new: NewHazard, change: Change) -> dict[str, Any]:
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
    }


def _event_row(hazard_id: int, change: Change, actor: str, note: str) -> dict[str, Any]:
    return {
        "hazard_id": hazard_id,
        "action": change.action,
        "actor": actor,
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
        await self._conn.execute(_INSERT_EVENT, _event_row(hazard_id, change, new.found_by, note))
        return hazard_id

    async def apply(self, hazard_id: int, change: Change, actor: str, note: str = "") -> None:
        """Write one lifecycle action: the hazard's new state and columns, and its event."""
        fields = {"state": change.state, **change.fields}
        await self._conn.execute(_update_statement(fields), {**fields, "id": hazard_id})
        await self._conn.execute(_INSERT_EVENT, _event_row(hazard_id, change, actor, note))


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
        hazards[r.alert_id] = (hazard_id, Hazard(change.state, change.fields.get("level", "major")))
        written += 1
    return written
