"""The one module that talks MQTT for ingest (paho-mqtt 2).

Delivery guarantees come from the broker, not from memory: MQTT 5, QoS 1, a persistent session
(clean start off, session expiry set) under a stable client id, and manual acknowledgement,
so a message is acknowledged only after the transaction holding its readings has committed.

Flow control: the client announces a Receive Maximum of `max_pending`, and hands messages to
the service through a queue of that size. A compliant broker sends no more unacknowledged
messages than the Receive Maximum. Mosquitto 2.0.11 (Debian 12) does not honour it past the
first acknowledgement (measured: every PUBACK releases up to Receive Maximum more messages;
eclipse-mosquitto issue #2301), so the bound that holds is the queue: when it is full, paho's
network thread blocks in `on_message`, stops reading the socket, and TCP flow control leaves
the backlog queued at the broker (whose queue limits must be set deliberately:
deploy/mosquitto/hazmon.conf, docs/scaling.md). A stall longer than 1.5 keepalives makes the
broker drop the connection; the unacknowledged messages are then redelivered, never lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hazmon.backoff import Backoff
from hazmon.settings import MqttEndpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Message:
    """One received PUBLISH, with the connection it arrived on (acks are only valid there)."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    received_us: int
    connection: int
    dup: bool = False
    """The broker's DUP flag: it sent this message before (to an earlier connection)."""


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
        backoff: Backoff | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._topics = topics
        self._max_pending = max_pending
        self._session_expiry_s = session_expiry_s
        self._keepalive_s = keepalive_s
        self._backoff = backoff or Backoff()
        # Full queue = paho's network thread blocks = ingest stops reading (module docstring).
        self.messages: queue.Queue[Message] = queue.Queue(maxsize=max_pending)
        self.connected = threading.Event()
        """Set once the subscriptions of the current connection are acknowledged."""
        self.reconnects = 0
        self._received = 0  # written by the network thread only
        self._settled = 0  # written by the thread that acknowledges only
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
        self._settled += len(messages)
        return acked

    @property
    def pending(self) -> int:
        """Messages received and not yet acknowledged (or let go as stale)."""
        return self._received - self._settled

    def _run(self) -> None:
        while not self._stopping.is_set():
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
                self._client.loop_forever(retry_first_connection=False)
            except OSError as exc:
                log.warning(
                    "mqtt connect failed",
                    extra={
                        "host": self._endpoint.host,
                        "port": self._endpoint.port,
                        "error": str(exc),
                    },
                )
            if self._stopping.is_set():
                break
            delay = self._backoff.next_delay_s()
            self._stopping.wait(delay)

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
            client.disconnect()
            return
        self._connection += 1
        self._backoff.reset()
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
        message = Message(
            mid=msg.mid,
            qos=msg.qos,
            topic=msg.topic,
            payload=bytes(msg.payload),
            received_us=time.time_ns() // 1000,
            connection=self._connection,
            dup=bool(msg.dup),
        )
        # Blocks while the queue is full: this is what stops reading (module docstring). On
        # shutdown the message is let go unacknowledged; the broker delivers it again.
        while not self._stopping.is_set():
            try:
                self.messages.put(message, timeout=0.5)
                self._received += 1
                return
            except queue.Full:
                continue
