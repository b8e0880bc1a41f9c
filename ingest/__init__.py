"""Ingest: MQTT telemetry from site gateways into TimescaleDB, graded by the rules, acked after commit."""

from ingest.decode import Limits, Reason, SeriesLookup, decode_telemetry, parse_topic
from ingest.metrics import IngestMetrics
from ingest.service import IngestService, subscriptions

__all__ = [
    "IngestMetrics",
    "IngestService",
    "Limits",
    "Reason",
    "SeriesLookup",
    "decode_telemetry",
    "parse_topic",
    "subscriptions",
]
