"""The hand-off between paho's network thread and the service: bounded by count and by bytes."""

from __future__ import annotations

import hashlib
import queue
import threading

import paho.mqtt.client as paho
import pytest

from ingest.decode import Reason
from ingest.mqtt import PREFIX_BYTES, Message, PendingMessages, received_message


def _message(size: int, mid: int = 1) -> Message:
    return Message(mid, 1, "t", b"x" * size, 0, 1)


def test_holds_messages_up_to_the_byte_bound_until_they_are_settled() -> None:
    pending = PendingMessages(max_messages=100, max_bytes=1000)
    first, second = _message(600), _message(400)
    assert pending.put(first, 0)
    assert pending.put(second, 0)
    assert not pending.put(_message(1), 0), "past the byte bound"
    taken = [pending.get_nowait(), pending.get_nowait()]
    assert taken == [first, second]
    assert not pending.put(_message(1), 0), "taken is not settled: still held"
    pending.settle(taken)
    assert (pending.held, pending.held_bytes) == (0, 0)
    assert pending.put(_message(1), 0)


def test_holds_messages_up_to_the_count_bound() -> None:
    pending = PendingMessages(max_messages=2, max_bytes=10**9)
    assert pending.put(_message(1), 0)
    assert pending.put(_message(1), 0)
    assert not pending.put(_message(1), 0)


def test_a_message_over_the_byte_bound_passes_alone() -> None:
    pending = PendingMessages(max_messages=100, max_bytes=1000)
    small = _message(10)
    assert pending.put(small, 0)
    assert not pending.put(_message(5000), 0), "not while anything else is held"
    pending.settle([pending.get_nowait()])
    assert pending.put(_message(5000), 0)
    assert pending.peak_held_bytes == 5000
    assert not pending.put(_message(1), 0)


def test_a_blocked_put_goes_on_when_room_is_settled() -> None:
    pending = PendingMessages(max_messages=1, max_bytes=1000)
    held = _message(10)
    assert pending.put(held, 0)
    done = threading.Event()
    thread = threading.Thread(target=lambda: pending.put(_message(10), 5) and done.set())
    thread.start()
    assert not done.wait(0.2)
    pending.settle([pending.get_nowait()])
    assert done.wait(5)
    thread.join()


def test_get_raises_empty_like_a_queue() -> None:
    pending = PendingMessages(max_messages=1, max_bytes=1)
    with pytest.raises(queue.Empty):
        pending.get_nowait()
    with pytest.raises(queue.Empty):
        pending.get(timeout=0.01)


def _paho_message(payload: bytes) -> paho.MQTTMessage:
    msg = paho.MQTTMessage(mid=7, topic=b"hazmon/v1/S/D/telemetry")
    msg.payload, msg.qos = payload, 1
    return msg


def test_a_payload_over_the_limit_is_kept_as_prefix_size_and_hash() -> None:
    payload = b"[" + b" " * 300_000 + b"]"
    message = received_message(_paho_message(payload), connection=1, max_payload_bytes=262_144)
    assert message.payload == payload[:PREFIX_BYTES]
    assert message.payload_size == len(payload)
    assert message.rejection is not None
    assert message.rejection.reason == Reason.PAYLOAD_TOO_LARGE
    assert f"{len(payload)} bytes, limit 262144" in message.rejection.detail
    assert hashlib.sha256(payload).hexdigest() in message.rejection.detail
    assert message.too_large is not None
    assert message.too_large.rejection == message.rejection
    kept = received_message(_paho_message(b"{}"), connection=1, max_payload_bytes=262_144)
    assert (kept.payload, kept.payload_size, kept.too_large) == (b"{}", 2, None)
