"""Ingest: MQTT telemetry from site gateways into TimescaleDB, graded by the rules, acked after commit."""

from ingest.decode import Limits, SeriesLookup, decode_telemetry
from ingest.metrics import IngestMetrics
from ingest.service import IngestService, subscriptions

__all__ = [
    "IngestMetrics",
    "IngestService",
    "Limits",
    "SeriesLookup",
    "decode_telemetry",
    "subscriptions",
]
