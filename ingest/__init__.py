"""Ingest: MQTT telemetry from site gateways into TimescaleDB, graded by the rules, acked after commit."""

from hazmon.wire import Reason, parse_topic
from ingest.decode import Limits, SeriesLookup, decode_telemetry
from ingest.metrics import IngestMetrics
from ingest.replay import ReplaySummary, replay_dead_letters
from ingest.service import IngestService, subscriptions

__all__ = [
    "IngestMetrics",
    "IngestService",
    "Limits",
    "Reason",
    "ReplaySummary",
    "SeriesLookup",
    "decode_telemetry",
    "parse_topic",
    "replay_dead_letters",
    "subscriptions",
]
