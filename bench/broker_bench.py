"""Mosquitto persistence: what a snapshot costs, and what each autosave setting costs at rate.

Mosquitto 2.0 saves its whole in-memory store (every session, subscription and queued message)
in one synchronous write on its single thread: while it saves, it serves nobody. Two scenarios:

- snapshot: the time and broker CPU of one save (triggered with SIGUSR1) while an offline
  persistent session holds a queue of N messages of 1,082 bytes (the 50-reading crane payload);
- rate: the real `hazmon ingest` (rules on) fed by C publishers at a fixed rate, on a private
  Mosquitto with hazmon.conf plus one autosave setting. Three phases: steady (ingest keeps up),
  outage (ingest killed: its session queues at the broker), drain (ingest back). Per phase:
  snapshots written, broker CPU share, the largest snapshot, and the PUBACK latency of a probe
  publisher (p50 / p99 / max: how long the broker stalls a publisher while it saves).

Run from the repository root, e.g.:

    .venv/bin/python bench/broker_bench.py snapshot --depths 0 10000 100000 500000 --runs 3
    .venv/bin/python bench/broker_bench.py rate --runs 3 \
        --setting 'default=' \
        --setting 'changes-1=autosave_on_changes true|autosave_interval 1'
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest_bench import CPublisher, bench_environment

from tests.conftest import wait_until
from tests.ingest.fixtures import PrivateMosquitto, Stream, stored_count

TICKS_S = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_S


def _session(url: str, client_id: str, topic: str) -> None:
    """Create a persistent QoS 1 session subscribed to `topic`, then leave it offline."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    subscribed = threading.Event()
    client.on_subscribe = lambda *_: subscribed.set()
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    client.connect(
        "127.0.0.1", int(url.rsplit(":", 1)[1]), clean_start=False, properties=properties
    )
    client.loop_start()
    client.subscribe(topic, qos=1)
    assert subscribed.wait(10)
    client.disconnect()
    client.loop_stop()


