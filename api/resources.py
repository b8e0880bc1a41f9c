"""The read definitions several route modules share (a route of one resource checks the scope of
another: a work's site, a threshold's work), kept apart so that route modules never import each
other. Each is read through `api.query.fetch_page`/`fetch_one`, which add the caller's scope.
"""

from __future__ import annotations

from api.query import Resource

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

HAZARDS = Resource(
    name="hazard",
    columns="h.id, h.site_id, s.code AS site_code, h.work_id, h.alert_id, h.title, "
    "h.description, h.level, h.state, h.basis, h.found_by, h.found_at, h.responsible_unit, "
    "h.responsible_person, h.deadline, h.listed_supervision, h.supervising_authority, "
    "h.rectified_by, h.verified_by, h.closed_at, h.created_at, h.updated_at, "
    "(h.deadline < now() AND h.state IN ('assigned', 'rectified')) AS overdue",
    source="hazards h JOIN sites s ON s.id = h.site_id",
    id_column="h.id",
    sortable={"id": "h.id", "found_at": "h.found_at", "deadline": "h.deadline", "state": "h.state"},
    default_sort="-id",
)
