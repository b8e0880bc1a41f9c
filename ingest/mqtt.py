"""The one module that talks MQTT for ingest (paho-mqtt 2).

Delivery guarantees come from the broker, not from memory: MQTT 5, QoS 1, a persistent session
(clean start off, session expiry set) under a stable client id, and manual acknowledgement,
so a message is acknowledged only after the transaction holding its readings has committed.

Flow control: the client announces a Receive Maximum of `max_pending`, and hands messages to
the service through `PendingMessages`, which bounds what ingest holds unacknowledged (waiting
there, in the batch being collected or with the writer) by count (`max_pending`) and by payload
bytes (`max_pending_bytes`). A compliant broker sends no more unacknowledged messages than the
Receive Maximum. Mosquitto 2.0.11 (Debian 12) does not honour it past the first acknowledgement
(measured: every PUBACK releases up to Receive Maximum more messages; eclipse-mosquitto issue
#2301), and no broker bounds bytes, so the bound that holds is ours: when either is reached,
paho's network thread blocks in `on_message`, stops reading the socket, and TCP flow control
leaves the backlog queued at the broker (whose queue limits must be set deliberately:
deploy/mosquitto/hazmon.conf, docs/scaling.md). A stall longer than 1.5 keepalives makes the
broker drop the connection; the unacknowledged messages are then redelivered, never lost.

A payload over `max_payload_bytes` is refused here, before it is kept: only its first
`PREFIX_BYTES`, its size and its SHA-256 go on, so a flood of huge payloads costs ingest one
payload at a time (the broker refuses the huge ones anyway: `max_packet_size` in hazmon.conf).

Reconnecting: while the broker is unreachable, ingest polls it every few hundred milliseconds
(`BrokerBackoff`), so that after a broker restart it re-subscribes before gateways (whose
clients typically wait a second or more) publish into a broker that may have lost its session.
A broker that refuses the connection (credentials, ACL) is retried with the slow `Backoff`.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hazmon.backoff import Backoff, BrokerBackoff
from hazmon.settings import MqttEndpoint
from hazmon.timeutil import now_us
from hazmon.wire import Reason
from ingest.decode import Decoded, Rejection

log = logging.getLogger(__name__)

PREFIX_BYTES = 4096
"""What is kept of a payload over `max_payload_bytes`, for its dead letter."""
UNREACHABLE_LOG_EVERY_S = 30.0
"""While the broker stays unreachable, one warning per this many seconds, not per attempt."""


@dataclass(frozen=True, slots=True)
class Message:
    """One received PUBLISH, with the connection it arrived on (acks are only valid there)."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    """The payload, or only its first `PREFIX_BYTES` when `rejection` is set."""
    received_us: int
    connection: int
    dup: bool = False
    """The broker's DUP flag: it sent this message before (to an earlier connection)."""
    payload_size: int = -1
    """Size of the payload as received, bytes (-1 on construction: `len(payload)`)."""
    rejection: Rejection | None = None
    """Set when the payload was refused on receipt (too large); `payload` is then a prefix."""

    def __post_init__(self) -> None:
        if self.payload_size < 0:
            object.__setattr__(self, "payload_size", len(self.payload))

    @property
    def too_large(self) -> Decoded | None:
        """The payload_too_large rejection of a payload refused on receipt, else None."""
        return None if self.rejection is None else Decoded(rejection=self.rejection)


def received_message(
    msg: paho.MQTTMessage, *, connection: int, max_payload_bytes: int | None
) -> Message:
    """A paho message as a `Message`; a payload over `max_payload_bytes` is kept as a prefix.

    The prefix, size and SHA-256 say what arrived (the dead letter's detail) without keeping it.
    """
    payload = msg.payload
    size = len(payload)
    rejection = None
    if max_payload_bytes is not None and size > max_payload_bytes:
        digest = hashlib.sha256(payload).hexdigest()
        payload = payload[:PREFIX_BYTES]
        rejection = Rejection(
            Reason.PAYLOAD_TOO_LARGE,
            f"{size} bytes, limit {max_payload_bytes}; sha256 {digest}; "
            f"first {len(payload)} bytes kept",
        )
    return Message(
        mid=msg.mid,
        qos=msg.qos,
        topic=msg.topic,
        payload=bytes(payload),
        received_us=now_us(),
        connection=connection,
        dup=bool(msg.dup),
        payload_size=size,
        rejection=rejection,
    )


