"""Ingest benchmarks: ceilings and hazmon's figures measured in the same run, as ratios.

Every scenario runs the real `hazmon ingest` (rules on) as a subprocess against a database of
its own on the local PostgreSQL and a private Mosquitto with hazmon's broker limits, fed by a
QoS 1 publisher of 50-reading crane payloads (tests/ingest/fixtures.py). Scenarios:

- ceilings: binary COPY into the readings hypertable (plain, and idempotent through a staging
  table + INSERT … ON CONFLICT DO NOTHING, and hazmon's own write path) and the raw broker
  rate (a paho subscriber draining a backlog with automatic acknowledgement);
- drain: a backlog published while ingest is down, then drained: the maximum rate;
- sustained: a fixed publish rate for a while; committed rate, backlog over time, no loss;
- burst: a large stream at full speed into a running ingest; peak memory of ingest;
- latency: publish of an over-limit reading → its alert committed (LISTEN/NOTIFY on a bench
  trigger), under background load at a share of the maximum rate;
- memory: peak resident memory of ingest for a stream of 50-reading messages, of 1,000-reading
  ones, of 1,000-reading ones padded to HAZMON_MAX_PAYLOAD_BYTES, and for a hundred 10 MB
  payloads (refused by ingest: published to a broker without hazmon's packet size limit, which
  would refuse them itself), each published at full speed into a running ingest.

Run from the repository root: `.venv/bin/python bench/ingest_bench.py all --runs 3`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hazmon.db import drop_database, with_database
from hazmon.migrate import migrate
from hazmon.settings import Settings
from ingest.store import _records, copy_direct
from tests.conftest import SERVER_URL, free_port
from tests.ingest.fixtures import (
    IngestProcess,
    PrivateMosquitto,
    Publisher,
    Stream,
    crane_inventory,
    series_map,
    stored_checksum,
    stored_count,
    stream_checksum,
)
from tests.inventories import load

SITE = "BENCH"
DEVICES = 200
PROBE_SITE = "PROBE"
PROBE_DEVICES = 50
COPY_BATCH = 5000

_NOTIFY_SQL = """
CREATE OR REPLACE FUNCTION bench_alert_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE opened text;
BEGIN
    SELECT string_agg(a.series_id || ':' || (extract(epoch FROM n.reading_at) * 1000)::bigint, ',')
    INTO opened
    FROM new_transitions n JOIN alerts a ON a.id = n.alert_id WHERE n.action = 'open';
    IF opened IS NOT NULL THEN PERFORM pg_notify('bench_alert', opened); END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER bench_alert_notify AFTER INSERT ON alert_transitions
    REFERENCING NEW TABLE AS new_transitions FOR EACH STATEMENT
    EXECUTE FUNCTION bench_alert_notify();
"""


@dataclass(slots=True)
class Bench:
    """One database and one private broker for the whole run; a fresh session per scenario."""

    db_url: str
    broker: PrivateMosquitto
    tmp: Path
    series: dict[tuple[str, str, str], int]
    ingest_settings: dict[str, Any]

    def settings(self, **overrides: Any) -> Settings:
        """Ingest settings on this bench, with a topic root and client id of their own."""
        tag = uuid.uuid4().hex[:8]
        return Settings(
            database_url=self.db_url,
            mqtt_url=self.broker.url,
            topic_root=f"bench-{tag}/v1",
            mqtt_client_id=f"bench-ingest-{tag}",
            mqtt_session_expiry_s=600,
            **(self.ingest_settings | overrides),
        )

    def reset(self) -> None:
        """Empty the readings and alerts, so every scenario starts on the same table."""
        with psycopg.connect(self.db_url) as conn:
            conn.execute("TRUNCATE readings, alert_transitions, alerts, dead_letters CASCADE")

    def stream(self, settings: Settings, messages_per_device: int) -> Stream:
        """The bench's crane stream under this scenario's topic root, all of it in the past."""
        return Stream.cranes(settings.topic_root, [SITE], DEVICES, messages_per_device)

    def wait_stored(self, readings: int, on_wait: Callable[[], None] = lambda: None) -> None:
        """Wait until the table holds `readings`; fail if it stops growing for 30 s."""
        last, since = -1, time.monotonic()
        while (count := stored_count(self.db_url)) < readings:
            if count != last:
                last, since = count, time.monotonic()
            assert time.monotonic() - since < 30, f"stalled at {count} of {readings} readings"
            on_wait()
            time.sleep(0.05)

    def ingest(self, settings: Settings, name: str) -> IngestProcess:
        """An ingest subprocess on `settings`, serving metrics on a free port."""
        return IngestProcess(settings, self.tmp / f"{name}.log", metrics_port=free_port())


@contextlib.contextmanager
def bench_environment(ingest_settings: dict[str, Any]) -> Iterator[Bench]:
    """A migrated database with the bench inventory and the bench's NOTIFY trigger."""
    url = with_database(SERVER_URL, f"hazmon_bench_{uuid.uuid4().hex[:8]}")
    migrate(url)
    try:
        with TemporaryDirectory(prefix="hazmon-bench-") as tmp, PrivateMosquitto() as broker:
            load(
                url,
                Path(tmp),
                *crane_inventory([SITE], DEVICES),
                *crane_inventory([PROBE_SITE], PROBE_DEVICES),
            )
            with psycopg.connect(url) as conn:
                conn.execute(_NOTIFY_SQL)
            yield Bench(url, broker, Path(tmp), series_map(url), ingest_settings)
    finally:
        drop_database(url)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process (VmHWM), MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def batch_stats(ingest: IngestProcess) -> dict[str, float]:
    """Mean readings per batch and mean commit time (ms) from ingest's own metrics."""
    m = ingest.scrape()
    batches = m["hazmon_ingest_batch_readings_count"] or float("nan")
    return {
        "mean_batch_readings": m["hazmon_ingest_batch_readings_sum"] / batches,
        "mean_commit_ms": 1000 * m["hazmon_ingest_commit_seconds_sum"] / batches,
    }


