"""A kill -9 of Mosquitto mid-stream: what is lost, and that ingest's session survives.

Mosquitto keeps sessions, subscriptions and queued messages in memory and writes them to its
persistence file only on shutdown and every `autosave_interval`; after a SIGKILL it restores
the last file. Before hazmon.conf set a short interval (Mosquitto's default is 30 minutes) the
file often lacked ingest's session: gateways reconnecting before ingest then published into a
broker that had no subscriber for them and dropped everything, acknowledged (149,900 readings
in one 30 s outage). These tests run on a private Mosquitto configured with hazmon.conf (or
the file HAZMON_TEST_BROKER_CONF names) and assert what may be lost: only messages the broker
had acknowledged in the moment before the kill, never one published after the restart; every
message stored whole and exactly once, the stored set equal to the stream minus the lost ones.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from hazmon.settings import Settings
from tests.conftest import wait_until
from tests.ingest.fixtures import (
    HAZMON_CONF,
    IngestProcess,
    Loss,
    PrivateMosquitto,
    Publisher,
    Stream,
    autosave_period_s,
    crane_inventory,
    series_map,
    stored_count,
    stream_loss,
)
from tests.inventories import load

pytestmark = [pytest.mark.slow, pytest.mark.fault]

DEVICES = 20
RATE_MSGS_S = 800.0
LOSS_WINDOW_S = 1.0
"""Lost messages must all have been published in this last second before the kill."""
AWAY_MESSAGES = 2_000
"""Published after the restart while ingest is away: more than Mosquitto's default queue."""


def _stream(settings: Settings, duration_s: float) -> Stream:
    per_device = int(RATE_MSGS_S * duration_s / DEVICES)
    return Stream.cranes(settings.topic_root, ["K1"], DEVICES, per_device)


def _log_times(log_path: Path, message: str) -> list[tuple[float, dict[str, object]]]:
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"msg": "{message}"' in line:
            record = json.loads(line)
            found.append((datetime.fromisoformat(record["ts"]).timestamp(), record))
    return found


def _settle(stream: Stream, publisher: Publisher, db_url: str) -> None:
    assert publisher.wait_acked(120), f"broker acked {publisher.acked}/{stream.messages}"
    counts = [-1]

    def complete_or_stalled() -> bool:
        counts.append(stored_count(db_url))
        return counts[-1] >= stream.readings or (len(counts) > 10 and counts[-1] == counts[-11])

    wait_until(complete_or_stalled, 120, 0.5)  # stalled: unchanged for 5 s
    time.sleep(0.5)  # anything redelivered late must not add rows


def _assert_loss(loss: Loss, killed_at: int) -> None:
    """Lost: only messages published in the LOSS_WINDOW_S before the kill (index < killed_at)."""
    window = int(RATE_MSGS_S * LOSS_WINDOW_S)
    assert loss.complete, "a message was stored in part"
    late = [n for n in loss.lost if n >= killed_at or n < killed_at - window]
    assert not late, (
        f"{len(loss.lost)} messages lost, {len(late)} outside the {window} published before the "
        f"kill (published by then: {killed_at}; first lost {loss.lost[:3]}, last {loss.lost[-3:]})"
    )
    assert loss.stored == loss.expected, "stored readings differ from the stream minus the lost"


def test_kill_9_of_the_broker_mid_stream_loses_at_most_the_moment_before(
    on_private_broker: tuple[PrivateMosquitto, Settings], tmp_path: Path
) -> None:
    broker, settings = on_private_broker
    db_url = settings.database_url
    load(db_url, tmp_path, *crane_inventory(["K1"], DEVICES))
    stream = _stream(settings, 8.0)
    log_path = tmp_path / "ingest.log"
    with (
        IngestProcess(settings, log_path) as ingest,
        Publisher(settings.mqtt_url, stream, rate_msgs_s=RATE_MSGS_S) as publisher,
    ):
        assert wait_until(lambda: stored_count(db_url) >= 60_000, 60), ingest.log_tail()
        broker.stop(graceful=False)
        killed_at = publisher.published
        time.sleep(1.0)
        broker.start()
        back_at = time.time()
        _settle(stream, publisher, db_url)
    loss = stream_loss(stream, series_map(db_url), db_url)
    # Ingest polled the broker and subscribed again well before the publishers (paho's
    # reconnect delay is 1 s or more) could publish into it.
    resubscribed = [t for t, _ in _log_times(log_path, "mqtt subscribed") if t > back_at - 0.5]
    assert resubscribed, "ingest did not subscribe again"
    assert resubscribed[0] - back_at < 0.75, f"re-subscribed {resubscribed[0] - back_at:.2f} s late"
    _assert_loss(loss, killed_at)
    print(f"kill -9 of the broker: {len(loss.lost)} of {stream.messages} messages lost")


def test_kill_9_of_the_broker_keeps_the_session_of_an_ingest_subscribed_moments_before(
    on_private_broker: tuple[PrivateMosquitto, Settings], tmp_path: Path
) -> None:
    """The case that lost 149,900 readings: ingest's session younger than Mosquitto's default
    interval, and gateways publishing after the restart before ingest is back."""
    broker, settings = on_private_broker
    db_url = settings.database_url
    load(db_url, tmp_path, *crane_inventory(["K1"], DEVICES))
    period_s = autosave_period_s(HAZMON_CONF.read_text(encoding="utf-8"))
    # Crash one snapshot period (plus margin) after ingest subscribed, capped at a minute: a
    # 30-minute interval leaves the session out of every snapshot.
    crash_after_s = min(period_s + 1.5, 60.0)
    stream = _stream(settings, crash_after_s + 1.0 + AWAY_MESSAGES / RATE_MSGS_S + 4.0)
    log_path = tmp_path / "ingest.log"
    with (
        IngestProcess(settings, log_path) as ingest,
        Publisher(settings.mqtt_url, stream, rate_msgs_s=RATE_MSGS_S) as publisher,
    ):
        subscribed_at = _log_times(log_path, "mqtt subscribed")[0][0]
        time.sleep(max(0.0, subscribed_at + crash_after_s - time.time()))
        # Broker and ingest go down together; the publishers come back first.
        broker.stop(graceful=False)
        ingest.kill()
        killed_at = publisher.published
        time.sleep(1.0)
        broker.start()
        resumed = publisher.acked
        assert wait_until(lambda: publisher.acked >= resumed + AWAY_MESSAGES, 30)
        ingest.start()
        _settle(stream, publisher, db_url)
    loss = stream_loss(stream, series_map(db_url), db_url)
    print(f"kill -9 of broker and ingest: {len(loss.lost)} of {stream.messages} messages lost")
    connected = [record for _, record in _log_times(log_path, "mqtt connected")]
    assert connected[-1]["session_present"] is True, (
        f"the broker restarted without ingest's session; {len(loss.lost)} messages lost"
    )
    _assert_loss(loss, killed_at)
