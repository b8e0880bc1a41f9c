"""The registry's inventory SQL, written once for both of its writers: `hazmon registry import`
(sync, upserting a whole file in one transaction) and the API's admin routes (async, one row at
a time, refusing a duplicate code with 409). Each statement takes named parameters; the insert
and the upsert of a table share their column list.
"""

from __future__ import annotations

from typing import Final, LiteralString

_REGION: Final = """INSERT INTO regions (code, name, parent_code)
VALUES (%(code)s, %(name)s, %(parent_code)s)"""
INSERT_REGION: Final[LiteralString] = _REGION + " RETURNING code, name, parent_code"
UPSERT_REGION: Final[LiteralString] = (
    _REGION + " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
    " parent_code = EXCLUDED.parent_code"
)

_SITE: Final = """INSERT INTO sites (code, name, region_code, enterprise, address, latitude, longitude)
VALUES (%(code)s, %(name)s, %(region_code)s, %(enterprise)s, %(address)s, %(latitude)s,
        %(longitude)s)"""
INSERT_SITE: Final[LiteralString] = _SITE + " RETURNING id"
UPSERT_SITE: Final[LiteralString] = (
    _SITE + " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
    " region_code = EXCLUDED.region_code, enterprise = EXCLUDED.enterprise,"
    " address = EXCLUDED.address, latitude = EXCLUDED.latitude,"
    " longitude = EXCLUDED.longitude, updated_at = now() RETURNING id"
)

_WORK: Final = """INSERT INTO works (site_id, code, name, hazard_kind, params)
VALUES (%(site_id)s, %(code)s, %(name)s, %(hazard_kind)s, %(params)s)"""
INSERT_WORK: Final[LiteralString] = _WORK + " RETURNING id"
UPSERT_WORK: Final[LiteralString] = (
    _WORK + " ON CONFLICT (site_id, code) DO UPDATE SET name = EXCLUDED.name,"
    " hazard_kind = EXCLUDED.hazard_kind, params = EXCLUDED.params, updated_at = now()"
    " RETURNING id"
)

_DEVICE: Final = """INSERT INTO devices (site_id, work_id, code, name, sampling_period_s)
VALUES (%(site_id)s, %(work_id)s, %(code)s, %(name)s, %(sampling_period_s)s)"""
INSERT_DEVICE: Final[LiteralString] = _DEVICE + " RETURNING id"
UPSERT_DEVICE: Final[LiteralString] = (
    _DEVICE + " ON CONFLICT (site_id, code) DO UPDATE SET work_id = EXCLUDED.work_id,"
    " name = EXCLUDED.name, sampling_period_s = EXCLUDED.sampling_period_s, updated_at = now()"
    " RETURNING id"
)

ADD_SERIES: Final[LiteralString] = """INSERT INTO series (device_id, metric)
VALUES (%(device_id)s, %(metric)s) ON CONFLICT (device_id, metric) DO NOTHING"""
"""A device's series of one metric, added once (re-adding is harmless)."""

WORK_OVERRIDES: Final[LiteralString] = (
    "SELECT metric, rule, params FROM thresholds WHERE work_id = %(work_id)s ORDER BY id"
)
"""A work's own threshold overrides, which its design values are checked with."""

COUNTS: Final[
    LiteralString
] = """SELECT (SELECT count(*) FROM regions), (SELECT count(*) FROM sites),
       (SELECT count(*) FROM works), (SELECT count(*) FROM devices),
       (SELECT count(*) FROM series)"""
"""How many rows the registry holds, table by table."""
