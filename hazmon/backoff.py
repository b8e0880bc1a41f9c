"""Capped, jittered exponential backoff, shared by every reconnect and retry loop."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays of `initial_s * factor**n`, capped at `max_s`, each scaled by a random jitter.

    "Full jitter" in [1 - jitter, 1] spreads reconnecting clients so that a broker or database
    coming back is not hit by all of them at once. Tests shrink the constants.
    """

    initial_s: float = 0.2
    max_s: float = 15.0
    factor: float = 2.0
    jitter: float = 0.5
    attempt: int = 0
    _rng: random.Random = field(default_factory=random.Random)

    def next_delay_s(self) -> float:
        """The delay before the next attempt, in seconds; grows until `reset()`."""
        base = min(self.max_s, self.initial_s * self.factor**self.attempt)
        self.attempt += 1
        return base * (1.0 - self.jitter * self._rng.random())

    def reset(self) -> None:
        """Start again from the initial delay (after a success)."""
        self.attempt = 0


@dataclass(slots=True)
class BrokerBackoff(Backoff):
    """Delays while the MQTT broker is unreachable: a quick poll, capped at a quarter second.

    After a broker restart, ingest must re-subscribe before the gateways publish: a Mosquitto
    killed with SIGKILL may restore a snapshot without ingest's session, and whatever gateways
    publish before ingest subscribes again has no subscriber (docs/scaling.md). Gateway clients
    wait a second or more before reconnecting (paho's default is 1 s, doubling to 2 min), so
    ingest polls faster than that; a refused TCP connect costs the broker machine nothing.
    """

    initial_s: float = 0.05
    max_s: float = 0.25