class CPublisher:
    """Publish a stream with Debian's mosquitto_pub (C, QoS 1), one `-l` process per topic.

    The load generator shares the two cores with what it measures: the paho publisher of the
    tests costs about 40 % of a core at 3,000 messages/s, mosquitto_pub a fraction of that.
    Lines are fed at `rate_msgs_s` (None: as fast as the pipes take them); each process stays
    far below the 65,535 messages after which mosquitto_pub -l quits at QoS 1
    (../shared/notes/measurements.md). `published` counts lines handed over; `wait_acked`
    waits until every process has had its messages acknowledged and exited.
    """

    def __init__(self, mqtt_url: str, stream: Stream, *, rate_msgs_s: float | None = None):
        assert stream.messages_per_device < 60_000
        self.stream = stream
        self.rate_msgs_s = rate_msgs_s
        self.published = 0
        port = mqtt_url.rsplit(":", 1)[1]
        command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-q", "1", "-l", "-t"]
        topics = [
            f"{stream.topic_root}/{site}/{device}/telemetry" for site, device in stream.devices
        ]
        self._processes = {
            topic: subprocess.Popen([*command, topic], stdin=subprocess.PIPE) for topic in topics
        }
        self._thread = threading.Thread(target=self._feed, name="c-publisher", daemon=True)

    def __enter__(self) -> CPublisher:
        time.sleep(0.5)  # let every mosquitto_pub connect
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join(600)
        for process in self._processes.values():
            process.kill()
            process.wait()

    def _feed(self) -> None:
        started = time.monotonic()
        for n, (topic, payload) in enumerate(self.stream.payloads()):
            if self.rate_msgs_s is not None:
                ahead_s = n / self.rate_msgs_s - (time.monotonic() - started)
                if ahead_s > 0:
                    time.sleep(ahead_s)
            stdin = self._processes[topic].stdin
            assert stdin is not None
            stdin.write(payload + b"\n")
            stdin.flush()
            self.published += 1
        for process in self._processes.values():
            assert process.stdin is not None
            process.stdin.close()

    def wait_acked(self, timeout_s: float) -> bool:
        """Wait until all lines are fed and every mosquitto_pub has exited successfully."""
        self._thread.join(timeout_s)
        deadline = time.monotonic() + timeout_s
        for process in self._processes.values():
            try:
                code = process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
            if code != 0:
                return False
        return True


# --- ceilings ------------------------------------------------------------------------------


