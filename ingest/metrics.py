"""Prometheus metrics of the ingest path (names per client_python's guide; bounded labels only)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True, slots=True)
class IngestMetrics:
    """Every ingest metric, registered in one registry (a fresh one per test)."""

    messages_received: Counter
    messages_committed: Counter
    readings_received: Counter
    readings_committed: Counter
    readings_duplicate: Counter
    write_path: Counter
    dead_letters: Counter
    batch_readings: Histogram
    commit_seconds: Histogram
    lag_seconds: Histogram
    oldest_reading_age_seconds: Histogram
    broker_reconnects: Counter
    db_failures: Counter
    pending_messages: Gauge
    pending_bytes: Gauge
    works_isolated: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry = REGISTRY) -> IngestMetrics:
        """Register the metrics in `registry`."""
        return cls(
            messages_received=Counter(
                "hazmon_ingest_messages_received", "MQTT messages received", registry=registry
            ),
            messages_committed=Counter(
                "hazmon_ingest_messages_committed",
                "MQTT messages whose contents were committed and acknowledged",
                registry=registry,
            ),
            readings_received=Counter(
                "hazmon_ingest_readings_received", "valid readings decoded", registry=registry
            ),
            readings_committed=Counter(
                "hazmon_ingest_readings_committed", "new readings committed", registry=registry
            ),
            readings_duplicate=Counter(
                "hazmon_ingest_readings_duplicate",
                "readings already stored (redeliveries), not stored again",
                registry=registry,
            ),
            write_path=Counter(
                "hazmon_ingest_write_batches",
                "committed batches by write path: direct COPY, or staged after a duplicate",
                ["path"],
                registry=registry,
            ),
            dead_letters=Counter(
                "hazmon_ingest_dead_letters",
                "payloads refused in whole or part, by reason",
                ["reason"],
                registry=registry,
            ),
            batch_readings=Histogram(
                "hazmon_ingest_batch_readings",
                "readings per committed batch",
                buckets=(10, 100, 500, 1000, 2500, 5000, 10000, 25000),
                registry=registry,
            ),
            commit_seconds=Histogram(
                "hazmon_ingest_commit_seconds",
                "time to write and commit one batch",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                registry=registry,
            ),
            lag_seconds=Histogram(
                "hazmon_ingest_lag_seconds",
                "commit time minus reading time, per batch (newest reading)",
                buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600),
                registry=registry,
            ),
            oldest_reading_age_seconds=Histogram(
                "hazmon_ingest_oldest_reading_age_seconds",
                "commit time minus reading time, per batch (oldest reading): late data shows here",
                buckets=(0.1, 1, 10, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400),
                registry=registry,
            ),
            broker_reconnects=Counter(
                "hazmon_ingest_broker_reconnects", "MQTT reconnections", registry=registry
            ),
            db_failures=Counter(
                "hazmon_ingest_db_failures",
                "batches that failed to commit and were retried",
                registry=registry,
            ),
            pending_messages=Gauge(
                "hazmon_ingest_pending_messages",
                "messages received but not yet acknowledged",
                registry=registry,
            ),
            pending_bytes=Gauge(
                "hazmon_ingest_pending_bytes",
                "payload bytes of the messages received but not yet acknowledged",
                registry=registry,
            ),
            works_isolated=Gauge(
                "hazmon_ingest_works_isolated",
                "works whose rules cannot be resolved: readings stored, not graded",
                registry=registry,
            ),
        )
