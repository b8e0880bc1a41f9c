"""The read definitions several route modules share (a route of one resource checks the scope of
another: a work's site, a threshold's work), kept apart so that route modules never import each
other. Each is read through `api.query.fetch_page`/`fetch_one`, which add the caller's scope.
"""

from __future__ import annotations

from datetime import datetime
from typing import LiteralString

from api.query import Filters, Resource

CODE = r"^[A-Za-z0-9_-]{1,64}$"
"""A site, work or device code: what `sites.code` and the others' CHECK constraints accept."""

SITES = Resource(
    name="site",
    columns="s.id, s.code, s.name, s.region_code, s.enterprise, s.address, s.latitude, "
    "s.longitude, s.created_at, s.updated_at",
    source="sites s",
    id_column="s.id",
    sortable={"id": "s.id", "code": "s.code", "name": "s.name", "region_code": "s.region_code"},
    default_sort="code",
)

WORKS = Resource(
    name="work",
    columns="w.id, w.site_id, s.code AS site_code, w.code, w.name, w.hazard_kind, w.params, "
    "w.created_at, w.updated_at",
    source="works w JOIN sites s ON s.id = w.site_id",
    id_column="w.id",
    sortable={"id": "w.id", "code": "w.code", "name": "w.name", "hazard_kind": "w.hazard_kind"},
    default_sort="id",
)

SERIES = Resource(
    name="series",
    columns="se.id, se.device_id, d.code AS device_code, d.work_id, w.hazard_kind, "
    "s.id AS site_id, s.code AS site_code, se.metric, d.sampling_period_s",
    source="series se JOIN devices d ON d.id = se.device_id JOIN works w ON w.id = d.work_id "
    "JOIN sites s ON s.id = d.site_id",
    id_column="se.id",
    sortable={"id": "se.id", "metric": "se.metric", "device_id": "se.device_id"},
    default_sort="id",
)

ALERTS = Resource(
    name="alert",
    columns="a.id, a.series_id, s.id AS site_id, s.code AS site_code, d.code AS device_code, "
    "se.metric, a.rule, a.grade, a.state, a.opened_at, a.updated_at, a.resolved_at, a.value, "
    "a.threshold, a.message_zh, a.message_en, a.acknowledged_by, a.acknowledged_at, a.ack_note",
    source="alerts a JOIN series se ON se.id = a.series_id JOIN devices d ON d.id = se.device_id "
    "JOIN sites s ON s.id = d.site_id",
    id_column="a.id",
    sortable={"opened_at": "a.opened_at", "grade": "a.grade", "id": "a.id"},
    default_sort="-opened_at",
)

OVERDUE: LiteralString = (
    "coalesce((h.state = 'assigned' AND h.deadline < now())"
    " OR (h.state = 'rectified' AND h.verification_due < now()), false)"
)
"""Whether a hazard is past the deadline that binds it now: the rectification's while it is
assigned, the verification's (10 days after the report, registry.lifecycle) while rectified."""

HAZARDS = Resource(
    name="hazard",
    columns="h.id, h.site_id, s.code AS site_code, s.name AS site_name, s.region_code, "
    "h.work_id, w.code AS work_code, w.name AS work_name, w.hazard_kind, h.alert_id, "
    "h.title, h.description, h.level, h.state, h.source, h.location, h.basis, h.found_by, "
    "h.found_at, h.inspection_id, h.inspection_item, h.measures, h.responsible_unit, "
    "h.responsible_person, h.funds_yuan, h.deadline, h.emergency_plan, h.listed_supervision, "
    "h.supervising_authority, h.supervision_level, h.supervision_region, h.supervision_due, "
    "h.supervised_at, h.rectified_by, h.rectified_by_user, h.rectified_at, h.verification_due, "
    "h.verified_by, h.verified_by_user, h.verified_at, h.closed_at, h.created_at, h.updated_at, "
    "EXISTS (SELECT 1 FROM alerts a WHERE a.id = h.alert_id AND a.state <> 'resolved')"
    f" AS alert_open, {OVERDUE} AS overdue",
    source="hazards h JOIN sites s ON s.id = h.site_id LEFT JOIN works w ON w.id = h.work_id",
    id_column="h.id",
    sortable={
        "id": "h.id",
        "found_at": "h.found_at",
        "deadline": "h.deadline",
        "state": "h.state",
        "supervision_due": "h.supervision_due",
        "verification_due": "h.verification_due",
    },
    default_sort="-id",
)


