"""Decode a gateway's status payload (its MQTT last will says "offline"); pure.

A status is held to the same limits as telemetry: size, nesting depth, integer size and the
accepted time window. The window matters more here than for readings: an older report never
overwrites a newer one, so a single report dated in the far future (a clock gone wrong, a `ts`
sent in microseconds) would pin the device's state for good.
"""

from __future__ import annotations

from hazmon.wire import Reason, TopicAddress
from ingest.decode import (
    Limits,
    PayloadError,
    Rejection,
    brief,
    json_epoch_ms,
    load_json,
    time_window_rejection,
)
from ingest.records import DeviceStatus

_WORDS = {"online": True, "offline": False, "1": True, "0": False}


def parse_status(
    address: TopicAddress, payload: bytes, received_us: int, limits: Limits
) -> DeviceStatus | Rejection:
    """Accept `online`/`offline` as plain text or `{"status": "online", "ts": <ms>}`.

    Args:
        address: site and device from the topic.
        payload: the raw MQTT payload.
        received_us: receive time, epoch microseconds (UTC); the report's time without `ts`.
        limits: the payload size limit and the accepted time window.
    """
    if len(payload) > limits.max_payload_bytes:
        return Rejection(
            Reason.PAYLOAD_TOO_LARGE, f"{len(payload)} bytes, limit {limits.max_payload_bytes}"
        )
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return Rejection(Reason.INVALID_UTF8, "status payload is not UTF-8")
    at_us = received_us
    word = text.lower()
    if text.startswith("{"):
        try:
            raw = load_json(payload)
        except PayloadError as exc:
            return Rejection(exc.rejection.reason, f"status: {exc.rejection.detail}")
        status = raw.get("status") if isinstance(raw, dict) else None
        if not isinstance(status, str):
            return Rejection(Reason.WRONG_SHAPE, 'status object needs "status": "online"|"offline"')
        word = status.lower()
        # A `ts` that is not an integer is ignored (the receive time stands), as it always was.
        ts_ms = json_epoch_ms(raw.get("ts"))
        if ts_ms is not None:
            at_us = ts_ms * 1000
    if word not in _WORDS:
        return Rejection(
            Reason.WRONG_SHAPE, f"status must be online or offline, got {brief(text[:40])}"
        )
    outside = time_window_rejection(at_us, received_us, limits)
    if outside is not None:
        return Rejection(outside.reason, f"status: {outside.detail}")
    return DeviceStatus(address.site_code, address.device_code, _WORDS[word], at_us)
