"""Ingest: MQTT telemetry from site gateways into TimescaleDB, graded by the rules, acked after commit."""

from ingest.decode import Limits, Reason, SeriesLookup, decode_telemetry, parse_topic
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
