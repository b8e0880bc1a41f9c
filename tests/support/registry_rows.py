"""A small registry written straight into a test database, and readings stored as ingest stores
them: for the rule-engine tests and the tests of the engine's database side."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg

from hazmon.timeutil import to_datetime
from rules import Batch, SeriesInfo

T0_US = 1_764_000_000_000_000  # 2025-11-24, a fixed epoch for reproducible streams


@dataclass(frozen=True)
class DeviceSpec:
    """One device of a test registry: its work's kind and params, and its metrics."""

    code: str
    hazard_kind: str
    metrics: Sequence[str]
    work_params: Mapping[str, Any]
    sampling_period_s: float = 60.0
    site: str = "SITE-A"


def make_registry(conn: psycopg.Connection[Any], devices: Sequence[DeviceSpec]) -> list[SeriesInfo]:
    """Insert sites, works, devices and series; return the series as the engine sees them."""
    out: list[SeriesInfo] = []
    for dev in devices:
        site = conn.execute(
            "INSERT INTO sites (code, name, region_code) VALUES (%s, %s, '330100')"
            " ON CONFLICT (code) DO UPDATE SET name = excluded.name RETURNING id",
            (dev.site, dev.site),
        ).fetchone()
        assert site is not None
        work = conn.execute(
            "INSERT INTO works (site_id, code, name, hazard_kind, params)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (
                site[0],
                f"W-{dev.code}",
                f"work {dev.code}",
                dev.hazard_kind,
                json.dumps(dict(dev.work_params)),
            ),
        ).fetchone()
        assert work is not None
        device = conn.execute(
            "INSERT INTO devices (site_id, work_id, code, sampling_period_s)"
            " VALUES (%s, %s, %s, %s) RETURNING id",
            (site[0], work[0], dev.code, dev.sampling_period_s),
        ).fetchone()
        assert device is not None
        for metric in dev.metrics:
            row = conn.execute(
                "INSERT INTO series (device_id, metric) VALUES (%s, %s) RETURNING id",
                (device[0], metric),
            ).fetchone()
            assert row is not None
            out.append(
                SeriesInfo(
                    row[0],
                    device[0],
                    work[0],
                    dev.site,
                    dev.code,
                    dev.hazard_kind,
                    metric,
                    dict(dev.work_params),
                    dev.sampling_period_s,
                )
            )
    return out


def store_readings(conn: psycopg.Connection[Any], batch: Batch) -> None:
    """Write a batch into `readings` as the ingest does (first of duplicates wins)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (time, series_id, value) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [
                (to_datetime(int(t)), int(s), float(v))
                for s, t, v in zip(batch.series_id, batch.time_us, batch.value, strict=True)
                if np.isfinite(v)
            ],
        )
