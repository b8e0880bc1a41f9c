"""Decode a gateway's status payload (its MQTT last will says "offline"); pure."""

from __future__ import annotations

import json

from ingest.decode import Reason, Rejection, TopicAddress
from ingest.store import DeviceStatus

_WORDS = {"online": True, "offline": False, "1": True, "0": False}


def parse_status(
    address: TopicAddress, payload: bytes, received_us: int
) -> DeviceStatus | Rejection:
    """Accept `online`/`offline` as plain text or `{"status": "online", "ts": <ms>}`."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Rejection(Reason.INVALID_UTF8, "status payload is not UTF-8")
    at_us = received_us
    word = text.lower()
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            return Rejection(Reason.INVALID_JSON, f"status: {exc.msg}")
        status = raw.get("status") if isinstance(raw, dict) else None
        if not isinstance(status, str):
            return Rejection(Reason.WRONG_SHAPE, 'status object needs "status": "online"|"offline"')
        word = status.lower()
        ts = raw.get("ts")
        if isinstance(ts, int) and not isinstance(ts, bool):
            at_us = ts * 1000
    if word not in _WORDS:
        return Rejection(Reason.WRONG_SHAPE, f"status must be online or offline, got {text[:40]!r}")
    return DeviceStatus(address.site_code, address.device_code, _WORDS[word], at_us)
