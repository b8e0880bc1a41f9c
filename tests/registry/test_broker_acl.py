"""Broker security against a real Mosquitto started with `hazmon broker-config`'s files.

The broker is this test's own (a free port, a temp dir), never the shared one, and loads the
generated `hazmon-security.conf` through `include_dir` as Debian's does. Device credentials
come from the API or `hazmon device-credentials` (shown once); the files from the CLI. A
gateway can publish its own telemetry, cannot publish into another site, cannot subscribe;
unknown clients and wrong passwords cannot connect, and a gateway receives nothing. Client ids
are bound to accounts: a gateway using another gateway's or an ingest worker's client id
neither disconnects it, nor fires its last will, nor touches its persistent session.
"""

from __future__ import annotations

import csv
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hazmon.settings import MqttEndpoint
from ingest.mqtt import Message, MqttSource
from registry.broker import SECURITY_CONF
from tests.support.common import free_port, wait_until
from tests.support.inventories import crane_site, load
from tests.support.tokens import bearer
from tests.support.world import World, hazmon

ROOT = "hazmon/v1"
INGEST_USER, INGEST_PASSWORD = "hazmon-ingest", "ingest-secret"
WORKERS = ("hazmon-ingest-0", "hazmon-ingest-1")
QUIET_S = 0.5
"""How long to wait for something that must not happen (a disconnect, a will)."""


def broker_config(db_url: str, tmp_path: Path, port: int, *args: str, **env: str) -> Path:
    """Run `hazmon broker-config` for a listener on 127.0.0.1:`port`; return its output dir."""
    out = tmp_path / "broker"
    written = hazmon(
        db_url,
        "broker-config",
        "--out",
        str(out),
        "--listener-port",
        str(port),
        "--listener-address",
        "127.0.0.1",
        *args,
        HAZMON_TOPIC_ROOT=ROOT,
        **env,
    )
    assert written.returncode == 0, written.stderr
    return out


@contextmanager
def own_mosquitto(tmp_path: Path, port: int) -> Iterator[int]:
    """Mosquitto with the generated listener, password file and ACL; yields the port.

    The main file is like Debian's /etc/mosquitto/mosquitto.conf: no listener of its own, and
    `include_dir` of a directory holding a link to `hazmon-security.conf`.
    """
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    (conf_d / SECURITY_CONF).symlink_to(tmp_path / "broker" / SECURITY_CONF)
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"persistence false\nuser root\ninclude_dir {conf_d}\n",
        encoding="utf-8",
    )
    log = (tmp_path / "mosquitto.log").open("wb")
    broker = subprocess.Popen(["mosquitto", "-v", "-c", str(conf)], stdout=log, stderr=log)

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
    """A paho MQTT 5 client that records what the broker answers; it never reconnects."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        *,
        client_id: str = "",
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.pubacks: dict[int, ReasonCode] = {}
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.disconnected = threading.Event()
        """Set when the broker (or `close`) ended the connection."""
        self._acked = threading.Condition()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=False,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1)
        self.client.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(list(rcs))
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, bytes(m.payload)))
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

    def close(self, *, with_will: bool = False) -> None:
        """Disconnect (MQTT 5 reason 0x04 asks the broker to publish the will) and stop."""
        if with_will:
            self.client.disconnect(ReasonCode(PacketTypes.DISCONNECT, identifier=0x04))
        else:
            self.client.disconnect()
        self.client.loop_stop()


def received(messages: queue.Queue[tuple[str, bytes]], topic: str, count: int) -> list[bytes]:
    """The payloads of the first `count` messages on `topic` (others skipped), 10 s at most."""
    payloads: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(payloads) < count:
        got_topic, payload = messages.get(timeout=max(0.01, deadline - time.monotonic()))
        if got_topic == topic:
            payloads.append(payload)
    return payloads


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
    port = free_port()
    # the account of HAZMON_MQTT_URL, as before --ingest-worker existed
    out = broker_config(
        world.db_url,
        tmp_path,
        port,
        HAZMON_MQTT_URL=f"mqtt://{INGEST_USER}:{INGEST_PASSWORD}@127.0.0.1:{port}",
        HAZMON_MQTT_CLIENT_ID=INGEST_USER,
    )
    assert password_a not in (out / "passwd").read_text()
    with own_mosquitto(tmp_path, port):
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


@dataclass(frozen=True)
class Secured:
    """A private Mosquitto configured by `hazmon broker-config` with two ingest workers."""

    port: int
    gateways: dict[str, tuple[str, str]]
    """per site ("A", "B"): the gateway's (username, password), from device-credentials."""
    workers: dict[str, tuple[MqttEndpoint, str]]
    """per worker: HAZMON_MQTT_URL and HAZMON_MQTT_CLIENT_ID from its generated .env file."""

    def gateway(
        self, site: str, *, client_id: str = "", will: tuple[str, bytes] | None = None
    ) -> Client:
        """A connected client with `site`'s gateway account."""
        username, password = self.gateways[site]
        client = Client(self.port, username, password, client_id=client_id, will=will)
        assert client.connected(), f"{username} refused"
        return client

    def worker(self, name: str, topics: list[str]) -> MqttSource:
        """A started ingest MQTT source with the worker's generated settings, subscribed."""
        endpoint, client_id = self.workers[name]
        source = MqttSource(
            endpoint,
            client_id=client_id,
            topics=topics,
            max_pending=100,
            session_expiry_s=120,
            keepalive_s=30,
        )
        source.start()
        assert source.connected.wait(10), f"{name} did not connect"
        return source