HAZARD_KINDS_PATTERN = r"^[a-z_]{1,40}$"
"""A hazard kind in a query filter (the catalogue's names: tower_crane, excavation, ...)."""


def list_filters(
    filters: Filters,
    *,
    region: str | None,
    site_id: int | None,
    kind: str | None,
    level: str | None,
    start: datetime | None,
    end: datetime | None,
    time_column: LiteralString,
) -> Filters:
    """The filters the two lists share (hazards, rectifications) on `hazards h`, `sites s` and
    `works w`: region prefix, site, the work's hazard kind, level, and a period `[start, end)` of
    `time_column`."""
    return (
        filters.add("s.region_code LIKE %(region)s || '%%'", region=region)
        .add("h.site_id = %(site_id)s", site_id=site_id)
        .add("w.hazard_kind = %(kind)s", kind=kind)
        .add("h.level = %(level)s", level=level)
        .add(f"{time_column} >= %(start)s", start=start)
        .add(f"{time_column} < %(end)s", end=end)
    )


RECTIFICATIONS = Resource(
    name="rectification",
    columns="r.id, r.hazard_id, r.round, h.title, h.level, h.state AS hazard_state, h.source, "
    "h.location, h.site_id, s.code AS site_code, s.name AS site_name, s.region_code, h.work_id, "
    "w.name AS work_name, w.hazard_kind, r.measures, r.responsible_unit, r.responsible_person, "
    "r.funds_yuan, r.deadline, r.emergency_plan, r.assigned_by, r.assigned_at, r.reported_by, "
    "r.reported_by_user, r.reported_at, r.report_note, r.verification_due, "
    "coalesce(r.outcome, 'open') AS outcome, r.verified_by, r.verified_by_user, r.verified_at, "
    "r.verification_note, h.listed_supervision, "
    "coalesce(r.outcome IS NULL AND ((r.reported_at IS NULL AND r.deadline < now())"
    " OR (r.reported_at IS NOT NULL AND r.verification_due < now())), false) AS overdue",
    source="rectifications r JOIN hazards h ON h.id = r.hazard_id "
    "JOIN sites s ON s.id = h.site_id LEFT JOIN works w ON w.id = h.work_id",
    id_column="r.id",
    sortable={"id": "r.id", "deadline": "r.deadline", "assigned_at": "r.assigned_at"},
    default_sort="-id",
)
"""The rounds of rectification (the 整改措施清单): one per assignment, with its report and outcome."""


INSPECTION_PLANS = Resource(
    name="inspection plan",
    columns="p.id, p.work_id, w.code AS work_code, w.name AS work_name, w.hazard_kind, "
    "w.site_id, s.code AS site_code, p.name, p.frequency_h, p.inspector_user, "
    "u.name AS inspector_name, p.items, p.starts_at, p.active, p.checked_until, p.created_by, "
    "p.created_at, p.updated_at",
    source="inspection_plans p JOIN works w ON w.id = p.work_id JOIN sites s ON s.id = w.site_id "
    "JOIN users u ON u.id = p.inspector_user",
    id_column="p.id",
    sortable={"id": "p.id", "name": "p.name"},
    default_sort="id",
)
"""Inspection plans (排查计划): a work's checklist items, frequency and responsible inspector."""

INSPECTIONS = Resource(
    name="inspection",
    columns="i.id, i.plan_id, p.name AS plan_name, i.work_id, w.name AS work_name, "
    "w.hazard_kind, w.site_id, s.code AS site_code, i.performed_by, i.performed_by_user, "
    "i.performed_at, i.results, i.failed, i.notes, i.created_at, p.items",
    source="inspection_records i JOIN inspection_plans p ON p.id = i.plan_id "
    "JOIN works w ON w.id = i.work_id JOIN sites s ON s.id = w.site_id",
    id_column="i.id",
    sortable={"id": "i.id", "performed_at": "i.performed_at"},
    default_sort="-performed_at",
)
"""Inspection records (排查记录): who, when, each item's result."""

INSPECTION_EVENTS = Resource(
    name="inspection event",
    columns="e.id, e.plan_id, p.name AS plan_name, p.work_id, w.site_id, s.code AS site_code, "
    "e.action, e.window_start, e.window_end, e.data, e.at",
    source="inspection_events e JOIN inspection_plans p ON p.id = e.plan_id "
    "JOIN works w ON w.id = p.work_id JOIN sites s ON s.id = w.site_id",
    id_column="e.id",
    sortable={"id": "e.id", "window_start": "e.window_start"},
    default_sort="-id",
)
"""Missed inspections (`inspection_missed`), written by the sweep."""
