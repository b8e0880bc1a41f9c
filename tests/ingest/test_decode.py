"""ingest.decode and ingest.status: pure decoding and validation, every reason, golden columns,
hostile input (deep nesting, huge numbers, absurd times) and fuzzing: decoding never raises."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hazmon.wire import Reason, TopicAddress, parse_topic
from ingest.decode import (
    MAX_NESTING_DEPTH,
    Decoded,
    DeviceSeries,
    Limits,
    Rejection,
    SeriesLookup,
    decode_telemetry,
    nesting_depth,
)
from ingest.records import DeviceStatus
from ingest.status import parse_status

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


# --- hostile input: nothing raises, every refusal has a reason ----------------------------

WIDE = Limits(
    max_payload_bytes=262_144,
    max_readings_per_payload=1000,
    max_reading_age_s=3600,
    max_future_skew_s=60,
)
STATUS = TopicAddress("S1", "D1", "status")
DEEP = 10_000


def _nested(depth: int, inner: str = "1") -> str:
    """`depth` levels of alternating arrays and objects around `inner`."""
    opens = "".join("[" if level % 2 else '{"k":' for level in range(depth))
    closes = "".join("]" if level % 2 else "}" for level in reversed(range(depth)))
    return opens + inner + closes


def _wide(payload: str) -> Decoded:
    return decode_telemetry(HERE, payload.encode(), NOW_US, WIDE, LOOKUP)


def _status(payload: str | bytes) -> DeviceStatus | Rejection:
    raw = payload.encode() if isinstance(payload, str) else payload
    return parse_status(STATUS, raw, NOW_US, WIDE)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param("[" * DEEP + "]" * DEEP, Reason.WRONG_SHAPE, id="deep-arrays"),
        pytest.param(_nested(DEEP), Reason.WRONG_SHAPE, id="deep-mixed"),
        pytest.param(
            '{"values": {"load_t": ' + _nested(DEEP) + "}}", Reason.WRONG_SHAPE, id="deep-value"
        ),
        pytest.param(
            '{"values": ' + _nested(DEEP) + "}", Reason.WRONG_SHAPE, id="deep-values-object"
        ),
        pytest.param(
            '{"ts": ' + _nested(DEEP) + ', "values": {"load_t": 1}}',
            Reason.WRONG_SHAPE,
            id="deep-ts",
        ),
        # msgspec skips unknown fields by recursing into them: RecursionError on the fast path.
        pytest.param(
            '{"values": {"load_t": 1}, "meta": ' + _nested(DEEP) + "}",
            Reason.WRONG_SHAPE,
            id="deep-unknown-field",
        ),
        pytest.param(
            '{"values": {"load_t": ' + "9" * 400 + "}}", Reason.NOT_FINITE, id="400-digit-value"
        ),
        pytest.param(
            '{"values": {"load_t": -' + "9" * 5000 + "}}",
            Reason.NOT_FINITE,
            id="5000-digit-value",
        ),
        pytest.param(
            '{"values": {"load_t": NaN, "moment_ratio": ' + "9" * 5000 + "}}",
            Reason.NOT_FINITE,
            id="5000-digit-value-slow-path",
        ),
        pytest.param(
            '{"ts": ' + "9" * 5000 + ', "values": {"load_t": 1}}',
            Reason.TIMESTAMP_IN_FUTURE,
            id="5000-digit-ts",
        ),
        pytest.param(
            '{"ts": -' + "9" * 5000 + ', "values": {"load_t": 1}}',
            Reason.TIMESTAMP_TOO_OLD,
            id="5000-digit-negative-ts",
        ),
        pytest.param(
            '[{"ts": ' + "9" * 5000 + ', "values": {"load_t": "x"}}]',
            Reason.NOT_A_NUMBER,
            id="5000-digit-ts-slow-path",
        ),
        pytest.param(
            '{"ts": "' + "y" * 100_000 + '", "values": {"load_t": 1}}',
            Reason.WRONG_SHAPE,
            id="huge-string-ts",
        ),
        pytest.param(
            '{"values": {"' + "m" * 100_000 + '": 1}}', Reason.UNKNOWN_METRIC, id="huge-metric"
        ),
        pytest.param('"' + "\\" * 10_000 + '"', Reason.WRONG_SHAPE, id="backslashes"),
        pytest.param('"' + "\\" * 9_999 + '"', Reason.INVALID_JSON, id="escaped-last-quote"),
        pytest.param(
            '{"values": "' + "[" * DEEP + '"}', Reason.WRONG_SHAPE, id="brackets-in-string"
        ),
    ],
)
def test_hostile_telemetry_is_refused_with_its_reason_and_a_short_detail(
    payload: str, reason: Reason
) -> None:
    d = _wide(payload)
    assert d.rejection is not None
    assert d.rejection.reason == reason, d.rejection
    assert d.count == 0
    assert 0 < len(d.rejection.detail) <= 300


def test_good_values_survive_a_huge_number_beside_them() -> None:
    d = _wide(f'{{"ts": {NOW_MS}, "values": {{"load_t": 2.5, "moment_ratio": {"9" * 400}}}}}')
    assert d.value.tolist() == [2.5]
    assert d.rejection is not None
    assert d.rejection.reason == Reason.NOT_FINITE


def test_long_but_representable_integers_read_as_doubles_on_both_paths() -> None:
    digits = "1" + "0" * 24  # 25 digits: no int64, a fine double
    fast = _wide(f'{{"ts": {NOW_MS}, "values": {{"load_t": {digits}}}}}')
    slow = _wide(f'{{"ts": {NOW_MS}, "values": {{"load_t": {digits}, "moment_ratio": "x"}}}}')
    assert fast.value.tolist() == slow.value.tolist() == [1e24]


@pytest.mark.parametrize("depth", [1, 3, MAX_NESTING_DEPTH])
def test_shallow_unknown_fields_do_not_change_the_reason(depth: int) -> None:
    meta = _nested(depth - 1)
    d = _wide('{"values": {"load_t": 1, "moment_ratio": NaN}, "meta": ' + meta + "}")
    assert d.rejection is not None
    assert d.rejection.reason == Reason.NOT_FINITE
    assert d.value.tolist() == [1.0]


YEAR_3000_MS = 32_503_680_000_000


def _at(word: str, ts: int) -> str:
    return json.dumps({"status": word, "ts": ts})


YEAR_10000_MS = 253_402_300_800_000


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(
            '{"status": ' + _nested(DEEP, '"online"') + "}", Reason.WRONG_SHAPE, id="deep"
        ),
        pytest.param(
            '{"status": "online", "meta": ' + "[" * DEEP + "]" * DEEP + "}",
            Reason.WRONG_SHAPE,
            id="deep-unknown-field",
        ),
        pytest.param(
            '{"status": "offline", "ts": ' + "9" * 5000 + "}",
            Reason.TIMESTAMP_IN_FUTURE,
            id="5000-digit-ts",
        ),
        pytest.param(
            '{"status": "offline", "ts": -' + "9" * 5000 + "}",
            Reason.TIMESTAMP_TOO_OLD,
            id="5000-digit-negative-ts",
        ),
        pytest.param(_at("online", NOW_US), Reason.TIMESTAMP_IN_FUTURE, id="ts-in-us"),
        pytest.param(
            _at("online", YEAR_10000_MS),
            Reason.TIMESTAMP_IN_FUTURE,
            id="past-year-9999",
        ),
        pytest.param(
            _at("offline", YEAR_3000_MS),
            Reason.TIMESTAMP_IN_FUTURE,
            id="year-3000",
        ),
        pytest.param(
            _at("online", NOW_MS // 1000),
            Reason.TIMESTAMP_TOO_OLD,
            id="ts-in-s",
        ),
        pytest.param('{"status": "online", "ts": ', Reason.INVALID_JSON, id="truncated"),
        pytest.param(b'{"status": "on\xff"}', Reason.INVALID_UTF8, id="not-utf8"),
        pytest.param("x" * 300_000, Reason.PAYLOAD_TOO_LARGE, id="too-large"),
        pytest.param("maybe", Reason.WRONG_SHAPE, id="unknown-word"),
    ],
)
def test_hostile_status_is_refused_with_its_reason(payload: str | bytes, reason: Reason) -> None:
    result = _status(payload)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    assert 0 < len(result.detail) <= 300


def test_status_inside_the_window_keeps_its_time() -> None:
    edge_old = NOW_MS - WIDE.max_reading_age_s * 1000
    edge_new = NOW_MS + WIDE.max_future_skew_s * 1000
    assert _status("online") == DeviceStatus("S1", "D1", True, NOW_US)
    assert _status(_at("offline", edge_old)) == DeviceStatus("S1", "D1", False, edge_old * 1000)
    assert _status(_at("online", edge_new)) == DeviceStatus("S1", "D1", True, edge_new * 1000)
    assert _status('{"status": "online", "ts": 1.5}') == DeviceStatus("S1", "D1", True, NOW_US)


# --- the nesting scan against a recursive reference -----------------------------------------


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


_TRICKY_TEXT = st.text(alphabet=st.sampled_from('[]{}"\\,:ab\n\u00e9\u4e2d'), max_size=12)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TRICKY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY_TEXT, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(_JSON, st.booleans())
def test_nesting_depth_is_exact_on_valid_json(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert nesting_depth(text.encode()) == _depth(value)


# --- fuzzing: decode_telemetry and parse_status never raise ----------------------------------

_NUMBER = (
    st.integers()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats()
    | st.sampled_from([NOW_MS, NOW_MS - 10**7, NOW_MS + 10**7, NOW_US, 2**63, -(2**63) - 1])
)
_METRIC = st.sampled_from(["load_t", "moment_ratio", "wind_speed_ms", "depth", ""]) | st.text(
    max_size=8
)
_ANY = st.recursive(
    st.none() | st.booleans() | _NUMBER | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=12,
)
_VALUES = st.dictionaries(_METRIC, _NUMBER | _ANY, max_size=6) | _ANY
_ENTRY = st.fixed_dictionaries({"values": _VALUES}, optional={"ts": _NUMBER | _ANY, "meta": _ANY})
_TELEMETRY = _ENTRY | st.lists(_ENTRY | _ANY, max_size=4) | _ANY
_STATUS_JSON = st.fixed_dictionaries(
    {"status": st.sampled_from(["online", "offline", "ON", "x"]) | _ANY},
    optional={"ts": _NUMBER | _ANY, "meta": _ANY},
)


def _encoded(value: object) -> bytes:
    return json.dumps(value).encode()  # NaN and ±Infinity as the literals gateways send


def _deeply(depth: int, where: str) -> bytes:
    deep = _nested(depth)
    return {
        "top": deep,
        "values": '{"values": ' + deep + "}",
        "value": '{"values": {"load_t": ' + deep + "}}",
        "ts": '{"ts": ' + deep + ', "values": {"load_t": 1}}',
        "meta": '{"values": {"load_t": 1}, "meta": ' + deep + "}",
        "status": '{"status": ' + deep + "}",
    }[where].encode()


_PAYLOADS = (
    st.binary(max_size=300)
    | _TELEMETRY.map(_encoded)
    | _STATUS_JSON.map(_encoded)
    | st.builds(
        _deeply,
        st.integers(1, 20_000),
        st.sampled_from(["top", "values", "value", "ts", "meta", "status"]),
    )
)


def _assert_valid_decoded(d: Decoded) -> None:
    assert isinstance(d, Decoded)
    assert d.series_id.dtype == d.time_us.dtype == np.int64
    assert d.value.dtype == np.float64
    assert len(d.series_id) == len(d.time_us) == len(d.value) == d.count
    assert np.isfinite(d.value).all()
    assert (d.time_us >= NOW_US - WIDE.max_reading_age_s * 1_000_000).all()
    assert (d.time_us <= NOW_US + WIDE.max_future_skew_s * 1_000_000).all()
    if d.rejection is None:
        assert d.count > 0
    else:
        assert d.rejection.reason in set(Reason)
        assert d.rejection.detail


@settings(max_examples=600, deadline=None)
@given(_PAYLOADS)
def test_decode_telemetry_never_raises(payload: bytes) -> None:
    _assert_valid_decoded(decode_telemetry(HERE, payload, NOW_US, WIDE, LOOKUP))


@settings(max_examples=400, deadline=None)
@given(_PAYLOADS, st.data())
def test_decode_telemetry_never_raises_on_a_mangled_payload(
    payload: bytes, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(payload)))
    cut = data.draw(st.integers(0, 4))
    insert = data.draw(
        st.binary(max_size=4) | st.sampled_from([b"[", b"{", b'"', b"\\", b"9" * 400])
    )
    mangled = payload[:at] + insert + payload[at + cut :]
    _assert_valid_decoded(decode_telemetry(HERE, mangled, NOW_US, WIDE, LOOKUP))


@settings(max_examples=600, deadline=None)
@given(_PAYLOADS | st.sampled_from([b"online", b"offline", b" 1 ", b"0"]))
def test_parse_status_never_raises(payload: bytes) -> None:
    result = parse_status(STATUS, payload, NOW_US, WIDE)
    if isinstance(result, DeviceStatus):
        assert NOW_US - WIDE.max_reading_age_s * 1_000_000 <= result.at_us
        assert result.at_us <= NOW_US + WIDE.max_future_skew_s * 1_000_000
    else:
        assert isinstance(result, Rejection)
        assert result.reason in set(Reason)
        assert result.detail
