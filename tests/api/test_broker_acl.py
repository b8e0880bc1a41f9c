"""Broker security against a real Mosquitto started with `hazmon broker-config`'s files.

The broker is this test's own (a free port, a temp dir), never the shared one. Device
credentials come from the API (shown once); the files from the CLI. A gateway can publish its
own telemetry, cannot publish into another site, cannot subscribe; unknown clients and wrong
passwords cannot connect, and a gateway receives nothing.
"""

from __future__ import annotations

import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.api.conftest import World, hazmon
from tests.conftest import free_port, wait_until
from tests.tokens import bearer

ROOT = "hazmon/v1"
INGEST_USER, INGEST_PASSWORD = "hazmon-ingest", "ingest-secret"


@contextmanager
def own_mosquitto(tmp_path: Path) -> Iterator[int]:
    """Mosquitto on a free port with the generated password file and ACL; yields the port."""
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"password_file {tmp_path / 'broker' / 'passwd'}\n"
        f"acl_file {tmp_path / 'broker' / 'acl'}\n"
        "persistence false\n"
        "user root\n",
        encoding="utf-8",
    )
    log = (tmp_path / "mosquitto.log").open("wb")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=log, stderr=log)

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    try:
        assert wait_until(listening, 10), (tmp_path / "mosquitto.log").read_text()
        yield port
    finally:
        broker.terminate()
        broker.wait(10)
        log.close()


class Client:
    """A paho MQTT 5 client that records what the broker answers."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._acked = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=paho.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(list(rcs))
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(
        self, c: object, u: object, mid: int, rc: ReasonCode, p: Properties | None
    ) -> None:
        with self._acked:
            self.pubacks[mid] = rc
            self._acked.notify_all()

    def connected(self) -> bool:
        """Whether the broker accepted the connection."""
        return not self.connack.get(timeout=10).is_failure

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        mid = self.client.publish(topic, payload, qos=1).mid
        with self._acked:
            assert self._acked.wait_for(lambda: mid in self.pubacks, 10), "no PUBACK"
            return self.pubacks[mid]

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def _credentials(world: World, site: str) -> tuple[str, str]:
    device = world.ids[site]["device"]
    response = httpx.post(
        f"{world.base}/devices/{device}/credentials", headers=bearer(world.tokens["admin"] or "")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    return body["username"], body["password"]


@pytest.mark.slow
def test_gateway_publishes_only_its_own_topics_and_strangers_cannot_connect(
    world: World, tmp_path: Path
) -> None:
    user_a, password_a = _credentials(world, "A")
    user_b, password_b = _credentials(world, "B")
    assert (user_a, user_b) == ("A.TC1-M", "B.TC1-M")
    written = hazmon(
        world.db_url,
        "broker-config",
        "--out",
        str(tmp_path / "broker"),
        HAZMON_MQTT_URL=f"mqtt://{INGEST_USER}:{INGEST_PASSWORD}@127.0.0.1:1883",
        HAZMON_TOPIC_ROOT=ROOT,
    )
    assert written.returncode == 0, written.stderr
    assert password_a not in (tmp_path / "broker" / "passwd").read_text()
    with own_mosquitto(tmp_path) as port:
        ingest = Client(port, INGEST_USER, INGEST_PASSWORD)
        gateway = Client(port, user_a, password_a)
        try:
            assert ingest.connected()
            assert gateway.connected()
            ingest.client.subscribe(f"{ROOT}/#", qos=1)
            assert not any(rc.is_failure for rc in ingest.subacks.get(timeout=10))

            # another site's topic, and another device's: refused, never delivered
            assert gateway.publish(f"{ROOT}/B/TC1-M/telemetry", b'{"values":{}}').is_failure
            assert gateway.publish(f"{ROOT}/A/OTHER/telemetry", b'{"values":{}}').is_failure
            # its own topics: delivered
            assert not gateway.publish(f"{ROOT}/A/TC1-M/status", b"online").is_failure
            assert not gateway.publish(f"{ROOT}/A/TC1-M/telemetry", b'{"values":{}}').is_failure
            received = [ingest.messages.get(timeout=10), ingest.messages.get(timeout=10)]
            assert [topic for topic, _ in received] == [
                f"{ROOT}/A/TC1-M/status",
                f"{ROOT}/A/TC1-M/telemetry",
            ]
            assert ingest.messages.empty()

            # a gateway reads nothing: Mosquitto grants the SUBACK but delivers no message,
            # neither another gateway's nor its own
            gateway.client.subscribe("#", qos=1)
            gateway.client.subscribe(f"{ROOT}/A/TC1-M/telemetry", qos=1)
            gateway.subacks.get(timeout=10)
            gateway.subacks.get(timeout=10)
            other = Client(port, user_b, password_b)
            try:
                assert other.connected()
                assert not other.publish(f"{ROOT}/B/TC1-M/telemetry", b"{}").is_failure
            finally:
                other.close()
            assert not gateway.publish(f"{ROOT}/A/TC1-M/telemetry", b"{}").is_failure
            assert {ingest.messages.get(timeout=10)[0] for _ in range(2)} == {
                f"{ROOT}/B/TC1-M/telemetry",
                f"{ROOT}/A/TC1-M/telemetry",
            }
            time.sleep(0.3)  # delivery to the gateway would have come with ingest's copy
            assert gateway.messages.empty()
        finally:
            gateway.close()
            ingest.close()

        for username, password in [
            (None, None),  # anonymous
            ("stranger", "guess"),  # unknown account
            (user_b, password_a),  # a real account, someone else's password
        ]:
            stranger = Client(port, username, password)
            try:
                assert not stranger.connected(), f"{username} was let in"
            finally:
                stranger.close()
