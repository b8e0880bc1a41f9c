"""The wire contract between gateways and hazmon, declared once: topics, payloads and the
reasons a payload is refused.

    {root}/{site_code}/{device_code}/telemetry   QoS 1, {"ts": <epoch ms>, "values": {...}}
                                                 or an array of such objects (ThingsBoard's shape)
    {root}/{site_code}/{device_code}/status      "online" / "offline" (the gateway's last will),
                                                 or {"status": "online", "ts": <epoch ms>}

Ingest parses with it, the simulators publish with it like a real gateway, the broker's ACL is
written from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Channel = Literal["telemetry", "status"]
CHANNELS: tuple[Channel, ...] = ("telemetry", "status")
ONLINE = b"online"
OFFLINE = b"offline"
"""Status payloads; a gateway sets OFFLINE as its MQTT last will (retained, QoS 1)."""


@dataclass(frozen=True, slots=True)
class TopicAddress:
    """The site and device a telemetry or status topic names, and its channel (any text: a
    topic of an unknown channel is parsed, and refused by the caller)."""

    site_code: str
    device_code: str
    channel: str


def device_topic(root: str, site_code: str, device_code: str, channel: Channel) -> str:
    """The topic of one device's channel: `{root}/{site}/{device}/{channel}`."""
    return f"{root}/{site_code}/{device_code}/{channel}"


def telemetry_topic(root: str, site_code: str, device_code: str) -> str:
    """Where a device publishes its readings."""
    return device_topic(root, site_code, device_code, "telemetry")


def status_topic(root: str, site_code: str, device_code: str) -> str:
    """Where a device publishes online/offline (and its last will)."""
    return device_topic(root, site_code, device_code, "status")


def parse_topic(topic: str, root: str) -> TopicAddress | None:
    """Split `{root}/{site}/{device}/{channel}`; None if the topic has another shape."""
    prefix = root + "/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) :].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return TopicAddress(parts[0], parts[1], parts[2])


def subscription_filters(root: str, site_codes: Iterable[str] = ()) -> list[str]:
    """MQTT topic filters for the telemetry and status of some sites (none given: every site)."""
    sites = sorted(site_codes) or ["+"]
    return [f"{root}/{site}/+/{channel}" for site in sites for channel in CHANNELS]


def encode_telemetry(samples: Sequence[tuple[int, Mapping[str, float]]]) -> bytes:
    """A telemetry payload as gateways send it: one `{"ts", "values"}` object per sample, in an
    array (a gateway's flush of buffered samples) unless there is exactly one.

    Args:
        samples: (epoch milliseconds, {metric: value}) pairs.
    """
    objects = [{"ts": ts_ms, "values": dict(values)} for ts_ms, values in samples]
    body = objects[0] if len(objects) == 1 else objects
    return json.dumps(body, separators=(",", ":")).encode()


class Reason(StrEnum):
    """Why a payload (or part of it) went to dead letters; the values are stored and exported."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_JSON = "invalid_json"
    WRONG_SHAPE = "wrong_shape"
    TOO_MANY_READINGS = "too_many_readings"
    BAD_TOPIC = "bad_topic"
    UNKNOWN_SITE = "unknown_site"
    UNKNOWN_DEVICE = "unknown_device"
    DEVICE_NOT_IN_SITE = "device_not_in_site"
    UNKNOWN_METRIC = "unknown_metric"
    NOT_A_NUMBER = "not_a_number"
    NOT_FINITE = "not_finite"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    # Found when storing, not decoding: a reading whose (series, time) is already stored with
    # another value. The stored value is kept (never overwritten); the payload is kept here.
    DUPLICATE_CONFLICT = "duplicate_conflict"
    # Last resorts of ingest, so that no message can stop it: decoding raised (a bug: decoding
    # is meant never to raise), or the database refused the message's contents for a reason
    # other than the connection. The detail names the exception.
    DECODE_FAILED = "decode_failed"
    STORE_FAILED = "store_failed"
