"""Ingest polls a broker that is down and subscribes within a fraction of a second of its return."""

from __future__ import annotations

import time

from hazmon.backoff import Backoff, BrokerBackoff
from hazmon.settings import MqttEndpoint
from ingest.mqtt import MqttSource
from tests.conftest import wait_until
from tests.ingest.fixtures import PrivateMosquitto


def test_broker_backoff_is_capped_below_a_gateways_reconnect_delay() -> None:
    backoff = BrokerBackoff()
    delays = [backoff.next_delay_s() for _ in range(50)]
    assert max(delays) <= 0.25 < Backoff().max_s


def test_ingest_subscribes_at_once_when_the_broker_answers_again() -> None:
    with PrivateMosquitto() as broker:
        broker.stop(graceful=False)
        source = MqttSource(
            MqttEndpoint.parse(broker.url),
            client_id="hazmon-reconnect-test",
            topics=["reconnect-test/#"],
            max_pending=10,
            session_expiry_s=60,
            keepalive_s=30,
        )
        source.start()
        try:
            # Down for 6 s: the database's backoff (0.2 s doubling to 15 s) would be waiting
            # several seconds by now; the broker's poll is never more than 0.25 s away.
            time.sleep(6.0)
            assert not source.connected.is_set()
            broker.start()
            back_at = time.monotonic()
            assert wait_until(source.connected.is_set, 5, 0.005)
            assert time.monotonic() - back_at < 0.6
        finally:
            source.stop()
