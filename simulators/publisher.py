"""Publish simulated telemetry like a real gateway: MQTT QoS 1, last will `offline` on status."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.settings import MqttEndpoint
from hazmon.wire import OFFLINE, ONLINE, encode_telemetry, status_topic, telemetry_topic

log = logging.getLogger(__name__)


class GatewayPublisher:
    """A connected gateway for one (site, device); use as a context manager."""

    def __init__(self, endpoint: MqttEndpoint, root: str, site_code: str, device_code: str) -> None:
        self.telemetry_topic = telemetry_topic(root, site_code, device_code)
        self.status_topic = status_topic(root, site_code, device_code)
        self._endpoint = endpoint
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-{site_code}-{device_code}"
        )
        if endpoint.username:
            self._client.username_pw_set(endpoint.username, endpoint.password)
        self._client.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        self._client.max_inflight_messages_set(100)

    def __enter__(self) -> GatewayPublisher:
        self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=30)
        self._client.loop_start()
        self._client.publish(self.status_topic, ONLINE, qos=1, retain=True).wait_for_publish(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.publish(self.status_topic, OFFLINE, qos=1, retain=True).wait_for_publish(10)
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, ts_ms: int, values: dict[str, float]) -> None:
        """Publish one reading set at QoS 1 and wait until the broker has it."""
        self.publish_buffered([(ts_ms, values)])

    def publish_buffered(self, samples: list[tuple[int, dict[str, float]]]) -> None:
        """Publish several timestamped reading sets as one array payload (a gateway's flush)."""
        info = self._client.publish(self.telemetry_topic, encode_telemetry(samples), qos=1)
        info.wait_for_publish(10)


def publish_series(
    publisher: GatewayPublisher,
    samples: Iterable[dict[str, float]],
    *,
    period_s: float,
    speedup: float = 1.0,
) -> int:
    """Publish samples `period_s` apart in sample time, paced `speedup` times faster than real."""
    count = 0
    start_ms = int(time.time() * 1000)
    for i, values in enumerate(samples):
        ts_ms = start_ms + int(i * period_s * 1000 / speedup)
        delay_s = ts_ms / 1000 - time.time()
        if delay_s > 0:
            time.sleep(delay_s)
        publisher.publish(ts_ms, values)
        count += 1
    return count
