"""Decode and validate gateway telemetry into numpy columns; pure, no I/O.

The wire format (DESIGN.md, the ThingsBoard telemetry shape): a JSON object
`{"ts": <epoch ms>, "values": {"<metric>": <number>, ...}}` or an array of such objects, on the
topic `{root}/{site_code}/{device_code}/telemetry`. A payload without `ts` takes the receive time.

Bad input is never an exception to the caller: it comes back as a `Rejection` with a
machine-readable reason, so ingest can dead-letter it with the raw bytes and go on. That holds
for hostile input too: nesting is bounded (`MAX_NESTING_DEPTH`, checked by a linear scan before
any recursive parser runs) and so is the size of integer literals (`MAX_INT_DIGITS`). Valid
readings of a payload are kept even when some of its values are rejected; the payload is then
dead-lettered too, so the rejected values can be replayed once the registry is fixed (replaying
the good ones again is harmless: storage is idempotent on (series, time)).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
from numpy.typing import NDArray

from hazmon.wire import Reason, TopicAddress

if TYPE_CHECKING:
    from hazmon.settings import IngestSettings


MAX_NESTING_DEPTH = 8
"""Deepest nesting of arrays and objects a payload may have. Telemetry needs 3 (array, entry,
`values`), a status object 1; the rest is room for a gateway's own metadata beside `values`.
Python's json and msgspec recurse once per level and raise RecursionError near the interpreter's
recursion limit (1000), so deeper payloads are refused (wrong_shape) before they are parsed."""

MAX_INT_DIGITS = 19
"""Integer literals with more digits (19 hold any int64) are read as the nearest double and
never converted to an exact Python int: that conversion costs quadratic time and is refused past
4300 digits, and the double of an integer past 1.8e308 is infinite (refused as not_finite)."""


@dataclass(frozen=True, slots=True)
class Limits:
    """What a payload may be; from Settings, in the units of their names."""

    max_payload_bytes: int
    max_readings_per_payload: int
    max_reading_age_s: int
    max_future_skew_s: int

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> Limits:
        """The limits configured by `HAZMON_MAX_*`."""
        return cls(
            max_payload_bytes=settings.max_payload_bytes,
            max_readings_per_payload=settings.max_readings_per_payload,
            max_reading_age_s=settings.max_reading_age_s,
            max_future_skew_s=settings.max_future_skew_s,
        )


@dataclass(frozen=True, slots=True)
class DeviceSeries:
    """One registered device: the series id of each metric it may send."""

    device_id: int
    hazard_kind: str
    series_by_metric: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class SeriesLookup:
    """What decoding needs from the registry: devices by (site, device) code and the catalogue."""

    devices: Mapping[tuple[str, str], DeviceSeries]
    sites: frozenset[str]
    device_sites: Mapping[str, frozenset[str]]
    metrics_by_kind: Mapping[str, frozenset[str]]

    @classmethod
    def empty(cls) -> SeriesLookup:
        """A lookup that knows no site: every payload is rejected as unknown_site."""
        return cls({}, frozenset(), {}, {})


@dataclass(frozen=True, slots=True)
class Rejection:
    """A reason and a human-readable detail naming the offending part."""

    reason: Reason
    detail: str


_EMPTY_I64: NDArray[np.int64] = np.empty(0, dtype=np.int64)
_EMPTY_F64: NDArray[np.float64] = np.empty(0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Decoded:
    """The readings of one payload as columns, plus the rejection if anything was refused."""

    series_id: NDArray[np.int64] = field(default_factory=lambda: _EMPTY_I64)
    time_us: NDArray[np.int64] = field(default_factory=lambda: _EMPTY_I64)
    value: NDArray[np.float64] = field(default_factory=lambda: _EMPTY_F64)
    rejection: Rejection | None = None
    rejected_values: int = 0

    @property
    def count(self) -> int:
        """Number of accepted readings."""
        return len(self.series_id)


def _reject(reason: Reason, detail: str) -> Decoded:
    return Decoded(rejection=Rejection(reason, detail))


class PayloadError(ValueError):
    """A payload refused before its shape is examined (not UTF-8, not JSON, nested too deep)."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(f"{rejection.reason}: {rejection.detail}")
        self.rejection = rejection


