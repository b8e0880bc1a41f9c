"""The values ingest keeps besides readings: refused payloads and device status reports.

Plain frozen values, made by the decoding side (pure) and written by `ingest.store`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A payload refused in whole or in part, kept with its raw bytes."""

    topic: str
    reason: str
    detail: str
    payload: bytes
    received_us: int
    redelivered: bool = False
    """Seen before (MQTT DUP flag, or a retried commit): stored only if not stored already."""


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """An online/offline report from a gateway's status topic (or its last will)."""

    site_code: str
    device_code: str
    online: bool
    at_us: int


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """A queued dead-letter replay: which letters (a reason, or all), how far it has come, and
    the letters still refused so far (by current reason)."""

    id: int
    reason: str | None
    after_id: int
    still_refused: Counter[str]