def ceiling_copy(bench: Bench, rows: int, rotation: int) -> dict[str, float]:
    """Rows/s into the readings hypertable: plain COPY, staged idempotent, hazmon's path.

    The order of the three rotates with `rotation` (the run number): measured in a fixed order
    the first one came out about a fifth slower than the others on the same statements.
    """
    settings = bench.settings()
    stream = bench.stream(settings, max(1, rows // (DEVICES * 50)))
    sid, t, v = stream.expected(bench.series)
    order = np.argsort(t, kind="stable")  # arrival order: all devices, time ascending
    sid, t, v = sid[order], t[order], v[order]
    slices = [slice(i, i + COPY_BATCH) for i in range(0, len(sid), COPY_BATCH)]

    def plain(conn: psycopg.Connection[Any], s: slice) -> None:
        with (
            conn.cursor() as cur,
            cur.copy("COPY readings (time, series_id, value) FROM STDIN (FORMAT BINARY)") as cp,
        ):
            cp.write(_records(sid[s], t[s], v[s]))

    def staged(conn: psycopg.Connection[Any], s: slice) -> None:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS staging (time timestamptz, series_id int,"
                " value float8) ON COMMIT DELETE ROWS"
            )
            with cur.copy("COPY staging (time, series_id, value) FROM STDIN (FORMAT BINARY)") as cp:
                cp.write(_records(sid[s], t[s], v[s]))
            cur.execute("INSERT INTO readings SELECT * FROM staging ON CONFLICT DO NOTHING")

    def hazmon(conn: psycopg.Connection[Any], s: slice) -> None:
        copy_direct(conn, sid[s], t[s], v[s])

    with psycopg.connect(bench.db_url) as conn, conn.transaction():
        plain(conn, slices[0])  # warm-up: first chunk, catalogue caches
    rates = {}
    ways = [("plain_copy", plain), ("staged_idempotent", staged), ("hazmon", hazmon)]
    k = rotation % len(ways)
    for name, write in ways[k:] + ways[:k]:
        bench.reset()
        with psycopg.connect(bench.db_url) as conn:
            started = time.perf_counter()
            for s in slices:
                with conn.transaction():
                    write(conn, s)
            rates[name] = len(sid) / (time.perf_counter() - started)
    bench.reset()
    return rates


def ceiling_broker(bench: Bench, messages: int) -> dict[str, float]:
    """Msgs/s a paho subscriber (QoS 1, automatic ack) drains from a backlog; publish rate."""
    settings = bench.settings()
    stream = bench.stream(settings, max(1, messages // DEVICES))
    received = threading.Event()
    subscribed = threading.Event()
    count = 0

    def on_message(*_: Any) -> None:
        nonlocal count
        count += 1
        if count >= stream.messages:
            received.set()

    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=settings.mqtt_client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 600
    port = int(settings.mqtt_url.rsplit(":", 1)[1])
    client.connect("127.0.0.1", port, clean_start=False, properties=properties)
    client.loop_start()
    client.subscribe(f"{settings.topic_root}/#", qos=1)
    assert subscribed.wait(10)
    client.disconnect()
    client.loop_stop()
    started = time.perf_counter()
    with Publisher(settings.mqtt_url, stream) as publisher:
        assert publisher.wait_acked(600)
    publish_s = time.perf_counter() - started
    client.connect("127.0.0.1", port, clean_start=False, properties=properties)
    started = time.perf_counter()
    client.loop_start()
    assert received.wait(600), f"subscriber got {count}/{stream.messages}"
    drain_s = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return {"publish_msgs_s": stream.messages / publish_s, "subscribe_msgs_s": count / drain_s}


# --- hazmon --------------------------------------------------------------------------------


def drain(bench: Bench, readings: int, **overrides: Any) -> dict[str, float]:
    """A backlog queued at the broker while ingest is down, then drained: readings/s."""
    bench.reset()
    settings = bench.settings(**overrides)
    stream = bench.stream(settings, max(1, readings // (DEVICES * 50)))
    ingest = bench.ingest(settings, "drain")
    ingest.start()  # creates the persistent session and its subscriptions
    ingest.terminate()
    with CPublisher(settings.mqtt_url, stream) as publisher:
        assert publisher.wait_acked(600)
    with ingest:  # started and subscribed: measure from here
        started = time.perf_counter()
        already = stored_count(bench.db_url)
        bench.wait_stored(stream.readings)
        elapsed = time.perf_counter() - started
        peak = peak_rss_mb(ingest.pid)
        batches = batch_stats(ingest)
    assert stored_checksum(bench.db_url) == stream_checksum(stream, bench.series)
    return {"readings_s": (stream.readings - already) / elapsed, "peak_rss_mb": peak, **batches}


def sustained(bench: Bench, readings_s: float, duration_s: float) -> dict[str, float]:
    """Publish at a fixed rate for `duration_s`; committed rate, backlog, no loss."""
    bench.reset()
    settings = bench.settings()
    msgs_s = readings_s / 50
    stream = bench.stream(settings, max(1, int(msgs_s * duration_s / DEVICES)))
    samples: list[tuple[float, int, int]] = []  # (elapsed s, published readings, stored)
    with bench.ingest(settings, "sustained") as ingest:
        with CPublisher(settings.mqtt_url, stream, rate_msgs_s=msgs_s) as publisher:
            started = time.perf_counter()
            while publisher.published < stream.messages:
                time.sleep(1.0)
                samples.append(
                    (
                        time.perf_counter() - started,
                        publisher.published * 50,
                        stored_count(bench.db_url),
                    )
                )
            publish_end = time.perf_counter()
            assert publisher.wait_acked(120)
        bench.wait_stored(stream.readings)
        drain_after_s = time.perf_counter() - publish_end
        peak = peak_rss_mb(ingest.pid)
        batches = batch_stats(ingest)
    assert stored_checksum(bench.db_url) == stream_checksum(stream, bench.series)
    steady = [s for s in samples if s[0] > 5.0] or samples
    backlog = [pub - stored for _, pub, stored in steady]
    half = len(backlog) // 2
    first = statistics.mean(backlog[:half]) if half else 0.0
    second = statistics.mean(backlog[half:]) if backlog else 0.0
    t0, _, s0 = steady[0]
    t1, _, s1 = steady[-1]
    return {
        "target_readings_s": readings_s,
        "committed_readings_s": (s1 - s0) / (t1 - t0) if t1 > t0 else float("nan"),
        "backlog_mean_first_half": first,
        "backlog_mean_second_half": second,
        "backlog_max": float(max(backlog, default=0)),
        "drain_after_publish_s": drain_after_s,
        "peak_rss_mb": peak,
        **batches,
    }


def burst(bench: Bench, readings: int) -> dict[str, float]:
    """A stream published at full speed into a running ingest: every reading once, peak RSS."""
    bench.reset()
    settings = bench.settings()
    stream = bench.stream(settings, max(1, readings // (DEVICES * 50)))
    peak = 0.0
    with bench.ingest(settings, "burst") as ingest:
        started = time.perf_counter()
        with CPublisher(settings.mqtt_url, stream) as publisher:
            while publisher.published < stream.messages:
                time.sleep(0.5)
                peak = max(peak, peak_rss_mb(ingest.pid))
            assert publisher.wait_acked(600)
        publish_s = time.perf_counter() - started

        def watch_memory() -> None:
            nonlocal peak
            peak = max(peak, peak_rss_mb(ingest.pid))

        bench.wait_stored(stream.readings, watch_memory)
        elapsed = time.perf_counter() - started
        peak = max(peak, peak_rss_mb(ingest.pid))
    assert stored_checksum(bench.db_url) == stream_checksum(stream, bench.series)
    return {
        "readings": float(stream.readings),
        "publish_readings_s": stream.readings / publish_s,
        "committed_readings_s": stream.readings / elapsed,
        "peak_rss_mb": peak,
    }


MEMORY_CASES = ("messages_50", "messages_1000", "padded_256k", "refused_10mb")
HUGE_BYTES = 10 * 1024 * 1024
NO_PACKET_LIMIT = "max_packet_size 268435455"  # MQTT's own maximum: lifts hazmon.conf's limit


def memory(bench: Bench, case: str, readings: int, **overrides: Any) -> dict[str, float]:
    """Peak resident memory of ingest (VmHWM, MB) while it takes one of `MEMORY_CASES`."""
    if case == "refused_10mb":
        with PrivateMosquitto(extra=NO_PACKET_LIMIT) as broker:
            return _memory(replace(bench, broker=broker), case, readings, **overrides)
    return _memory(bench, case, readings, **overrides)


def _memory(bench: Bench, case: str, readings: int, **overrides: Any) -> dict[str, float]:
    bench.reset()
    settings = bench.settings(**overrides)
    root = settings.topic_root
    publisher: CPublisher | Publisher
    if case == "messages_50":
        stream = bench.stream(settings, max(1, readings // (DEVICES * 50)))
    elif case in ("messages_1000", "padded_256k"):
        pad = settings.max_payload_bytes if case == "padded_256k" else 0
        per_device = max(1, readings // (DEVICES * 1000))
        stream = Stream.cranes(root, [SITE], DEVICES, per_device, entries=100, pad_to_bytes=pad)
    else:  # a hundred 50-reading payloads padded to 10 MB: each refused as payload_too_large
        stream = Stream.cranes(root, [SITE], 100, 1, pad_to_bytes=HUGE_BYTES)
    with bench.ingest(settings, f"memory-{case}") as ingest:
        started = time.perf_counter()
        if case == "refused_10mb":
            publisher = Publisher(settings.mqtt_url, stream)
        else:
            publisher = CPublisher(settings.mqtt_url, stream)
        with publisher:
            assert publisher.wait_acked(600)
        if case == "refused_10mb":
            assert wait_until_value(lambda: _dead_letters(bench.db_url), stream.messages, 300)
            stored = 0
        else:
            bench.wait_stored(stream.readings)
            stored = stream.readings
        elapsed = time.perf_counter() - started
        peak = peak_rss_mb(ingest.pid)
    if stored:
        assert stored_checksum(bench.db_url) == stream_checksum(stream, bench.series)
    payload_kb = max(len(p) for _, p in itertools.islice(stream.payloads(), 1)) / 1024
    return {
        "messages": float(stream.messages),
        "payload_kb": payload_kb,
        "readings_stored": float(stored),
        "seconds": elapsed,
        "peak_rss_mb": peak,
    }


def _dead_letters(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM dead_letters").fetchone()
    return int(row[0]) if row else 0


def wait_until_value(read: Callable[[], int], target: int, timeout_s: float) -> bool:
    """Wait until `read()` reaches `target`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read() >= target:
            return True
        time.sleep(0.2)
    return read() >= target


def latency(bench: Bench, readings_s: float, duration_s: float) -> dict[str, float]:
    """Publish → alert committed for over-limit probes under background load: p50, p99 ms."""
    bench.reset()
    settings = bench.settings()
    msgs_s = readings_s / 50
    stream = bench.stream(settings, max(1, int(msgs_s * duration_s / DEVICES)))
    moment = {
        device: bench.series[(PROBE_SITE, device, "moment_ratio")]
        for device in {d for s, d, _ in bench.series if s == PROBE_SITE}
    }
    sent: dict[tuple[int, int], float] = {}
    latencies: list[float] = []
    listening = threading.Event()
    done = threading.Event()

    def listen() -> None:
        with psycopg.connect(bench.db_url, autocommit=True) as conn:
            conn.execute("LISTEN bench_alert")
            listening.set()
            while not done.is_set():
                for note in conn.notifies(timeout=0.2):
                    at = time.time()
                    for item in note.payload.split(","):
                        sid, ts = item.split(":")
                        published = sent.get((int(sid), int(ts)))
                        if published is not None:
                            latencies.append((at - published) * 1000)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert listening.wait(10)
    probe = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    probe.connect("127.0.0.1", int(settings.mqtt_url.rsplit(":", 1)[1]))
    probe.loop_start()
    devices = sorted(moment)
    with bench.ingest(settings, "latency") as ingest:
        with CPublisher(settings.mqtt_url, stream, rate_msgs_s=msgs_s) as publisher:
            time.sleep(3.0)  # let the background load settle
            n = 0
            while publisher.published < stream.messages:
                device = devices[n % len(devices)]
                n += 1
                now = time.time()
                ts = int(now * 1000)
                # Three normal readings resolve the previous probe's alert, then one over limit.
                entries = [{"ts": ts - k, "values": {"moment_ratio": 0.5}} for k in (3, 2, 1)]
                entries.append({"ts": ts, "values": {"moment_ratio": 1.05}})
                sent[(moment[device], ts)] = now
                probe.publish(
                    f"{settings.topic_root}/{PROBE_SITE}/{device}/telemetry",
                    json.dumps(entries),
                    qos=1,
                )
                time.sleep(0.05)
            assert publisher.wait_acked(120)
        time.sleep(1.0)
        peak = peak_rss_mb(ingest.pid)
    done.set()
    listener.join(5)
    probe.disconnect()
    probe.loop_stop()
    ordered = sorted(latencies)
    return {
        "background_readings_s": readings_s,
        "probes": float(n),
        "alerts_seen": float(len(ordered)),
        "p50_ms": _quantile(ordered, 0.50),
        "p99_ms": _quantile(ordered, 0.99),
        "max_ms": ordered[-1] if ordered else float("nan"),
        "peak_rss_mb": peak,
    }


def _quantile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- the run -------------------------------------------------------------------------------


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def _measure(name: str, runs: int, scenario: Callable[[], dict[str, float]]) -> dict[str, float]:
    results = []
    for i in range(runs):
        result = scenario()
        print(f"  {name} run {i + 1}: {_fmt(result)}", flush=True)
        results.append(result)
    median = _median(results)
    print(f"{name} (median of {runs}): {_fmt(median)}", flush=True)
    return median


def _fmt(result: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:,.1f}" for k, v in result.items())


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios; print each run, the medians and the ratios to the ceilings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "scenarios",
        nargs="*",
        default=["ceilings", "drain", "sustained", "latency"],
        choices=["ceilings", "drain", "sustained", "burst", "latency", "memory"],
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument("--copy-rows", type=int, default=1_000_000)
    parser.add_argument("--drain-readings", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=150_000, help="sustained readings/s")
    parser.add_argument("--duration-s", type=float, default=120)
    parser.add_argument("--burst-readings", type=int, default=10_000_000)
    parser.add_argument(
        "--latency-share", type=float, default=0.2, help="of the drain rate, for latency"
    )
    parser.add_argument("--latency-duration-s", type=float, default=30)
    parser.add_argument(
        "--batch-readings", type=int, help="HAZMON_BATCH_MAX_READINGS for ingest (default: its own)"
    )
    parser.add_argument("--memory-readings", type=int, default=3_000_000)
    parser.add_argument(
        "--memory-cases", nargs="*", default=list(MEMORY_CASES), choices=MEMORY_CASES
    )
    parser.add_argument(
        "--pending-bytes", type=int, help="HAZMON_MAX_PENDING_BYTES for ingest (default: its own)"
    )
    args = parser.parse_args(argv)
    ingest_settings = {}
    if args.batch_readings:
        ingest_settings["batch_max_readings"] = args.batch_readings
    if args.pending_bytes:
        ingest_settings["max_pending_bytes"] = args.pending_bytes
    print("command:", " ".join(["bench/ingest_bench.py", *(argv or sys.argv[1:])]), flush=True)
    results: dict[str, dict[str, float]] = {}
    with bench_environment(ingest_settings) as bench:
        if "ceilings" in args.scenarios:
            rotation = itertools.count()
            results["copy"] = _measure(
                "copy ceilings, rows/s",
                args.runs,
                lambda: ceiling_copy(bench, args.copy_rows, next(rotation)),
            )
            results["broker"] = _measure(
                "broker ceiling, msgs/s",
                args.runs,
                lambda: ceiling_broker(bench, args.drain_readings // 50),
            )
        if "drain" in args.scenarios:
            results["drain"] = _measure(
                "drain (maximum rate)", args.runs, lambda: drain(bench, args.drain_readings)
            )
        if "sustained" in args.scenarios:
            results["sustained"] = _measure(
                "sustained",
                args.runs,
                lambda: sustained(bench, args.rate, args.duration_s),
            )
        if "burst" in args.scenarios:
            results["burst"] = _measure("burst", 1, lambda: burst(bench, args.burst_readings))
        if "memory" in args.scenarios:
            for case in args.memory_cases:
                results[f"memory_{case}"] = _measure(
                    f"memory {case}",
                    args.runs,
                    lambda case=case: memory(bench, case, args.memory_readings),
                )
        if "latency" in args.scenarios:
            maximum = results.get("drain", {}).get("readings_s", args.rate)
            results["latency"] = _measure(
                "latency",
                args.runs,
                lambda: latency(bench, maximum * args.latency_share, args.latency_duration_s),
            )
    _ratios(results)
    print(json.dumps(results))
    return 0


def _ratios(results: dict[str, dict[str, float]]) -> None:
    copy = results.get("copy")
    if copy is None:
        return
    print(
        f"ratios: idempotent/plain COPY {copy['staged_idempotent'] / copy['plain_copy']:.2f}, "
        f"hazmon's direct COPY/plain COPY {copy['hazmon'] / copy['plain_copy']:.2f} (the same "
        "statement: shows the noise)"
    )
    for name in ("drain", "sustained", "burst"):
        if name in results:
            rate = results[name].get("committed_readings_s", results[name].get("readings_s"))
            assert rate is not None
            print(
                f"ratios: {name} {rate:,.0f} readings/s = "
                f"{rate / copy['plain_copy']:.2f} × plain COPY, "
                f"{rate / copy['staged_idempotent']:.2f} × idempotent COPY"
            )


if __name__ == "__main__":
    sys.exit(main())