@pytest.fixture
def secured(db_url: str, tmp_path: Path) -> Iterator[Secured]:
    """Sites A and B with a gateway each, credentials issued, two ingest workers, the broker."""
    load(db_url, tmp_path, crane_site("A"), crane_site("B"))
    issued = hazmon(db_url, "device-credentials", "--out", str(tmp_path / "devices.csv"))
    assert issued.returncode == 0, issued.stderr
    rows = list(csv.reader((tmp_path / "devices.csv").read_text(encoding="utf-8").splitlines()))
    gateways = {username.split(".")[0]: (username, password) for username, password in rows[1:]}
    port = free_port()
    worker_args = [arg for name in WORKERS for arg in ("--ingest-worker", name)]
    out = broker_config(
        db_url, tmp_path, port, *worker_args, HAZMON_MQTT_URL=f"mqtt://127.0.0.1:{port}"
    )
    workers = {}
    for name in WORKERS:
        env_file = out / "ingest" / f"{name}.env"
        assert env_file.stat().st_mode & 0o777 == 0o600
        lines = env_file.read_text(encoding="utf-8").splitlines()
        env = dict(line.split("=", 1) for line in lines if not line.startswith("#"))
        workers[name] = (MqttEndpoint.parse(env["HAZMON_MQTT_URL"]), env["HAZMON_MQTT_CLIENT_ID"])
    with own_mosquitto(tmp_path, port):
        yield Secured(port, gateways, workers)


def _telemetry(site: str) -> str:
    return f"{ROOT}/{site}/TC1-M/telemetry"


def _status(site: str) -> str:
    return f"{ROOT}/{site}/TC1-M/status"


def _take(source: MqttSource, count: int) -> list[Message]:
    """The next `count` messages of an ingest source (10 s at most), acknowledged."""
    messages = [source.messages.get(timeout=10) for _ in range(count)]
    source.ack(messages)
    return messages


def test_a_gateway_using_another_gateways_client_id_does_not_disconnect_it(
    secured: Secured,
) -> None:
    endpoint, _ = secured.workers["hazmon-ingest-0"]
    ingest = Client(secured.port, endpoint.username, endpoint.password)
    victim = secured.gateway("B", client_id="B.TC1-M")
    intruder = None
    try:
        assert ingest.connected()
        ingest.client.subscribe(f"{ROOT}/#", qos=1)
        ingest.subacks.get(timeout=10)
        # A's own account, B's client id: let in, but under its own name
        intruder = secured.gateway("A", client_id="B.TC1-M")
        assert not intruder.publish(_telemetry("A"), b"intruder").is_failure
        assert received(ingest.messages, _telemetry("A"), 1) == [b"intruder"]
        assert not victim.disconnected.wait(QUIET_S), "the victim was disconnected"
        payloads = [f'{{"ts": {i}, "values": {{}}}}'.encode() for i in range(5)]
        for payload in payloads:
            assert not victim.publish(_telemetry("B"), payload).is_failure
        assert received(ingest.messages, _telemetry("B"), 5) == payloads
        assert not victim.disconnected.is_set()
        assert not intruder.disconnected.is_set()
    finally:
        for client in (intruder, victim, ingest):
            if client is not None:
                client.close()


