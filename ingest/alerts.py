"""The database side of ingest's rule engine: loading it from the registry, recording what it does.

Ingest owns the rule state, so this is ingest's: the people's side of alerts (acknowledgement,
re-baselining) is the registry's (`registry.alerts`).

- `load_engine` builds a `rules.Engine` for all series (or those of some sites) from the
  registry tables, pins initial baselines, replays the newest stored readings of each series to
  rebuild run lengths and windows, and restores the open alerts, so that a restart neither
  re-opens nor forgets an alert (an open alert whose rule was removed or disabled is closed
  with a transition saying so).
- `record` writes the transitions of a batch into `alerts` and `alert_transitions`, inside the
  caller's transaction (the one that also COPYs the readings).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import psycopg

import rules
from hazmon.timeutil import EPOCH, now_us, to_datetime, to_us
from registry import hazard_store, lifecycle
from rules import ProfileError

log = logging.getLogger(__name__)

_REPLAY_CHUNK = 200_000


# --- building the engine -------------------------------------------------------------------

# Design values and overrides come as text and are parsed here, one work at a time: a value
# json cannot read (a number of 5,000 digits, nesting 10,000 deep) isolates its work only.
_SERIES_SQL = """
SELECT s.id, d.id, w.id, si.code, d.code, w.hazard_kind, s.metric, w.params::text,
       d.sampling_period_s, w.code