def snapshot(depth: int) -> dict[str, float]:
    """One save of a store holding `depth` queued 1,082-byte messages: wall ms, CPU ms, MB."""
    # No autosave: only the save this measures writes the file.
    with PrivateMosquitto(extra="autosave_interval 0") as broker:
        root = f"snap-{uuid.uuid4().hex[:8]}"
        _session(broker.url, f"{root}-sub", f"{root}/#")
        if depth:
            stream = Stream.cranes(root, ["S"], 100, max(1, depth // 100))
            with CPublisher(broker.url, stream) as publisher:
                assert publisher.wait_acked(600)
        db = broker.persistence_path
        before = db.stat().st_ino if db.exists() else None
        saves = broker.saves()
        cpu0 = cpu_s(broker.pid)
        new = db.with_name(db.name + ".new")
        os.kill(broker.pid, signal.SIGUSR1)
        # The save starts when Mosquitto opens mosquitto.db.new (its loop notices the signal
        # within 100 ms) and ends when it renames it over mosquitto.db.
        assert wait_until(
            lambda: new.exists() or (db.exists() and db.stat().st_ino != before), 60, 0.0002
        )
        started = time.perf_counter()
        assert wait_until(lambda: db.exists() and db.stat().st_ino != before, 600, 0.0002)
        wall_ms = (time.perf_counter() - started) * 1000
        assert wait_until(lambda: broker.saves() > saves, 10)
        cpu_ms = (cpu_s(broker.pid) - cpu0) * 1000
        size_mb = db.stat().st_size / 1e6
    return {"depth": float(depth), "save_ms": wall_ms, "broker_cpu_ms": cpu_ms, "file_mb": size_mb}


@dataclass
class AckProbe:
    """A QoS 1 publisher sending one small message every `interval_s`: PUBACK latencies, ms."""

    url: str
    interval_s: float = 0.02
    latencies_ms: list[float] = field(default_factory=list)
    _sent: dict[int, float] = field(default_factory=dict)
    _early: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> AckProbe:
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"probe-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_publish = self._on_publish
        self._client.connect("127.0.0.1", int(self.url.rsplit(":", 1)[1]))
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_publish(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        now = time.perf_counter()
        with self._lock:
            sent = self._sent.pop(mid, None)
            if sent is None:
                self._early[mid] = now  # acknowledged before _run recorded the send
            else:
                self.latencies_ms.append((now - sent) * 1000)

    def _run(self) -> None:
        # Never hold _lock while calling paho: its network thread takes _lock in _on_publish.
        while not self._stop.wait(self.interval_s):
            sent = time.perf_counter()
            info = self._client.publish("probe/nobody", b"x", qos=1)
            with self._lock:
                acked = self._early.pop(info.mid, None)
                if acked is None:
                    self._sent[info.mid] = sent
                else:
                    self.latencies_ms.append((acked - sent) * 1000)

    def take(self) -> list[float]:
        """The latencies measured since the last call, plus any PUBACK still outstanding."""
        now = time.perf_counter()
        with self._lock:
            taken, self.latencies_ms = self.latencies_ms, []
            outstanding = [(now - sent) * 1000 for sent in self._sent.values()]
        return taken + outstanding


@dataclass(slots=True)
class Phase:
    """Counters of the broker at the start of a phase."""

    broker: PrivateMosquitto
    started: float = 0.0
    cpu: float = 0.0
    saves: int = 0
    max_file_mb: float = 0.0

    def begin(self) -> None:
        self.started = time.perf_counter()
        self.cpu = cpu_s(self.broker.pid)
        self.saves = self.broker.saves()
        self.max_file_mb = 0.0

    def watch(self) -> None:
        path = self.broker.persistence_path
        if path.exists():
            self.max_file_mb = max(self.max_file_mb, path.stat().st_size / 1e6)

    def end(self, name: str, probe: AckProbe) -> dict[str, float]:
        wall = time.perf_counter() - self.started
        lat = sorted(probe.take()) or [float("nan")]
        return {
            f"{name}_s": wall,
            f"{name}_saves": float(self.broker.saves() - self.saves),
            f"{name}_broker_cpu_pct": 100 * (cpu_s(self.broker.pid) - self.cpu) / wall,
            f"{name}_max_file_mb": self.max_file_mb,
            f"{name}_puback_p50_ms": lat[len(lat) // 2],
            f"{name}_puback_p99_ms": lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))],
            f"{name}_puback_max_ms": lat[-1],
        }


def rate(
    bench: Any,
    extra: str,
    rate_msgs_s: float,
    steady_s: float,
    outage_s: float,
    drain_limit_s: float = 120.0,
) -> dict[str, float]:
    """Steady, outage and drain phases at `rate_msgs_s` on a broker with `extra` settings."""
    with PrivateMosquitto(extra=extra) as broker:
        b = replace(bench, broker=broker)
        b.reset()
        settings = b.settings()
        total_s = steady_s + outage_s + 5.0
        stream = b.stream(settings, max(1, int(rate_msgs_s * total_s / 200)))
        result: dict[str, float] = {}
        phase = Phase(broker)
        with (
            b.ingest(settings, "rate") as ingest,
            AckProbe(broker.url) as probe,
            CPublisher(settings.mqtt_url, stream, rate_msgs_s=rate_msgs_s) as publisher,
        ):
            time.sleep(1.0)
            probe.take()
            phase.begin()
            _watch(phase, steady_s)
            result |= phase.end("steady", probe)
            ingest.kill()
            phase.begin()
            _watch(phase, outage_s)
            result |= phase.end("outage", probe)
            queued = publisher.published  # by the end of the outage
            phase.begin()
            stored = stored_count(b.db_url)
            ingest.start(wait_subscribed_s=0)
            # Drained: caught up with the publishers (or given up after drain_limit_s).
            deadline = time.perf_counter() + drain_limit_s
            while time.perf_counter() < deadline:
                if stored_count(b.db_url) >= publisher.published * 50 * 0.98:
                    break
                _watch(phase, 0.2)
            drained = stored_count(b.db_url) - stored
            result |= phase.end("drain", probe)
            result["drain_readings_s"] = drained / result["drain_s"]
        result["published_msgs"] = float(queued)
    return result


def _watch(phase: Phase, seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        phase.watch()
        time.sleep(0.05)


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _fmt(result: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:,.1f}" for k, v in result.items())


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenario; print each run and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=["snapshot", "rate"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--depths", type=int, nargs="*", default=[0, 10_000, 100_000, 500_000])
    parser.add_argument("--rate-msgs-s", type=float, default=3000.0, help="50-reading messages/s")
    parser.add_argument("--steady-s", type=float, default=20.0)
    parser.add_argument("--outage-s", type=float, default=20.0)
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        help="NAME=LINE|LINE: broker lines added after hazmon.conf ('default=' adds none)",
    )
    args = parser.parse_args(argv)
    print("command:", " ".join(["bench/broker_bench.py", *(argv or sys.argv[1:])]), flush=True)
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    if args.scenario == "snapshot":
        for depth in args.depths:
            runs = []
            for i in range(args.runs):
                runs.append(snapshot(depth))
                print(f"  snapshot depth {depth:,} run {i + 1}: {_fmt(runs[-1])}", flush=True)
            print(f"snapshot depth {depth:,} (median of {args.runs}): {_fmt(_median(runs))}")
    else:
        settings = [s.split("=", 1) for s in args.setting] or [["default", ""]]
        with bench_environment({}) as bench:
            for name, lines in settings:
                runs = []
                for i in range(args.runs):
                    extra = "\n".join(lines.split("|"))
                    runs.append(rate(bench, extra, args.rate_msgs_s, args.steady_s, args.outage_s))
                    print(f"  {name} run {i + 1}: {_fmt(runs[-1])}", flush=True)
                print(f"{name} (median of {args.runs}): {_fmt(_median(runs))}", flush=True)
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