def test_a_gateway_using_an_ingest_workers_client_id_does_not_disconnect_it(
    secured: Secured,
) -> None:
    worker = secured.worker("hazmon-ingest-0", [f"{ROOT}/+/+/telemetry"])
    gateway_b = secured.gateway("B")
    intruder = None
    try:
        intruder = secured.gateway("A", client_id=secured.workers["hazmon-ingest-0"][1])
        assert not intruder.publish(_telemetry("A"), b"intruder").is_failure
        assert [m.payload for m in _take(worker, 1)] == [b"intruder"]
        time.sleep(QUIET_S)
        for i in range(5):
            assert not gateway_b.publish(_telemetry("B"), str(i).encode()).is_failure
        assert [m.payload for m in _take(worker, 5)] == [str(i).encode() for i in range(5)]
        assert worker.reconnects == 0, "ingest was disconnected"
        assert worker.connected.is_set()
        assert intruder.messages.empty()  # nor does the intruder read ingest's subscription
    finally:
        for client in (intruder, gateway_b):
            if client is not None:
                client.close()
        worker.stop()


def test_two_ingest_workers_keep_their_own_persistent_sessions(secured: Secured) -> None:
    worker_0 = secured.worker("hazmon-ingest-0", [f"{ROOT}/A/+/telemetry"])
    worker_1 = secured.worker("hazmon-ingest-1", [f"{ROOT}/B/+/telemetry"])
    gateway_b = secured.gateway("B")
    intruder = None
    try:
        assert not gateway_b.publish(_telemetry("B"), b"b0").is_failure
        assert [m.payload for m in _take(worker_1, 1)] == [b"b0"]

        # worker 1 goes away; its session (subscription, queue) stays at the broker
        worker_1.stop()
        # gateway A connects with worker 1's client id and a clean start
        intruder = secured.gateway("A", client_id=secured.workers["hazmon-ingest-1"][1])
        assert not intruder.publish(_telemetry("A"), b"a0").is_failure
        for i in range(5):
            assert not gateway_b.publish(_telemetry("B"), f"b{i + 1}".encode()).is_failure

        # worker 1 comes back to what was queued for it while it was away
        worker_1 = secured.worker("hazmon-ingest-1", [f"{ROOT}/B/+/telemetry"])
        assert [m.payload for m in _take(worker_1, 5)] == [f"b{i + 1}".encode() for i in range(5)]
        assert [m.payload for m in _take(worker_0, 1)] == [b"a0"]
        assert worker_0.reconnects == 0
        assert worker_1.reconnects == 0
        time.sleep(QUIET_S)
        assert worker_0.messages.empty()  # each worker its own site, once
        assert worker_1.messages.empty()
    finally:
        for client in (intruder, gateway_b):
            if client is not None:
                client.close()
        worker_0.stop()
        worker_1.stop()


def test_a_gateway_using_another_gateways_client_id_does_not_fire_its_last_will(
    secured: Secured,
) -> None:
    endpoint, _ = secured.workers["hazmon-ingest-0"]
    ingest = Client(secured.port, endpoint.username, endpoint.password)
    victim = secured.gateway("B", client_id="B.TC1-M", will=(_status("B"), b"offline"))
    intruder = None
    try:
        assert ingest.connected()
        ingest.client.subscribe(f"{ROOT}/+/+/status", qos=1)
        ingest.subacks.get(timeout=10)
        intruder = secured.gateway("A", client_id="B.TC1-M")
        assert not intruder.publish(_status("A"), b"online").is_failure
        time.sleep(QUIET_S)
        seen = [ingest.messages.get_nowait() for _ in range(ingest.messages.qsize())]
        # a will fired by a takeover would come before the intruder's own status
        assert seen == [(_status("A"), b"online")], "the victim's last will was published"
        # the observation works: the victim's own will arrives when it asks for it
        victim.close(with_will=True)
        assert received(ingest.messages, _status("B"), 1) == [b"offline"]
    finally:
        for client in (intruder, victim, ingest):
            if client is not None:
                client.close()