class PendingMessages:
    """The hand-off from paho's network thread to the service, bounded by what ingest holds.

    Every message put here counts until it is settled (acknowledged, or let go as stale),
    wherever it is by then: still here, in the batch being collected or with the writer. `put`
    blocks while `max_messages` messages or `max_bytes` payload bytes are held; a message that
    would pass `max_bytes` on its own is let in once nothing else is held, so nothing deadlocks
    (the held bytes then stay under `max_bytes` plus one message). `get` and `get_nowait` behave
    as `queue.Queue`'s, raising `queue.Empty`.
    """

    def __init__(self, *, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._items: deque[Message] = deque()
        self._changed = threading.Condition()
        self.held = 0
        """Messages put and not yet settled."""
        self.held_bytes = 0
        """Their payload bytes (of a payload refused on receipt: the prefix kept)."""
        self.peak_held_bytes = 0

    def _room_for(self, size: int) -> bool:
        if self.held == 0:
            return True
        return self.held < self.max_messages and self.held_bytes + size <= self.max_bytes

    def put(self, message: Message, timeout_s: float) -> bool:
        """Hold `message` once there is room; False if there was none within `timeout_s`."""
        size = len(message.payload)
        with self._changed:
            if not self._changed.wait_for(lambda: self._room_for(size), timeout_s):
                return False
            self._items.append(message)
            self.held += 1
            self.held_bytes += size
            self.peak_held_bytes = max(self.peak_held_bytes, self.held_bytes)
            self._changed.notify_all()
            return True

    def get(self, block: bool = True, timeout: float | None = None) -> Message:
        """The oldest message not yet taken; raise `queue.Empty` if none came within `timeout`."""
        with self._changed:
            if not self._changed.wait_for(lambda: bool(self._items), timeout if block else 0):
                raise queue.Empty
            return self._items.popleft()

    def get_nowait(self) -> Message:
        """The oldest message not yet taken; raise `queue.Empty` if there is none."""
        return self.get(block=False)

    def qsize(self) -> int:
        """Messages waiting to be taken (not those already in a batch)."""
        return len(self._items)

    def settle(self, messages: Sequence[Message]) -> None:
        """Release the room of messages taken earlier (acknowledged or let go as stale)."""
        if not messages:
            return
        with self._changed:
            self.held -= len(messages)
            self.held_bytes -= sum(len(m.payload) for m in messages)
            self._changed.notify_all()


class MqttSource:
    """Receive QoS 1 messages into a bounded queue; acknowledge them on request."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        *,
        client_id: str,
        topics: list[str],
        max_pending: int,
        session_expiry_s: int,
        keepalive_s: int,
        max_pending_bytes: int = 32 * 1024 * 1024,
        max_payload_bytes: int | None = None,
        backoff: Backoff | None = None,
        reconnect_backoff: Backoff | None = None,
    ) -> None:
        """Args:
        endpoint: the broker.
        client_id: the persistent session's key.
        topics: filters to subscribe to (QoS 1) on every connection.
        max_pending: messages held unacknowledged at most; also the Receive Maximum.
        session_expiry_s: how long the broker keeps the session while ingest is away, s.
        keepalive_s: MQTT keepalive, s.
        max_pending_bytes: payload bytes held unacknowledged at most (one larger message
            passes alone).
        max_payload_bytes: payloads over this are refused on receipt and kept as a prefix;
            None keeps every payload whole.
        backoff: delays after the broker refused the connection (credentials, ACL).
        reconnect_backoff: delays while the broker is unreachable or after the connection
            was lost (short: see the module docstring).
        """
        self._endpoint = endpoint
        self._topics = topics
        self._max_pending = max_pending
        self._max_payload_bytes = max_payload_bytes
        self._session_expiry_s = session_expiry_s
        self._keepalive_s = keepalive_s
        self._backoff = backoff or Backoff()
        self._reconnect_backoff = reconnect_backoff or BrokerBackoff()
        # Full = paho's network thread blocks = ingest stops reading (module docstring).
        self.messages = PendingMessages(max_messages=max_pending, max_bytes=max_pending_bytes)
        self.connected = threading.Event()
        """Set once the subscriptions of the current connection are acknowledged."""
        self.reconnects = 0
        self._refused = False  # the last CONNACK was a refusal
        self._connection = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.max_inflight_messages_set(max_pending)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        """Start the network thread; it connects, and reconnects with jittered backoff."""
        self._thread = threading.Thread(target=self._run, name="mqtt-source", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Disconnect and stop the network thread; unacked messages stay queued at the broker."""
        self._stopping.set()
        self._client.disconnect()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def ack(self, messages: list[Message]) -> int:
        """Acknowledge messages in receive order; skip those of an earlier connection.

        After a reconnect the broker redelivers everything unacknowledged, possibly reusing
        packet ids, so an ack from an older connection could acknowledge a different message.
        Returns how many were acknowledged.
        """
        current = self._connection
        acked = 0
        for message in messages:
            if message.qos > 0 and message.connection == current:
                self._client.ack(message.mid, message.qos)
                acked += 1
        self.messages.settle(messages)
        return acked

    @property
    def pending(self) -> int:
        """Messages received and not yet acknowledged (or let go as stale)."""
        return self.messages.held

    @property
    def pending_bytes(self) -> int:
        """Their payload bytes."""
        return self.messages.held_bytes

    def _run(self) -> None:
        unreachable_since: float | None = None
        last_warning = 0.0
        while not self._stopping.is_set():
            self._refused = False
            try:
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = self._session_expiry_s
                properties.ReceiveMaximum = self._max_pending
                self._client.connect(
                    self._endpoint.host,
                    self._endpoint.port,
                    keepalive=self._keepalive_s,
                    clean_start=False,
                    properties=properties,
                )
                unreachable_since = None
                self._client.loop_forever(retry_first_connection=False)
            except OSError as exc:
                now = time.monotonic()
                if unreachable_since is None or now - last_warning >= UNREACHABLE_LOG_EVERY_S:
                    log.warning(
                        "mqtt connect failed; polling the broker until it answers",
                        extra={
                            "host": self._endpoint.host,
                            "port": self._endpoint.port,
                            "error": str(exc),
                            "unreachable_s": round(now - (unreachable_since or now), 1),
                        },
                    )
                    last_warning = now
                if unreachable_since is None:
                    unreachable_since = now
            if self._stopping.is_set():
                break
            backoff = self._backoff if self._refused else self._reconnect_backoff
            self._stopping.wait(backoff.next_delay_s())

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error(
                "mqtt connection refused",
                extra={"reason": str(reason), "hint": "check HAZMON_MQTT_URL credentials and ACL"},
            )
            self._refused = True
            client.disconnect()
            return
        self._connection += 1
        self._backoff.reset()
        self._reconnect_backoff.reset()
        client.subscribe([(topic, 1) for topic in self._topics])
        log.info(
            "mqtt connected",
            extra={"session_present": flags.session_present, "connection": self._connection},
        )

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            log.error("mqtt subscription refused", extra={"reasons": refused, "hint": "check ACL"})
            return
        self.connected.set()
        log.info("mqtt subscribed", extra={"topics": self._topics})

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            self.reconnects += 1
            log.warning("mqtt disconnected", extra={"reason": str(reason)})

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        message = received_message(
            msg, connection=self._connection, max_payload_bytes=self._max_payload_bytes
        )
        # Blocks while ingest holds its bounds: this is what stops reading (module docstring).
        # On shutdown the message is let go unacknowledged; the broker delivers it again.
        while not self._stopping.is_set():
            if self.messages.put(message, timeout_s=0.5):
                return
