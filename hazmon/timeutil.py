"""Time as hazmon carries it: epoch microseconds (UTC) in arrays and on the hot path, aware
datetimes at the database and the API. The conversions are exact (no float on the way)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US_PER_S = 1_000_000


def now_us() -> int:
    """The current time, epoch microseconds (UTC)."""
    return time.time_ns() // 1000


def to_datetime(time_us: int) -> datetime:
    """Epoch microseconds (UTC) to an aware datetime, exactly.

    Raises:
        OverflowError: outside the years 1 to 9999 that datetime holds.
    """
    return EPOCH + timedelta(microseconds=int(time_us))


def to_us(when: datetime) -> int:
    """An aware datetime to epoch microseconds, exactly."""
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds
