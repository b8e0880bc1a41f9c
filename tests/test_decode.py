"""ingest.decode: pure decoding and validation, every reason, golden columns."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ingest.decode import (
    DeviceSeries,
    Limits,
    Reason,
    SeriesLookup,
    TopicAddress,
    decode_telemetry,
    parse_topic,
)

NOW_US = 1_790_000_000_000_000
NOW_MS = NOW_US // 1000
LIMITS = Limits(
    max_payload_bytes=4096,
    max_readings_per_payload=10,
    max_reading_age_s=3600,
    max_future_skew_s=60,
)
LOOKUP = SeriesLookup(
    devices={("S1", "D1"): DeviceSeries(7, "tower_crane", {"load_t": 11, "moment_ratio": 12})},
    sites=frozenset({"S1", "S2"}),
    device_sites={"D1": frozenset({"S1"})},
    metrics_by_kind={"tower_crane": frozenset({"load_t", "moment_ratio", "wind_speed_ms"})},
)
HERE = TopicAddress("S1", "D1", "telemetry")


def decode(payload: bytes | str, address: TopicAddress = HERE):
    raw = payload.encode() if isinstance(payload, str) else payload
    return decode_telemetry(address, raw, NOW_US, LIMITS, LOOKUP)


def test_single_object_becomes_columns() -> None:
    d = decode(json.dumps({"ts": NOW_MS, "values": {"load_t": 3.5, "moment_ratio": 0.4}}))
    assert d.rejection is None
    assert d.series_id.tolist() == [11, 12]
    assert d.time_us.tolist() == [NOW_US, NOW_US]
    assert d.value.tolist() == [3.5, 0.4]


def test_array_and_missing_ts_takes_receive_time() -> None:
    d = decode(
        json.dumps([{"ts": NOW_MS - 1000, "values": {"load_t": 1}}, {"values": {"load_t": 2}}])
    )
    assert d.rejection is None
    assert d.time_us.tolist() == [NOW_US - 1_000_000, NOW_US]
    assert d.value.dtype == np.float64
    assert d.value.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("payload", "address", "reason"),
    [
        (b"\xff\xfe", HERE, Reason.INVALID_UTF8),
        (b'{"values": ', HERE, Reason.INVALID_JSON),
        (b"[]", HERE, Reason.WRONG_SHAPE),
        (b'"text"', HERE, Reason.WRONG_SHAPE),
        (b'{"values": [1, 2]}', HERE, Reason.WRONG_SHAPE),
        (b'{"ts": "yesterday", "values": {"load_t": 1}}', HERE, Reason.WRONG_SHAPE),
        (b'{"ts": 1.5e12, "values": {"load_t": 1}}', HERE, Reason.WRONG_SHAPE),
        (b'{"values": {}}', HERE, Reason.WRONG_SHAPE),
        (b'{"values": {"load_t": 1}}', TopicAddress("S9", "D1", "telemetry"), Reason.UNKNOWN_SITE),
        (
            b'{"values": {"load_t": 1}}',
            TopicAddress("S1", "D9", "telemetry"),
            Reason.UNKNOWN_DEVICE,
        ),
        (
            b'{"values": {"load_t": 1}}',
            TopicAddress("S2", "D1", "telemetry"),
            Reason.DEVICE_NOT_IN_SITE,
        ),
        (b'{"values": {"depth": 1}}', HERE, Reason.UNKNOWN_METRIC),
        (b'{"values": {"wind_speed_ms": 1}}', HERE, Reason.UNKNOWN_METRIC),
        (b'{"values": {"load_t": "1"}}', HERE, Reason.NOT_A_NUMBER),
        (b'{"values": {"load_t": true}}', HERE, Reason.NOT_A_NUMBER),
        (b'{"values": {"load_t": null}}', HERE, Reason.NOT_A_NUMBER),
        (b'{"values": {"load_t": NaN}}', HERE, Reason.NOT_FINITE),
        (b'{"values": {"load_t": Infinity}}', HERE, Reason.NOT_FINITE),
        (b'{"values": {"load_t": 1e999}}', HERE, Reason.NOT_FINITE),
        (b'{"ts": 1000, "values": {"load_t": 1}}', HERE, Reason.TIMESTAMP_TOO_OLD),
        (
            b'{"ts": 99999999999999999999, "values": {"load_t": 1}}',
            HERE,
            Reason.TIMESTAMP_IN_FUTURE,
        ),
        (b'{"ts": -99999999999999999999, "values": {"load_t": 1}}', HERE, Reason.TIMESTAMP_TOO_OLD),
        (
            json.dumps([{"values": {"load_t": i}} for i in range(11)]).encode(),
            HERE,
            Reason.TOO_MANY_READINGS,
        ),
        (b'{"values": {"load_t": 1}, "x": "' + b"y" * 5000 + b'"}', HERE, Reason.PAYLOAD_TOO_LARGE),
    ],
)
def test_each_bad_payload_is_rejected_with_its_reason(
    payload: bytes, address: TopicAddress, reason: Reason
) -> None:
    d = decode(payload, address)
    assert d.rejection is not None
    assert d.rejection.reason == reason
    assert d.rejection.detail
    assert d.count == 0


def test_good_values_are_kept_beside_refused_ones() -> None:
    payload = {"ts": NOW_MS, "values": {"load_t": 2.0, "moment_ratio": "x", "nope": 1}}
    d = decode(json.dumps(payload))
    assert d.series_id.tolist() == [11]
    assert d.value.tolist() == [2.0]
    assert d.rejection is not None
    assert d.rejection.reason == Reason.NOT_A_NUMBER
    assert d.rejected_values == 2


def test_timestamp_window_edges() -> None:
    edge_old = NOW_MS - LIMITS.max_reading_age_s * 1000
    edge_new = NOW_MS + LIMITS.max_future_skew_s * 1000
    ok = decode(
        json.dumps(
            [{"ts": edge_old, "values": {"load_t": 1}}, {"ts": edge_new, "values": {"load_t": 2}}]
        )
    )
    assert ok.rejection is None
    assert ok.count == 2
    late = decode(json.dumps({"ts": edge_new + 1, "values": {"load_t": 1}}))
    assert late.rejection is not None
    assert late.rejection.reason == Reason.TIMESTAMP_IN_FUTURE


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("r/v1/S1/D1/telemetry", TopicAddress("S1", "D1", "telemetry")),
        ("r/v1/S1/D1/status", TopicAddress("S1", "D1", "status")),
        ("r/v1/S1/D1", None),
        ("r/v1/S1//telemetry", None),
        ("other/S1/D1/telemetry", None),
        ("r/v1/S1/D1/telemetry/x", None),
    ],
)
def test_parse_topic(topic: str, expected: TopicAddress | None) -> None:
    assert parse_topic(topic, "r/v1") == expected
