"""Shared helpers of the ingest fault tests and benchmarks: private servers, a load publisher,
ingest as a real subprocess, and an exact digest of what the readings table holds.

Fault tests never restart the shared servers other workers use: a broker restart happens on a
private Mosquitto on a free port, a PostgreSQL restart on a throwaway cluster made with initdb.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.request import urlopen

import numpy as np
import paho.mqtt.client as paho
import psycopg
from numpy.typing import NDArray
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client.parser import text_string_to_metric_families

from hazmon.settings import MqttEndpoint, Settings
from tests.conftest import REPO, free_port, wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")
CRANE_METRICS = (
    "load_t",
    "load_ratio",
    "moment_ratio",
    "radius_m",
    "height_m",
    "slew_deg",
    "wind_speed_ms",
    "tilt_deg",
    "zone_event",
    "collision_event",
)
# Values of every reading are a pattern in [0, 15/64] times these powers of two: exact in
# binary (so digests compare exactly) and well inside every default alarm threshold.
_METRIC_SCALE = {
    "load_t": 8.0,
    "load_ratio": 1.0,
    "moment_ratio": 1.0,
    "radius_m": 64.0,
    "height_m": 64.0,
    "slew_deg": 256.0,
    "wind_speed_ms": 16.0,
    "tilt_deg": 0.5,
    "zone_event": 0.0,
    "collision_event": 0.0,
}


class _Server:
    """A server process owned by a test; a context manager that always kills what it started."""

    def __init__(self) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix=f"hazmon-{type(self).__name__.lower()}-"))
        self.port = free_port()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop(graceful=False)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def start(self) -> None:
        """Start the server and wait until it listens."""
        raise NotImplementedError

    def stop(self, *, graceful: bool = True) -> None:
        """Stop the server (gracefully, or as a crash) and wait until it is gone."""
        raise NotImplementedError

    def restart(self, *, graceful: bool = True, down_s: float = 0.5) -> None:
        """Stop, stay down for `down_s`, start again on the same port with the same data."""
        self.stop(graceful=graceful)
        time.sleep(down_s)
        self.start()


HAZMON_CONF = Path(
    os.environ.get("HAZMON_TEST_BROKER_CONF", REPO / "deploy" / "mosquitto" / "hazmon.conf")
)
"""hazmon's broker settings; HAZMON_TEST_BROKER_CONF names another file, e.g. an older version
of it, to show that a test fails without a change (`git show REV:deploy/mosquitto/hazmon.conf`)."""


def autosave_period_s(conf: str) -> int:
    """The longest time, s, between two snapshots Mosquitto 2.0.11 writes under `conf`.

    It saves once `last save + autosave_interval < now` in whole seconds: up to one second
    after the interval. Default interval 1800 s; `autosave_on_changes` is not handled here.
    """
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line.strip() and line[0] != "#"
    )
    assert settings.get("autosave_on_changes", "false").strip() == "false"
    return int(settings.get("autosave_interval", "1800")) + 1


class PrivateMosquitto(_Server):
    """A Mosquitto of this test's own with hazmon's broker limits and persistence in a temp dir.

    `limits` replaces the text of deploy/mosquitto/hazmon.conf (e.g. an older version of it, to
    show a test fails without a change); `extra` lines are appended after it and override it.
    """

    def __init__(self, *, limits: str | None = None, extra: str = "") -> None:
        super().__init__()
        self._process: subprocess.Popen[bytes] | None = None
        if limits is None:
            limits = HAZMON_CONF.read_text(encoding="utf-8")
        config = self._tmp / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {self._tmp}/\n"
            f"log_dest file {self.log_path}\nuser root\n{limits}\n{extra}\n",
            encoding="utf-8",
        )
        self._config = config

    @property
    def log_path(self) -> Path:
        """Mosquitto's log file."""
        return self._tmp / "mosquitto.log"

    @property
    def persistence_path(self) -> Path:
        """The snapshot Mosquitto restores from on start (written on every save)."""
        return self._tmp / "mosquitto.db"

    @property
    def pid(self) -> int:
        """The process id of the running broker."""
        assert self._process is not None, "broker not running"
        return self._process.pid

    def saves(self) -> int:
        """How many times this broker has written its snapshot so far (from its log)."""
        if not self.log_path.exists():
            return 0
        return self.log_path.read_bytes().count(b"Saving in-memory database")

    @property
    def url(self) -> str:
        """The `mqtt://` URL of this broker."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start Mosquitto; it restores its persisted sessions and queues."""
        self._process = subprocess.Popen(
            ["mosquitto", "-c", str(self._config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert wait_until(lambda: _listening(self.port), 10), "private mosquitto did not start"

    def stop(self, *, graceful: bool = True) -> None:
        """SIGTERM saves the persistence file (sessions and queued messages); SIGKILL does not."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
        self._process.wait(30)
        self._process = None


class ThrowawayPostgres(_Server):
    """A PostgreSQL 15 cluster with TimescaleDB of this test's own, run as the postgres user."""

    def __init__(self) -> None:
        super().__init__()
        self._data = self._tmp / "data"
        shutil.chown(self._tmp, "postgres", "postgres")
        _as_postgres(
            [str(PG_BIN / "initdb"), "-D", str(self._data), "-U", "postgres", "-A", "trust", "-N"]
        )
        with (self._data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self._tmp}'\n"
                "shared_preload_libraries = 'timescaledb'\ntimescaledb.telemetry_level = off\n"
                "fsync = off\nmax_connections = 50\n"
            )

    def url(self, database: str = "postgres") -> str:
        """A URL of `database` on this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        _pg_ctl(self._data, "start", "-w", "-t", "60", "-l", str(self._tmp / "server.log"))

    def stop(self, *, graceful: bool = True) -> None:
        """Stop fast (graceful) or immediate (a crash: recovery replays the WAL on start)."""
        if (self._data / "postmaster.pid").exists():
            _pg_ctl(self._data, "stop", "-w", "-m", "fast" if graceful else "immediate")


def _as_postgres(argv: list[str]) -> None:
    subprocess.run(
        ["runuser", "-u", "postgres", "--", *argv],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=120,
    )


def _pg_ctl(data: Path, *args: str) -> None:
    _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), *args])


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


# --- the readings a test publishes -------------------------------------------------------


_ENTRIES = 5  # timestamps per payload: 5 × 10 crane metrics = 50 readings
_STEP_MS = 1000


@dataclass(frozen=True, slots=True)
class Stream:
    """A deterministic set of crane readings: each device sends `messages_per_device` payloads
    of `entries` timestamps × 10 metrics (50 readings by default), `step_ms` apart.

    Payloads of all devices are interleaved, so every batch spans many series.
    """

    topic_root: str
    devices: tuple[tuple[str, str], ...]
    messages_per_device: int
    base_ms: int
    entries: int = _ENTRIES
    step_ms: int = _STEP_MS
    pad_to_bytes: int = 0
    """Pad each payload with JSON whitespace to this size (0: no padding)."""

    @classmethod
    def cranes(
        cls,
        topic_root: str,
        sites: Sequence[str],
        devices_per_site: int,
        messages_per_device: int,
        *,
        age_s: float | None = None,
        entries: int = _ENTRIES,
        pad_to_bytes: int = 0,
    ) -> Stream:
        """The stream of the devices `crane_inventory(sites, devices_per_site)` registers,
        1 s apart (`entries` s of each device's readings per payload, 10 readings each),
        starting `age_s` ago; by default so long ago that its last reading is a minute old (none
        may lie in the future). `pad_to_bytes` pads every payload with whitespace."""
        devices = tuple((site, _device_code(n)) for site in sites for n in range(devices_per_site))
        span_s = messages_per_device * entries * _STEP_MS / 1000
        base_ms = int((time.time() - (age_s if age_s is not None else span_s + 60)) * 1000)
        return cls(
            topic_root, devices, messages_per_device, base_ms, entries, pad_to_bytes=pad_to_bytes
        )

    @property
    def readings(self) -> int:
        """How many readings the stream holds."""
        return len(self.devices) * self.messages_per_device * self.entries * len(CRANE_METRICS)

    @property
    def messages(self) -> int:
        """How many MQTT messages the stream is published as."""
        return len(self.devices) * self.messages_per_device

    def payloads(self) -> Iterator[tuple[str, bytes]]:
        """(topic, payload) of every message, in publish order."""
        for k in range(self.messages_per_device):
            for d, (site, device) in enumerate(self.devices):
                topic = f"{self.topic_root}/{site}/{device}/telemetry"
                yield topic, self._payload(d, k)

    def _payload(self, d: int, k: int) -> bytes:
        entries = []
        for j in range(self.entries):
            t = k * self.entries + j
            ts = self.base_ms + t * self.step_ms
            entries.append(f'{{"ts":{ts},"values":{_VALUES_JSON[_phase(d, t)]}}}')
        payload = ("[" + ",".join(entries) + "]").encode()
        if len(payload) < self.pad_to_bytes:
            payload += b" " * (self.pad_to_bytes - len(payload))
        return payload

    def expected(
        self, series_ids: Mapping[tuple[str, str, str], int]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """The columns (series_id, time_us, value) the readings table must hold afterwards."""
        n_t = self.messages_per_device * self.entries
        sids, times, values = [], [], []
        t_us = (self.base_ms + np.arange(n_t, dtype=np.int64) * self.step_ms) * 1000
        t = np.arange(n_t, dtype=np.int64)
        for d, (site, device) in enumerate(self.devices):
            for i, m in enumerate(CRANE_METRICS):
                sids.append(np.full(n_t, series_ids[(site, device, m)], dtype=np.int64))
                times.append(t_us)
                values.append(_pattern((d * 7 + t * 3) % 16, i) * _METRIC_SCALE[m])
        return np.concatenate(sids), np.concatenate(times), np.concatenate(values)


@dataclass(frozen=True, slots=True)
class Checksum:
    """Count and exact integer sums over (series, time, value): cheap enough for 10M rows.

    Values of a `Stream` are multiples of 1/128, so `value * 128` sums exactly.
    """

    count: int
    series_sum: int
    time_ms_sum: int
    value_128_sum: int


def stream_checksum(stream: Stream, series_ids: Mapping[tuple[str, str, str], int]) -> Checksum:
    """The checksum the readings table must have after `stream`, without building its rows."""
    n_t = stream.messages_per_device * stream.entries
    t = np.arange(n_t, dtype=np.int64)
    t_ms_sum = int((stream.base_ms + t * stream.step_ms).sum())
    series_sum = value_sum = 0
    for d, (site, device) in enumerate(stream.devices):
        for i, m in enumerate(CRANE_METRICS):
            series_sum += series_ids[(site, device, m)] * n_t
            value_sum += int((_pattern((d * 7 + t * 3) % 16, i) * _METRIC_SCALE[m] * 128).sum())
    n_series = len(stream.devices) * len(CRANE_METRICS)
    return Checksum(n_series * n_t, series_sum, n_series * t_ms_sum, value_sum)


def stored_checksum(db_url: str) -> Checksum:
    """The checksum of the readings table, computed by PostgreSQL."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """SELECT count(*), coalesce(sum(series_id), 0),
                      coalesce(sum((extract(epoch FROM time) * 1000)::bigint), 0),
                      coalesce(sum((value * 128)::bigint), 0)
               FROM readings"""
        ).fetchone()
    assert row is not None
    return Checksum(*(int(x) for x in row))


def _phase(device: int, t: int) -> int:
    return (device * 7 + t * 3) % 16


def _pattern(phase: Any, metric: int) -> Any:
    """The value pattern of a metric at a phase (a number or an array of them), in [0, 15/64]."""
    return ((phase + metric * 5) % 16) / 64


# The "values" object of a payload entry depends only on the phase: formatted once, reused.
_VALUES_JSON = [
    "{"
    + ",".join(
        f'"{m}":{_pattern(phase, i) * _METRIC_SCALE[m]!r}' for i, m in enumerate(CRANE_METRICS)
    )
    + "}"
    for phase in range(16)
]


def crane_inventory(sites: Sequence[str], devices_per_site: int) -> list[dict[str, Any]]:
    """Sites with one tower crane work each and `devices_per_site` monitors on it."""
    return [
        {
            "code": site,
            "name": f"故障测试工地 {site}",
            "region_code": "420106",
            "works": [
                {
                    "code": "TC1",
                    "name": "1号塔吊",
                    "hazard_kind": "tower_crane",
                    "params": {"rated_load_t": 8, "rated_moment_tm": 160},
                    "devices": [
                        {"code": _device_code(n), "sampling_period_s": 1}
                        for n in range(devices_per_site)
                    ],
                }
            ],
        }
        for site in sites
    ]


def _device_code(n: int) -> str:
    return f"D{n:03d}"


def series_map(db_url: str) -> dict[tuple[str, str, str], int]:
    """(site code, device code, metric) → series id, as registered."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """SELECT s.code, d.code, se.metric, se.id FROM series se
               JOIN devices d ON d.id = se.device_id JOIN sites s ON s.id = d.site_id"""
        ).fetchall()
    return {(site, device, metric): sid for site, device, metric, sid in rows}


# --- publishing ----------------------------------------------------------------------------


class Publisher:
    """Publish a stream at QoS 1 from a paho client with a persistent session, in a thread.

    Paho keeps every unacknowledged message and sends it again after a reconnect, so a broker
    restart mid-stream loses nothing on the publishing side; `wait_acked` says when the broker
    has acknowledged everything. `rate_msgs_s` paces the stream (None: as fast as possible).
    """

    def __init__(self, mqtt_url: str, stream: Stream, *, rate_msgs_s: float | None = None) -> None:
        endpoint = MqttEndpoint.parse(mqtt_url)
        self.stream = stream
        self.rate_msgs_s = rate_msgs_s
        self.acked = 0
        self.published = 0
        self._stopping = False
        self._lock = threading.Lock()
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"hazmon-loadpub-{uuid.uuid4().hex[:10]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.max_inflight_messages_set(200)
        self._client.max_queued_messages_set(0)
        self._client.on_publish = self._on_publish
        self._client.reconnect_delay_set(1, 2)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 600
        self._client.connect(endpoint.host, endpoint.port, clean_start=False, properties=properties)
        self._thread = threading.Thread(target=self._publish_all, name="publisher", daemon=True)

    def __enter__(self) -> Publisher:
        self._client.loop_start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        self._thread.join(60)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_publish(self, *args: Any) -> None:
        with self._lock:
            self.acked += 1

    def _publish_all(self) -> None:
        started = time.monotonic()
        for n, (topic, payload) in enumerate(self.stream.payloads()):
            if self._stopping:
                return
            if self.rate_msgs_s is not None:
                ahead_s = n / self.rate_msgs_s - (time.monotonic() - started)
                if ahead_s > 0:
                    time.sleep(ahead_s)
            # Bound paho's in-memory queue: wait while far more is queued than acknowledged.
            while self.published - self.acked > 5000 and not self._stopping:
                time.sleep(0.005)
            self._client.publish(topic, payload, qos=1)
            self.published += 1

    def wait_acked(self, timeout_s: float) -> bool:
        """Wait until the broker has acknowledged every message of the stream."""
        return wait_until(lambda: self.acked >= self.stream.messages, timeout_s, 0.05)


# --- ingest as a subprocess ----------------------------------------------------------------


class IngestProcess:
    """`python -m hazmon.cli ingest` with the settings of a test, logging to a file.

    `metrics_port` serves its Prometheus metrics (`scrape`); `overrides` set further settings.
    """

    def __init__(
        self, settings: Settings, log_path: Path, *, metrics_port: int = 0, **overrides: str
    ) -> None:
        self.metrics_port = metrics_port
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("HAZMON_")}
        for name, value in settings.model_dump().items():
            self._env[f"HAZMON_{name.upper()}"] = str(value)
        self._env.update({f"HAZMON_{k.upper()}": v for k, v in overrides.items()})
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> IngestProcess:
        try:
            self.start()
        except BaseException:
            self.kill()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def start(self, *, wait_subscribed_s: float = 30) -> None:
        """Start ingest and wait until it has subscribed (its session then queues at the broker);
        `wait_subscribed_s=0` returns at once."""
        offset = self._log_path.stat().st_size if self._log_path.exists() else 0
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hazmon.cli",
                    "ingest",
                    f"--metrics-port={self.metrics_port}",
                ],
                env=self._env,
                stdout=log,
                stderr=log,
                cwd=REPO,
            )

        def subscribed() -> bool:
            assert self._process is not None
            assert self._process.poll() is None, f"ingest exited: {self.log_tail()}"
            return b'"mqtt subscribed"' in self._log_path.read_bytes()[offset:]

        if wait_subscribed_s:
            assert wait_until(subscribed, wait_subscribed_s), (
                f"ingest did not subscribe: {self.log_tail()}"
            )

    def scrape(self) -> dict[str, float]:
        """Its metrics as {"sample_name{label=value}": value}, from the Prometheus endpoint.

        Counters are keyed by their `_total` name, histograms by `_sum`, `_count`, `_bucket`.
        """
        assert self.metrics_port, "started without a metrics port"
        with urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return {
            sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items())): (
                sample.value
            )
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def kill(self) -> None:
        """kill -9: no flush, no ack, no goodbye."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(10)
        self._process = None

    def terminate(self, timeout_s: float = 30) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        assert self._process is not None
        self._process.terminate()
        code = self._process.wait(timeout_s)
        self._process = None
        return code

    @property
    def pid(self) -> int:
        """The process id of the running ingest."""
        assert self._process is not None
        return self._process.pid

    def log_tail(self, lines: int = 15) -> str:
        """The end of the ingest log, for assertion messages."""
        if not self._log_path.exists():
            return "(no log)"
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])


# --- what the table holds ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Digest:
    """Count, distinct (series, time) count and a SHA-256 over the sorted (series, time, value)."""

    count: int
    distinct: int
    sha256: str


def digest_of(
    series_id: NDArray[np.int64], time_us: NDArray[np.int64], value: NDArray[np.float64]
) -> Digest:
    """The digest of columns, order-independent (rows are sorted by series, time, value)."""
    rows = np.empty(len(series_id), dtype=[("s", "<i8"), ("t", "<i8"), ("v", "<f8")])
    rows["s"], rows["t"], rows["v"] = series_id, time_us, value
    rows.sort(order=["s", "t", "v"])
    distinct = len(np.unique(rows[["s", "t"]])) if len(rows) else 0
    return Digest(len(rows), distinct, hashlib.sha256(rows.tobytes()).hexdigest())


def stored_digest(db_url: str) -> Digest:
    """The digest of everything in the readings table."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            """SELECT series_id, (extract(epoch FROM time) * 1000000)::bigint, value
               FROM readings"""
        ).fetchall()
    if not rows:
        return digest_of(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    sid, t, v = zip(*rows, strict=True)
    return digest_of(np.array(sid, np.int64), np.array(t, np.int64), np.array(v, np.float64))


def stored_count(db_url: str) -> int:
    """How many readings the table holds right now."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True, slots=True)
class Loss:
    """Which messages of a stream the readings table lacks, in publish order (`Stream.payloads`).

    `complete` is False if some message is stored only in part (a message is all or nothing);
    `stored` is the digest of what is stored, `expected` that of the stream minus `lost`.
    """

    lost: tuple[int, ...]
    complete: bool
    stored: Digest
    expected: Digest


def stream_loss(
    stream: Stream, series_ids: Mapping[tuple[str, str, str], int], db_url: str
) -> Loss:
    """Compare the readings table with `stream`, message by message."""
    sid, t_us, value = stream.expected(series_ids)
    n_t = stream.messages_per_device * stream.entries
    n_devices = len(stream.devices)
    # expected() lays rows out device by device, metric by metric, time step by time step.
    device = np.repeat(np.arange(n_devices), len(CRANE_METRICS) * n_t)
    step = np.tile(np.arange(n_t), n_devices * len(CRANE_METRICS))
    index = (step // stream.entries) * n_devices + device  # publish order of the row's message
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT series_id, (extract(epoch FROM time) * 1000000)::bigint FROM readings"
        ).fetchall()
    stored_keys = np.array([s * 10**14 + t for s, t in rows], dtype=np.int64)
    present = np.isin(sid * 10**14 + t_us, stored_keys)
    per_message = np.bincount(index, weights=present, minlength=stream.messages)
    size = len(CRANE_METRICS) * stream.entries
    lost = tuple(int(n) for n in np.flatnonzero(per_message == 0))
    complete = bool(np.all((per_message == 0) | (per_message == size)))
    keep = ~np.isin(index, lost)
    return Loss(
        lost, complete, stored_digest(db_url), digest_of(sid[keep], t_us[keep], value[keep])
    )
