"""Readings over a range with a point budget: raw when they fit, `time_bucket` averages when not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg

from tests.support.tokens import bearer
from tests.support.world import World

HOURS_PER_YEAR = 365 * 24


def test_a_year_of_hourly_data_comes_back_chart_sized(world: World) -> None:
    series = world.ids["A"]["series"]
    end = datetime(2026, 11, 1, tzinfo=UTC)
    start = end - timedelta(hours=HOURS_PER_YEAR)
    with psycopg.connect(world.db_url) as conn:
        # value = hour index, so every bucket's min, max and mean are known exactly
        conn.execute(
            """INSERT INTO readings (time, series_id, value)
               SELECT %s + make_interval(hours => i), %s, i FROM generate_series(0, %s - 1) i""",
            (start, series, HOURS_PER_YEAR),
        )
    url = f"/series/{series}/readings"
    with httpx.Client(
        base_url=world.base, headers=bearer(world.tokens["enterprise"] or "")
    ) as http:
        year = http.get(
            url, params={"start": start.isoformat(), "end": end.isoformat(), "max_points": 500}
        )
        assert year.status_code == 200, year.text
        body = year.json()
        assert body["unit"] == "1"
        assert body["bucket_s"] == -(-HOURS_PER_YEAR * 3600 // 500)  # ceil(span / budget)
        points = body["data"]
        assert 490 <= len(points) <= 500
        assert sum(p["count"] for p in points) == HOURS_PER_YEAR
        first = points[0]
        assert first["time"].startswith(start.isoformat()[:19])
        assert (first["min"], first["max"]) == (0, first["count"] - 1)
        assert first["value"] == (first["count"] - 1) / 2
        assert points[-1]["max"] == HOURS_PER_YEAR - 1

        day = http.get(
            url, params={"start": (end - timedelta(hours=10)).isoformat(), "end": end.isoformat()}
        )
        raw = day.json()
        assert raw["bucket_s"] is None
        assert [p["value"] for p in raw["data"]] == list(range(HOURS_PER_YEAR - 10, HOURS_PER_YEAR))

        backwards = http.get(url, params={"start": end.isoformat(), "end": start.isoformat()})
        assert backwards.status_code == 422
        naive = http.get(url, params={"start": "2026-01-01T00:00:00"})
        assert naive.status_code == 422
