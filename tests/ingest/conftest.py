"""Fixtures of the ingest tests (helpers live in tests/support/harness.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hazmon.settings import Settings
from tests.support.harness import PrivateMosquitto


@pytest.fixture
def on_private_broker(settings: Settings) -> Iterator[tuple[PrivateMosquitto, Settings]]:
    """A Mosquitto of this test's own, configured with deploy/mosquitto/hazmon.conf.

    The shared broker may run with other limits (a SIGHUP reload of Mosquitto 2.0.11 was
    measured not to apply max_queued_messages): tests that make ingest fall behind or go away
    use this one, so that what they prove is what deploy/mosquitto/hazmon.conf promises.
    """
    with PrivateMosquitto() as broker:
        yield broker, settings.model_copy(update={"mqtt_url": broker.url})