FROM series s
JOIN devices d ON d.id = s.device_id
JOIN works w ON w.id = d.work_id
JOIN sites si ON si.id = d.site_id
WHERE %(all)s OR si.code = ANY(%(sites)s)
ORDER BY s.id
"""

_OVERRIDES_SQL = """
SELECT work_id, series_id, metric, rule, params::text FROM thresholds
WHERE work_id = ANY(%(works)s) OR series_id = ANY(%(series)s)
ORDER BY id
"""

# The initial baseline of a cumulative rule is the series' first reading; pin it as a dated
# record the first time the engine is loaded after it arrived (index scan per series).
_PIN_BASELINES_SQL = """
INSERT INTO baselines (series_id, value, valid_from, reason, set_by)
SELECT s.sid, r.value, r.time, 'initial', 'system'
FROM unnest(%(series)s::int[]) AS s(sid)
JOIN LATERAL (
    SELECT value, time FROM readings WHERE series_id = s.sid ORDER BY time ASC LIMIT 1
) r ON true
WHERE NOT EXISTS (SELECT 1 FROM baselines b WHERE b.series_id = s.sid)
RETURNING series_id, value, valid_from
"""

_BASELINES_SQL = """
SELECT series_id, value, valid_from FROM baselines WHERE series_id = ANY(%(series)s)
ORDER BY series_id, valid_from, id
"""

# For each series: its newest reading and its k-th newest (both by index scans).
_HISTORY_SQL = """
SELECT s.sid, nw.time, kth.time
FROM unnest(%(series)s::int[], %(counts)s::int[]) AS s(sid, k)
LEFT JOIN LATERAL (
    SELECT time FROM readings WHERE series_id = s.sid ORDER BY time DESC LIMIT 1
) nw ON true
LEFT JOIN LATERAL (
    SELECT time FROM readings WHERE series_id = s.sid ORDER BY time DESC OFFSET s.k - 1 LIMIT 1
) kth ON true
"""

_REPLAY_SQL = """
SELECT r.series_id, (extract(epoch FROM r.time) * 1000000)::int8, r.value
FROM unnest(%(series)s::int[], %(since)s::timestamptz[]) AS c(sid, since)
JOIN readings r ON r.series_id = c.sid AND r.time >= c.since
ORDER BY r.time, r.series_id
"""

_OPEN_ALERTS_SQL = """
SELECT series_id, rule, grade FROM alerts
WHERE state <> 'resolved' AND series_id = ANY(%(series)s)
"""


def load_engine(
    conn: psycopg.Connection[Any],
    site_codes: Collection[str] | None = None,
    profiles: Mapping[str, rules.Profile] | None = None,
    previous: rules.Engine | None = None,
) -> rules.Engine:
    """Build the rule engine for the registry's series and restore its state.

    Pins missing initial baselines (an INSERT: commit the connection's transaction afterwards,
    or run it in autocommit mode).

    Args:
        conn: a connection to the hazmon database.
        site_codes: only the series of these sites (an ingest worker's partition); None: all.
        profiles: default profiles; default `rules.load_profiles()`.
        previous: the engine being replaced after a registry change: the series it shares
            with the new one keep their state (`Engine.adopt`), only the others are replayed.
            Never pass an engine whose last batch was not committed (after a failed commit
            its state is ahead of the database): rebuild from the database alone then.

    Returns:
        An engine whose open alerts, run lengths and rate windows are those an uninterrupted
        engine would have after the stored readings.

    Registry content never makes it fail: a work whose rows cannot be read or whose rules do
    not resolve is left out of grading (`Engine.isolated`), its open alerts are kept as they
    are, and an alert `rules_unresolved` is raised on it for the administrators (resolved
    once the work is fixed).
    """
    registry = _read_registry(conn, {"all": site_codes is None, "sites": list(site_codes or ())})
    engine = rules.Engine(
        registry.series, profiles, registry.overrides, isolated=registry.unreadable
    )
    if engine.warnings:
        # e.g. a strut series on a work without strut_design_kn: that rule cannot apply
        log.warning(
            "rules not applied",
            extra={"count": len(engine.warnings), "first": engine.warnings[:5]},
        )
    if engine.isolated:
        log.error(
            "works isolated: readings stored, not graded, until the registry is fixed",
            extra={
                "works": {registry.work_codes[w]: r for w, r in sorted(engine.isolated.items())}
            },
        )
    graded = [s.series_id for s in engine.series]
    _set_baselines(conn, engine, graded)
    adopted = engine.adopt(previous) if previous is not None else set()
    replayed = [sid for sid in graded if sid not in adopted]
    _replay(conn, engine, replayed)
    engine.forget_grades(replayed)
    orphans = [
        (sid, rule, rules.Grade(grade))
        for sid, rule, grade in conn.execute(_OPEN_ALERTS_SQL, {"series": graded}).fetchall()
        if rule != UNRESOLVED_RULE and not engine.restore_alert(sid, rule, rules.Grade(grade))
    ]
    if orphans:
        record(conn, [_rule_gone(sid, rule, grade) for sid, rule, grade in orphans])
    record(conn, _isolation_changes(conn, engine.isolated, registry))
    return engine


UNRESOLVED_RULE = "rules_unresolved"
"""The alert an ingest raises for the administrators on a work it cannot grade (its rules do
not resolve): open while the work is isolated, resolved once the registry is fixed."""
UNRESOLVED_GRADE = rules.Grade.YELLOW
"""No standard behind it: a monitoring gap, not a structural alarm, so below the orange that
registers a hazard, and at the default minimum grade of webhook subscriptions."""


@dataclass(frozen=True, slots=True)
class _Registry:
    """What the engine is built from, as read from the registry tables.

    Attributes:
        series: every series that could be read.
        overrides: every override row that could be read.
        unreadable: works with a row json cannot read or a series that is invalid, and why.
        work_codes: every work's code, by id.
        work_series: every work's series ids (readable or not), by work id.
    """

    series: list[rules.SeriesInfo]
    overrides: list[rules.Override]
    unreadable: dict[int, str]
    work_codes: dict[int, str]
    work_series: dict[int, list[int]]


def _read_registry(conn: psycopg.Connection[Any], params: Mapping[str, Any]) -> _Registry:
    series: list[rules.SeriesInfo] = []
    unreadable: dict[int, str] = {}
    work_codes: dict[int, str] = {}
    work_series: dict[int, list[int]] = {}
    for sid, device_id, work_id, site, device, kind, metric, raw, period_s, code in conn.execute(
        _SERIES_SQL, params
    ):
        work_codes[work_id] = code
        work_series.setdefault(work_id, []).append(sid)
        try:
            info = rules.SeriesInfo(
                series_id=sid,
                device_id=device_id,
                work_id=work_id,
                site_code=site,
                device_code=device,
                hazard_kind=kind,
                metric=metric,
                work_params=_json(raw, f"design values of work {code}"),
                sampling_period_s=float(period_s),
            )
        except rules.ProfileError as exc:
            unreadable.setdefault(work_id, str(exc))
            continue
        series.append(info)
    work_of = {sid: work for work, sids in work_series.items() for sid in sids}
    overrides: list[rules.Override] = []
    query = {"works": sorted(work_codes), "series": sorted(work_of)}
    for work_id, series_id, metric, rule, raw in conn.execute(_OVERRIDES_SQL, query):
        owner = work_id if work_id is not None else work_of[series_id]
        try:
            body = _json(raw, f"threshold override {rule} of work {work_codes[owner]}")
        except rules.ProfileError as exc:
            unreadable.setdefault(owner, str(exc))
            continue
        overrides.append(rules.Override(rule, metric, body, work_id, series_id))
    return _Registry(series, overrides, unreadable, work_codes, work_series)


def _set_baselines(conn: psycopg.Connection[Any], engine: rules.Engine, sids: list[int]) -> None:
    """Give the engine every dated baseline, pinning the initial one of cumulative series that
    have readings but no baseline yet (inserting only when one is missing)."""
    stored = conn.execute(_BASELINES_SQL, {"series": sids}).fetchall()
    have = {row[0] for row in stored}
    unpinned = [
        sid
        for sid in sids
        if sid not in have and any(r.kind == "cumulative" for r in engine.rules_of(sid))
    ]
    if unpinned:
        stored += conn.execute(_PIN_BASELINES_SQL, {"series": unpinned}).fetchall()
    for sid, value, valid_from in stored:
        engine.set_baseline(sid, float(value), to_us(valid_from))


def _isolation_changes(
    conn: psycopg.Connection[Any], isolated: Mapping[int, str], registry: _Registry
) -> list[rules.Transition]:
    """Open an administrators' alert on each newly isolated work, resolve it on works fixed."""
    work_of = {sid: work for work, sids in registry.work_series.items() for sid in sids}
    open_on = {
        work_of[sid]: sid
        for (sid,) in conn.execute(
            "SELECT series_id FROM alerts WHERE rule = %(rule)s AND state <> 'resolved'"
            " AND series_id = ANY(%(series)s)",
            {"rule": UNRESOLVED_RULE, "series": sorted(work_of)},
        )
    }
    at_us = now_us()
    changes = []
    for work_id, reason in sorted(isolated.items()):
        if work_id not in open_on:
            code = registry.work_codes[work_id]
            changes.append(
                rules.Transition(
                    registry.work_series[work_id][0],
                    UNRESOLVED_RULE,
                    "open",
                    rules.Grade.NORMAL,
                    UNRESOLVED_GRADE,
                    at_us,
                    float("nan"),
                    float("nan"),
                    f"工程 {code} 的预警规则无法解析：读数照常存储但不评级，"
                    f"请修正其设计参数或阈值覆盖。原因：{reason}",
                    f"rules of work {code} cannot be resolved: its readings are stored but not "
                    f"graded until its design values or threshold overrides are fixed. "
                    f"Cause: {reason}",
                )
            )
    for work_id, sid in sorted(open_on.items()):
        if work_id not in isolated:
            code = registry.work_codes[work_id]
            changes.append(
                rules.Transition(
                    sid,
                    UNRESOLVED_RULE,
                    "resolve",
                    UNRESOLVED_GRADE,
                    rules.Grade.NORMAL,
                    at_us,
                    float("nan"),
                    float("nan"),
                    f"工程 {code} 的预警规则已恢复解析，恢复评级",
                    f"rules of work {code} resolve again: its readings are graded again",
                )
            )
    return changes


def _rule_gone(series_id: int, rule: str, grade: rules.Grade) -> rules.Transition:
    """Close an open alert whose rule no longer applies (removed, disabled, no design value):
    nothing would ever resolve it otherwise."""
    return rules.Transition(
        series_id,
        rule,
        "resolve",
        grade,
        rules.Grade.NORMAL,
        now_us(),
        float("nan"),
        float("nan"),
        f"告警关闭：规则 {rule} 已停用或不再适用（配置变更）",
        f"closed: rule {rule} was disabled or no longer applies (configuration change)",
    )


def _replay(conn: psycopg.Connection[Any], engine: rules.Engine, sids: list[int]) -> None:
    """Feed each series' newest readings (enough for every window and run) to the engine."""
    counts = [engine.history_readings(sid) for sid in sids]
    since_sid: list[int] = []
    since: list[datetime] = []
    for sid, newest, kth in conn.execute(_HISTORY_SQL, {"series": sids, "counts": counts}):
        if newest is None:
            continue
        start = newest - timedelta(microseconds=engine.history_us(sid))
        since_sid.append(sid)
        # fewer stored readings than the runs need: replay them all
        since.append(min(start, kth) if kth is not None else EPOCH)
    if not since_sid:
        return
    with conn.cursor() as cur:
        cur.execute(_REPLAY_SQL, {"series": since_sid, "since": since})
        while rows := cur.fetchmany(_REPLAY_CHUNK):
            arr = np.array(rows, dtype=np.float64)
            engine.replay(
                rules.Batch(
                    np.array([r[0] for r in rows], dtype=np.int64),
                    np.array([r[1] for r in rows], dtype=np.int64),
                    arr[:, 2].copy(),
                )
            )


def _json(raw: object, what: str) -> dict[str, Any]:
    """A jsonb column read as text: an object, or ProfileError naming `what` (never another
    exception, whatever the text holds)."""
    if raw is None:
        return {}
    try:
        value = json.loads(str(raw))
    except (ValueError, RecursionError) as exc:
        raise ProfileError(
            what, f"cannot be read ({type(exc).__name__}: {str(exc)[:120]})"
        ) from None
    if not isinstance(value, Mapping):
        raise ProfileError(what, f"must be a JSON object, got {type(value).__name__}")
    return dict(value)


# --- recording transitions -----------------------------------------------------------------

# One statement per transition, whatever its action: it updates the open alert of the
# (series, rule) if there is one and inserts it otherwise (so a transition is never lost, even if
# the table and the engine disagree), then appends the transition row. Statements run in order
# in one pipeline (executemany), so an open, an escalation and a resolution of the same alert
# in one batch apply in sequence.
_RECORD_SQL = """
WITH cur AS (
    SELECT id FROM alerts
    WHERE series_id = %(sid)s AND rule = %(rule)s AND state <> 'resolved'
),
ins AS (
    INSERT INTO alerts (series_id, rule, grade, state, opened_at, updated_at, resolved_at,
                        value, threshold, message_zh, message_en)
    SELECT %(sid)s, %(rule)s, %(grade)s,
           CASE WHEN %(g_to)s = 0 THEN 'resolved' ELSE 'open' END,
           %(at)s, %(at)s, CASE WHEN %(g_to)s = 0 THEN %(at)s END,
           %(value)s, %(thr)s, %(zh)s, %(en)s
    WHERE NOT EXISTS (SELECT 1 FROM cur)
    RETURNING id
),
upd AS (
    UPDATE alerts SET
        grade = %(grade)s,
        state = CASE WHEN %(g_to)s = 0 THEN 'resolved'
                     WHEN %(g_to)s > %(g_from)s THEN 'open'
                     ELSE state END,
        resolved_at = CASE WHEN %(g_to)s = 0 THEN %(at)s END,
        updated_at = %(at)s, value = %(value)s, threshold = %(thr)s,
        message_zh = %(zh)s, message_en = %(en)s
    WHERE id IN (SELECT id FROM cur)
    RETURNING id
)
INSERT INTO alert_transitions (alert_id, action, grade_from, grade_to, reading_at, value,
                               threshold, message_zh, message_en)
SELECT id, %(action)s, %(g_from)s, %(g_to)s, %(at)s, %(value)s, %(thr)s, %(zh)s, %(en)s
FROM (SELECT id FROM ins UNION ALL SELECT id FROM upd) a
"""
# The same, saying which transition row it wrote: needed when the hazard of the alert changes.
_RECORD_RETURNING_SQL = _RECORD_SQL.rstrip() + "\nRETURNING id, alert_id\n"

# Late readings attach to the alert that covered their time; if none did, they are kept as a
# resolved alert of their own (so they are on record) - never as an open one.
_LATE_SQL = """
WITH cover AS (
    SELECT id FROM alerts
    WHERE series_id = %(sid)s AND rule = %(rule)s AND opened_at <= %(at)s
      AND (resolved_at IS NULL OR resolved_at >= %(at)s)
    ORDER BY opened_at DESC LIMIT 1
),
ins AS (
    INSERT INTO alerts (series_id, rule, grade, state, opened_at, updated_at, resolved_at,
                        value, threshold, message_zh, message_en)
    SELECT %(sid)s, %(rule)s, %(grade)s, 'resolved', %(at)s, %(at)s, %(at)s,
           %(value)s, %(thr)s, %(zh)s, %(en)s
    WHERE NOT EXISTS (SELECT 1 FROM cover)
    RETURNING id
)
INSERT INTO alert_transitions (alert_id, action, grade_from, grade_to, reading_at, value,
                               threshold, message_zh, message_en)
SELECT id, 'late', %(g_from)s, %(g_to)s, %(at)s, %(value)s, %(thr)s, %(zh)s, %(en)s
FROM (SELECT id FROM cover UNION ALL SELECT id FROM ins) a
"""


# An initial baseline the engine took from a series' first reading (action 'baseline').
_BASELINE_SQL = """
INSERT INTO baselines (series_id, value, valid_from, reason, set_by)
SELECT %(sid)s, %(value)s, %(at)s, 'initial', 'engine'
WHERE NOT EXISTS (SELECT 1 FROM baselines WHERE series_id = %(sid)s)
"""


def record(conn: psycopg.Connection[Any], transitions: Sequence[rules.Transition]) -> None:
    """Write transitions into `alerts` and `alert_transitions`, in order; `baseline`
    transitions become initial records in `baselines`.

    Runs inside the caller's transaction and does not commit.

    Args:
        conn: the connection whose transaction also holds the batch's readings.
        transitions: as returned by `Engine.evaluate` and `Engine.tick`.
    """
    live = [t for t in transitions if t.action not in ("late", "baseline")]
    late = [_params(t) for t in transitions if t.action == "late"]
    base = [_params(t) for t in transitions if t.action == "baseline"]
    with conn.cursor() as cur:
        if base:
            cur.executemany(_BASELINE_SQL, base)
        if live and any(lifecycle.level_of_alert(t.grade_to) for t in live):
            _record_with_hazards(conn, cur, live)
        elif live:
            cur.executemany(_RECORD_SQL, [_params(t) for t in live])
        if late:
            cur.executemany(_LATE_SQL, late)


def _record_with_hazards(
    conn: psycopg.Connection[Any],
    cur: psycopg.Cursor[Any],
    live: Sequence[rules.Transition],
) -> None:
    """Record transitions of which some may register or raise a hazard, then let the registry
    write those hazards in the same transaction."""
    cur.executemany(_RECORD_RETURNING_SQL, [_params(t) for t in live], returning=True)
    recorded = []
    for t in live:
        row = cur.fetchone()
        assert row is not None, "every transition statement writes one row"
        recorded.append(
            hazard_store.AlertTransitionRecord(
                transition_id=int(row[0]),
                alert_id=int(row[1]),
                action=t.action,
                grade_to=t.grade_to,
                reading_at=to_datetime(t.time_us),
                message_zh=t.message_zh,
                message_en=t.message_en,
            )
        )
        cur.nextset()
    hazard_store.register_alert_hazards(conn, recorded)


def _params(t: rules.Transition) -> dict[str, Any]:
    return {
        "sid": t.series_id,
        "rule": t.rule,
        "action": t.action,
        "g_from": int(t.grade_from),
        "g_to": int(t.grade_to),
        # alerts.grade is the open grade, or the last one once resolved
        "grade": int(t.grade_to or t.grade_from),
        "at": to_datetime(t.time_us),
        "value": _finite(t.value),
        "thr": _finite(t.threshold),
        "zh": t.message_zh,
        "en": t.message_en,
    }


def _finite(x: float) -> float | None:
    return x if np.isfinite(x) else None