class _LongInteger(float):
    """An integer literal longer than `MAX_INT_DIGITS`, held as the nearest double (or ±inf)."""

    __slots__ = ()


def _parse_int(literal: str) -> int | float:
    digits = len(literal) - literal.startswith("-")
    return int(literal) if digits <= MAX_INT_DIGITS else _LongInteger(literal)


def nesting_depth(payload: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text, brackets in strings not counted.

    A linear scan with numpy, no recursion: a quote is escaped when an odd run of backslashes
    precedes it, and a bracket is inside a string when an odd number of unescaped quotes
    precedes it. Exact for valid JSON; for invalid JSON exact up to the first error, which is
    as far as a parser reads, so a parser never nests deeper than this says.

    Args:
        payload: UTF-8 bytes (ASCII brackets, quotes and backslashes never occur inside a
            multi-byte character).
    """
    b = np.frombuffer(payload, dtype=np.uint8)
    # +1 at an opening bracket, -1 at a closing one (comparisons: faster than a lookup table).
    step = ((b == ord("[")) | (b == ord("{"))).view(np.int8) - (
        (b == ord("]")) | (b == ord("}"))
    ).view(np.int8)
    quotes = np.flatnonzero(b == ord('"'))
    if quotes.size:
        if b"\\" in payload:
            plain = np.flatnonzero(b != ord("\\"))  # every quote is among them
            at = np.searchsorted(plain, quotes)
            before = np.where(at > 0, plain[np.maximum(at - 1, 0)], -1)
            quotes = quotes[(quotes - before - 1) % 2 == 0]
        brackets = np.flatnonzero(step)
        step = step[brackets[np.searchsorted(quotes, brackets) % 2 == 0]]
    # int32 holds any depth of a payload of up to 2 GB, and sums int8 far faster than int64.
    return int(np.cumsum(step, dtype=np.int32).max(initial=0))


def load_json(payload: bytes) -> Any:
    """Parse a JSON payload within `MAX_NESTING_DEPTH` and `MAX_INT_DIGITS`.

    NaN and ±Infinity literals are accepted (so that such values can be refused as not_finite,
    not invalid_json); long integer literals become doubles (see `MAX_INT_DIGITS`).

    Raises:
        PayloadError: not UTF-8 (invalid_utf8), nested too deep (wrong_shape) or not JSON
            (invalid_json).
    """
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(
            Rejection(Reason.INVALID_UTF8, f"byte {exc.start}: {exc.reason}")
        ) from None
    # Counting brackets is cheap; the exact scan runs only where the count allows deep nesting.
    if payload.count(b"[") + payload.count(b"{") > MAX_NESTING_DEPTH:
        depth = nesting_depth(payload)
        if depth > MAX_NESTING_DEPTH:
            detail = f"nested {depth} levels deep, limit {MAX_NESTING_DEPTH}"
            raise PayloadError(Rejection(Reason.WRONG_SHAPE, detail))
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        detail = f"line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise PayloadError(Rejection(Reason.INVALID_JSON, detail)) from None
    except RecursionError:  # not reached after the scan; kept so that a miscount cannot crash
        raise PayloadError(Rejection(Reason.WRONG_SHAPE, "nested too deeply")) from None


_MS_BOUND = 10**15  # epoch ms of about the year 33658: far outside any accepted window


def _clamp_ms(ts_ms: int) -> int:
    return max(-_MS_BOUND, min(ts_ms, _MS_BOUND))


def json_epoch_ms(ts: object) -> int | None:
    """An epoch in ms from a parsed JSON value, clamped far outside any accepted window; None if
    it is not a JSON integer (a bool, a fraction, a string...)."""
    if isinstance(ts, _LongInteger):
        return _MS_BOUND if ts > 0 else -_MS_BOUND
    if isinstance(ts, int) and not isinstance(ts, bool):
        return _clamp_ms(ts)
    return None


def time_window_rejection(time_us: int, received_us: int, limits: Limits) -> Rejection | None:
    """Why a time lies outside the accepted window around its receipt, or None if inside.

    Args:
        time_us: the time a message claims, epoch microseconds.
        received_us: its receive time, epoch microseconds.
        limits: `max_reading_age_s` and `max_future_skew_s`.
    """
    if time_us < received_us - limits.max_reading_age_s * 1_000_000:
        return Rejection(
            Reason.TIMESTAMP_TOO_OLD, f"ts older than {limits.max_reading_age_s} s before receipt"
        )
    if time_us > received_us + limits.max_future_skew_s * 1_000_000:
        return Rejection(
            Reason.TIMESTAMP_IN_FUTURE,
            f"ts more than {limits.max_future_skew_s} s after receipt",
        )
    return None


def brief(value: object, max_chars: int = 60) -> str:
    """`repr(value)` cut to `max_chars`: details name the offending part, never dump it."""
    text = repr(value)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


class _Envelope(msgspec.Struct, forbid_unknown_fields=False):
    values: dict[str, float]
    ts: int | None = None


_FAST = msgspec.json.Decoder(_Envelope | list[_Envelope])


def decode_telemetry(
    address: TopicAddress,
    payload: bytes,
    received_us: int,
    limits: Limits,
    lookup: SeriesLookup,
) -> Decoded:
    """Decode one telemetry payload into readings, or say why it cannot be stored.

    Args:
        address: site and device from the topic.
        payload: the raw MQTT payload.
        received_us: receive time, epoch microseconds (UTC); used when `ts` is absent.
        limits: size, count and time-window limits.
        lookup: the registry's devices and metrics.
    """
    if len(payload) > limits.max_payload_bytes:
        return _reject(
            Reason.PAYLOAD_TOO_LARGE,
            f"{len(payload)} bytes, limit {limits.max_payload_bytes}",
        )
    device = lookup.devices.get((address.site_code, address.device_code))
    if device is None:
        return _reject(*_unknown_device(address, lookup))
    try:
        envelopes = _FAST.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        # msgspec recurses into unknown fields too: deep nesting anywhere lands here, where it
        # is measured without recursion before anything parses it.
        return _decode_slow(payload, device, received_us, limits, lookup)
    if isinstance(envelopes, _Envelope):
        envelopes = [envelopes]
    return _columns(envelopes, device, received_us, limits, lookup)


def _unknown_device(address: TopicAddress, lookup: SeriesLookup) -> tuple[Reason, str]:
    if address.site_code not in lookup.sites:
        return Reason.UNKNOWN_SITE, f"site {brief(address.site_code)} is not registered"
    elsewhere = lookup.device_sites.get(address.device_code)
    if elsewhere:
        return (
            Reason.DEVICE_NOT_IN_SITE,
            f"device {brief(address.device_code)} is registered at site(s) {sorted(elsewhere)}, "
            f"not at {brief(address.site_code)}",
        )
    return (
        Reason.UNKNOWN_DEVICE,
        f"device {brief(address.device_code)} is not registered at site {brief(address.site_code)}",
    )


def _columns(
    envelopes: list[_Envelope],
    device: DeviceSeries,
    received_us: int,
    limits: Limits,
    lookup: SeriesLookup,
) -> Decoded:
    n_values = sum(len(e.values) for e in envelopes)
    if not envelopes or n_values == 0:
        return _reject(Reason.WRONG_SHAPE, "payload holds no readings")
    if n_values > limits.max_readings_per_payload:
        return _reject(
            Reason.TOO_MANY_READINGS,
            f"{n_values} readings, limit {limits.max_readings_per_payload}",
        )
    series_id = np.empty(n_values, dtype=np.int64)
    time_us = np.empty(n_values, dtype=np.int64)
    value = np.empty(n_values, dtype=np.float64)
    series_by_metric = device.series_by_metric
    n = 0
    first_problem: Rejection | None = None
    rejected = 0
    for envelope in envelopes:
        # Clamped so an absurd ts cannot overflow int64; the window check below refuses it.
        ts_us = received_us if envelope.ts is None else _clamp_ms(envelope.ts) * 1000
        for metric, reading in envelope.values.items():
            sid = series_by_metric.get(metric)
            if sid is None:
                rejected += 1
                if first_problem is None:
                    first_problem = _metric_problem(metric, device, lookup)
                continue
            series_id[n] = sid
            time_us[n] = ts_us
            value[n] = reading
            n += 1
    series_id, time_us, value = series_id[:n], time_us[:n], value[:n]
    keep = np.isfinite(value)
    if not keep.all():
        rejected += int((~keep).sum())
        first_problem = first_problem or Rejection(
            Reason.NOT_FINITE, "value is NaN, infinite or beyond the double range"
        )
    oldest_us = received_us - limits.max_reading_age_s * 1_000_000
    too_old = time_us < oldest_us
    too_new = time_us > received_us + limits.max_future_skew_s * 1_000_000
    if too_old.any() or too_new.any():
        rejected += int((keep & (too_old | too_new)).sum())
        if first_problem is None:
            # The oldest time if any is too old, else the newest: the reason of the first kind.
            worst_us = int(time_us.min() if too_old.any() else time_us.max())
            first_problem = time_window_rejection(worst_us, received_us, limits)
        keep &= ~(too_old | too_new)
    if rejected:
        series_id, time_us, value = series_id[keep], time_us[keep], value[keep]
        assert first_problem is not None
        detail = f"{first_problem.detail} ({rejected} of {n_values} values refused)"
        return Decoded(series_id, time_us, value, Rejection(first_problem.reason, detail), rejected)
    return Decoded(series_id, time_us, value)


def _metric_problem(metric: str, device: DeviceSeries, lookup: SeriesLookup) -> Rejection:
    known = lookup.metrics_by_kind.get(device.hazard_kind, frozenset())
    if metric in known:
        return Rejection(
            Reason.UNKNOWN_METRIC,
            f"metric {brief(metric)} is not configured on this device",
        )
    return Rejection(
        Reason.UNKNOWN_METRIC,
        f"metric {brief(metric)} is not a {device.hazard_kind} metric "
        f"(known: {', '.join(sorted(known))})",
    )


def _decode_slow(
    payload: bytes,
    device: DeviceSeries,
    received_us: int,
    limits: Limits,
    lookup: SeriesLookup,
) -> Decoded:
    """Classify a payload the fast typed decoder refused, precisely enough to name the reason."""
    try:
        raw = load_json(payload)
    except PayloadError as exc:
        return Decoded(rejection=exc.rejection)
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        return _reject(Reason.WRONG_SHAPE, "empty array")
    if len(items) > limits.max_readings_per_payload:
        return _reject(
            Reason.TOO_MANY_READINGS,
            f"{len(items)} entries, limit {limits.max_readings_per_payload}",
        )
    envelopes: list[_Envelope] = []
    non_numbers: list[str] = []
    non_finite = False
    for index, item in enumerate(items):
        shape_error = _shape_error(item)
        if shape_error:
            return _reject(Reason.WRONG_SHAPE, f"entry {index}: {shape_error}")
        values: dict[str, float] = {}
        for metric, reading in item["values"].items():
            if isinstance(reading, bool) or not isinstance(reading, int | float):
                non_numbers.append(metric)
            elif not math.isfinite(reading):
                non_finite = True
            else:
                values[metric] = float(reading)
        envelopes.append(_Envelope(values=values, ts=json_epoch_ms(item.get("ts"))))
    if non_numbers or non_finite:
        decoded = (
            _columns(envelopes, device, received_us, limits, lookup)
            if any(e.values for e in envelopes)
            else Decoded()
        )
        refused = len(non_numbers) + (1 if non_finite and not non_numbers else 0)
        reason, detail = (
            (
                Reason.NOT_A_NUMBER,
                f"values of {brief(sorted(set(non_numbers)), 200)} are not numbers",
            )
            if non_numbers
            else (Reason.NOT_FINITE, "value is NaN, infinite or beyond the double range")
        )
        return Decoded(
            decoded.series_id,
            decoded.time_us,
            decoded.value,
            Rejection(reason, detail),
            decoded.rejected_values + refused,
        )
    return _columns(envelopes, device, received_us, limits, lookup)


def _shape_error(item: Any) -> str | None:
    if not isinstance(item, dict):
        return f"expected an object, got {type(item).__name__}"
    values = item.get("values")
    if not isinstance(values, dict):
        return "'values' must be an object of metric: number"
    ts = item.get("ts")
    if ts is not None and json_epoch_ms(ts) is None:
        return f"'ts' must be an integer epoch in milliseconds, got {brief(ts)}"
    return None
