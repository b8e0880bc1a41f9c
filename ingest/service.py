"""The ingest loop: batch messages, decode, store idempotently with the rules' transitions,
commit, then acknowledge. Nothing is acknowledged before it is committed; nothing is dropped
when the database is away: the batch waits, unacknowledged, and the broker holds the rest.

No message can stop ingest: one whose decoding raises is dead-lettered as decode_failed; a batch
the database refuses for a reason other than the connection is committed in parts (bisected)
until the message it cannot store is found, which is dead-lettered as store_failed. Either way
the message is acknowledged with its batch, so the broker does not deliver it again and again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from hazmon.backoff import Backoff
from hazmon.db import DatabaseError, connect
from hazmon.settings import IngestSettings
from hazmon.timeutil import now_us
from hazmon.wire import Reason, parse_topic, subscription_filters
from ingest import alerts, replay, store
from ingest.decode import Decoded, Limits, Rejection, SeriesLookup, decode_telemetry
from ingest.metrics import IngestMetrics
from ingest.mqtt import Message, MqttSource
from ingest.records import DeadLetter, DeviceStatus, ReplayRequest
from ingest.status import parse_status
from ingest.store import (
    DuplicateReadingError,
    conflicting_readings,
    copy_direct,
    copy_idempotent,
    insert_dead_letters,
    load_lookup,
    record_device_status,
    registry_version,
)
from rules import Batch, Engine

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 1.0
REPLAY_CHECK_INTERVAL_S = 0.25
"""How often an idle worker looks for queued dead-letter replays."""
REPLAY_BUDGET_S = 0.25
"""Longest a worker spends on replays between two live batches (then it goes back to them)."""
ERROR_DETAIL_CHARS = 300
"""How much of an exception's message a dead letter's detail and the log keep."""


@dataclass(slots=True)
class _Batch:
    """Messages being batched, decoded as they arrive into columns, dead letters and statuses."""

    messages: list[Message] = field(default_factory=list)
    series_id: list[NDArray[np.int64]] = field(default_factory=list)
    time_us: list[NDArray[np.int64]] = field(default_factory=list)
    value: list[NDArray[np.float64]] = field(default_factory=list)
    origin: list[NDArray[np.int64]] = field(default_factory=list)
    """Index in `messages` of the message each reading came from."""
    readings: int = 0
    retried: bool = False
    """A commit of this batch failed: it may have committed all the same (ambiguous commit)."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    letter_origin: list[int] = field(default_factory=list)
    """Index in `messages` of the message each dead letter is about."""
    statuses: list[DeviceStatus] = field(default_factory=list)
    status_origin: list[int] = field(default_factory=list)

    def add(self, m: Message, outcome: Decoded | DeviceStatus | Rejection) -> None:
        """Append a message with what decoding it gave: readings, a status or a rejection."""
        index = len(self.messages)
        self.messages.append(m)
        if isinstance(outcome, DeviceStatus):
            self.statuses.append(outcome)
            self.status_origin.append(index)
            return
        rejection = outcome if isinstance(outcome, Rejection) else outcome.rejection
        if isinstance(outcome, Decoded) and outcome.count:
            self.series_id.append(outcome.series_id)
            self.time_us.append(outcome.time_us)
            self.value.append(outcome.value)
            self.origin.append(np.full(outcome.count, index))
            self.readings += outcome.count
        if rejection is not None:
            self.dead_letters.append(_letter(m, rejection.reason, rejection.detail))
            self.letter_origin.append(index)

    def part(self, lo: int, hi: int) -> _Batch:
        """The messages `lo` to `hi` (exclusive) with their readings, letters and statuses."""
        part = _Batch(messages=self.messages[lo:hi], retried=self.retried)
        if self.origin:
            origin = np.concatenate(self.origin)
            keep = (origin >= lo) & (origin < hi)
            if keep.any():
                series_id, time_us, value = self.columns()
                part.series_id, part.time_us = [series_id[keep]], [time_us[keep]]
                part.value, part.origin = [value[keep]], [origin[keep] - lo]
                part.readings = int(keep.sum())
        for index, letter in zip(self.letter_origin, self.dead_letters, strict=True):
            if lo <= index < hi:
                part.dead_letters.append(letter)
                part.letter_origin.append(index - lo)
        for index, status in zip(self.status_origin, self.statuses, strict=True):
            if lo <= index < hi:
                part.statuses.append(status)
                part.status_origin.append(index - lo)
        return part

    def columns(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """All readings of the batch as three columns."""
        if not self.series_id:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
        return (
            np.concatenate(self.series_id),
            np.concatenate(self.time_us),
            np.concatenate(self.value),
        )


def _conflict_letters(batch: _Batch, positions: NDArray[np.int64]) -> list[DeadLetter]:
    """One dead letter per message holding readings that conflict with stored ones."""
    if len(positions) == 0:
        return []
    origin = np.concatenate(batch.origin)[positions]
    letters = []
    for index, count in zip(*np.unique(origin, return_counts=True), strict=True):
        m = batch.messages[int(index)]
        detail = (
            f"{count} readings at a (series, time) already stored with another value; "
            "the stored value was kept"
        )
        letters.append(_letter(m, Reason.DUPLICATE_CONFLICT, detail, seen_before=batch.retried))
    return letters


def _letter(m: Message, reason: str, detail: str, *, seen_before: bool = False) -> DeadLetter:
    """The dead letter of a message; marked redelivered if the broker or we saw it before."""
    return DeadLetter(
        m.topic, reason, detail, m.payload, m.received_us, redelivered=m.dup or seen_before
    )


def _describe(exc: BaseException) -> str:
    """`Type: message` of an exception, short and storable (no NUL, no lone surrogate)."""
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    text = str(exc).strip().replace("\x00", "\\x00")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) > ERROR_DETAIL_CHARS:
        text = text[: ERROR_DETAIL_CHARS - 1] + "…"
    return f"{name}: {text}" if text else name


def _log_last_resort(what: str, reason: Reason, m: Message, exc: Exception) -> None:
    """One structured error line for a message a last resort dead-lettered (no payload dump)."""
    log.error(
        f"{what}; dead-lettered",
        extra={
            "reason": reason.value,
            "topic": m.topic[:200],
            "payload_bytes": len(m.payload),
            "error": _describe(exc),
        },
    )


def subscriptions(settings: IngestSettings) -> list[str]:
    """Topic filters of this worker: every site, or only the sites of its partition."""
    return subscription_filters(settings.topic_root, settings.partition_sites)


class IngestService:
    """One ingest worker: owns its MQTT session, one database connection and its rule state."""

    def __init__(
        self,
        settings: IngestSettings,
        metrics: IngestMetrics,
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._backoff = backoff or Backoff()
        self._limits = Limits.from_settings(settings)
        self.source = MqttSource(
            settings.mqtt,
            client_id=settings.mqtt_client_id,
            topics=subscriptions(settings),
            max_pending=settings.max_pending_messages,
            session_expiry_s=settings.mqtt_session_expiry_s,
            keepalive_s=settings.mqtt_keepalive_s,
            max_pending_bytes=settings.max_pending_bytes,
            max_payload_bytes=settings.max_payload_bytes,
        )
        # Read at scrape time, so it is right while the writer is stuck on a slow database.
        metrics.pending_messages.set_function(lambda: self.source.pending)
        metrics.pending_bytes.set_function(lambda: self.source.pending_bytes)
        self._conn: psycopg.Connection[Any] | None = None
        self._lookup = SeriesLookup.empty()
        self._engine: Engine | None = None
        self._registry_version = -1
        self._next_tick = 0.0
        self._next_refresh = 0.0
        self._next_replay_check = 0.0
        self._engine_ahead = False
        """The engine graded a batch whose transaction has not committed (yet, or ever)."""
        self.ready = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, then flush what was collected and disconnect.

        Two threads share the work (plus paho's network thread): this one takes messages
        from the broker and decodes them into the next batch while a single writer thread
        commits the previous one, grades it and acknowledges it. While the writer waits on
        PostgreSQL the GIL is free for decoding, so decoding overlaps the database's work
        (the writer spends most of its time waiting for COPY to finish). At most one batch
        is with the writer: when the database is slow or away, collection stops too, the
        hand-off queue fills and the broker keeps the rest.
        """
        self._ensure_connection(stop)
        if stop.is_set():
            return
        self.source.start()
        self.ready.set()
        log.info("ingest started", extra={"topics": subscriptions(self.settings)})
        reconnects_seen = 0
        writing: Future[None] | None = None
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="ingest-writer") as writer:
                while not stop.is_set():
                    batch = self._collect(stop)
                    if writing is not None and (batch.messages or writing.done()):
                        writing.result()  # re-raises what went wrong in the writer
                        writing = None
                    if batch.messages or writing is None:
                        writing = writer.submit(self._write, batch, stop)
                    if self.source.reconnects != reconnects_seen:
                        self.metrics.broker_reconnects.inc(self.source.reconnects - reconnects_seen)
                        reconnects_seen = self.source.reconnects
                if writing is not None:
                    writing.result()
        finally:
            self.source.stop()
            if self._conn is not None:
                self._conn.close()
            log.info("ingest stopped")

    def _write(self, batch: _Batch, stop: threading.Event) -> None:
        """In the writer thread: commit and acknowledge a batch, then the periodic work due."""
        if batch.messages:
            self._commit_until_done(batch, stop)
        now = time.monotonic()
        if now >= self._next_tick:
            self._tick(stop)
            self._next_tick = now + TICK_INTERVAL_S
        if now >= self._next_refresh:
            self._refresh_registry(stop)
            self._next_refresh = now + self.settings.registry_refresh_s
        if now >= self._next_replay_check:
            self._serve_replays(stop)
            self._next_replay_check = time.monotonic() + REPLAY_CHECK_INTERVAL_S

    def _serve_replays(self, stop: threading.Event) -> None:
        """Work on queued dead-letter replays for up to REPLAY_BUDGET_S, chunk by chunk, each in
        a transaction of its own, between live batches (ingest/replay.py)."""
        if self._engine is None:
            return
        deadline = time.monotonic() + REPLAY_BUDGET_S
        while time.monotonic() < deadline and not stop.is_set():
            conn = self._require_connection()
            request: ReplayRequest | None = None
            try:
                with conn.transaction():
                    request = store.claim_replay_request(conn, self.settings.mqtt_client_id)
                    if request is None:
                        return
                    done = replay.replay_next_chunk(
                        conn,
                        request,
                        root=self.settings.topic_root,
                        limits=self._limits,
                        lookup=self._lookup,
                        owned_sites=self.settings.partition_sites,
                        grade=self._grade_replayed,
                    )
            except psycopg.OperationalError:
                self._drop_connection()
                self._ensure_connection(stop, force_reload=True)
                return
            except Exception as exc:  # a replay must not stop ingest; the request says why
                if request is None:
                    raise
                log.exception("replay request failed", extra={"request": request.id})
                with conn.transaction():
                    store.fail_replay_request(conn, request.id, f"{type(exc).__name__}: {exc}")
                # the engine graded readings of a rolled-back transaction: rebuild it
                self._load(conn, registry_version(conn))
                return
            if done:
                log.info("replay request done", extra={"request": request.id})

    def _grade_replayed(
        self,
        series_id: NDArray[np.int64],
        time_us: NDArray[np.int64],
        value: NDArray[np.float64],
    ) -> None:
        """Grade readings a replay stored for the first time, as live ones (late where older than
        what was graded), and record the transitions in the replay's transaction."""
        assert self._engine is not None
        conn = self._require_connection()
        alerts.record(conn, self._engine.evaluate(Batch(series_id, time_us, value), now_us()))

    def _collect(self, stop: threading.Event) -> _Batch:
        """Take and decode messages until the batch holds enough readings or is old enough."""
        queue_ = self.source.messages
        batch = _Batch()
        try:
            self._add(batch, queue_.get(timeout=0.1))
        except queue.Empty:
            return batch
        deadline = time.monotonic() + self.settings.batch_max_wait_ms / 1000
        while batch.readings < self.settings.batch_max_readings and not stop.is_set():
            try:
                message = queue_.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    message = queue_.get(timeout=remaining)
                except queue.Empty:
                    break
            self._add(batch, message)
        self.metrics.messages_received.inc(len(batch.messages))
        return batch

    def _add(self, batch: _Batch, m: Message) -> None:
        """Decode one message into the batch: readings, a dead letter, or a status report.

        Never raises. Decoding is meant never to raise on any input; should it all the same,
        the message is dead-lettered as decode_failed (and acknowledged with its batch) rather
        than ending ingest and being redelivered to the next ingest, and the next.
        """
        try:
            outcome = self._decode(m)
        except Exception as exc:  # the last resort: no message may stop ingest
            outcome = Rejection(Reason.DECODE_FAILED, f"decoding raised {_describe(exc)}")
            _log_last_resort("message could not be decoded", Reason.DECODE_FAILED, m, exc)
        batch.add(m, outcome)

    def _decode(self, m: Message) -> Decoded | DeviceStatus | Rejection:
        """What a message holds: readings, a status report, or why it is refused."""
        root = self.settings.topic_root
        address = parse_topic(m.topic, root)
        if address is not None and address.channel == "telemetry":
            return m.too_large or decode_telemetry(
                address, m.payload, m.received_us, self._limits, self._lookup
            )
        if address is not None and address.channel == "status":
            return m.too_large or parse_status(address, m.payload, m.received_us, self._limits)
        return Rejection(Reason.BAD_TOPIC, f"expected {root}/<site>/<device>/telemetry")

    def _commit_until_done(self, batch: _Batch, stop: threading.Event) -> None:
        """Commit the batch, retrying through database outages, then acknowledge its messages."""
        while True:
            try:
                self._commit_or_split(batch)
                break
            except psycopg.OperationalError as exc:
                self.metrics.db_failures.inc()
                if not batch.retried:
                    batch.retried = True
                    batch.dead_letters = [
                        replace(letter, redelivered=True) for letter in batch.dead_letters
                    ]
                log.warning(
                    "batch not committed; keeping it unacknowledged and retrying",
                    extra={"error": str(exc).strip(), "messages": len(batch.messages)},
                )
                self._drop_connection()
                # Rule state advanced in memory for a transaction that did not commit: it is
                # rebuilt from the database on reconnection, before the batch is graded again.
                self._ensure_connection(stop, force_reload=True)
                if stop.is_set() and self._conn is None:
                    return
        acked = self.source.ack(batch.messages)
        self.metrics.messages_committed.inc(acked)

    def _commit_or_split(self, batch: _Batch) -> None:
        """Commit the batch; if the database refuses it, commit it in parts.

        A refusal that is not about the connection (a DataError, a trigger, a value that does
        not convert) comes from the contents of some message: the batch is bisected until that
        message stands alone, so every other message is committed.

        Raises:
            psycopg.OperationalError: the connection failed; the caller reconnects and retries
                the whole batch (the parts already committed are then duplicates: harmless).
        """
        try:
            self._commit_part(batch)
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            log.warning(
                "batch refused by the database; committing it in parts",
                extra={"error": _describe(exc), "messages": len(batch.messages)},
            )
            self._commit_in_parts(batch, exc)

    def _commit_in_parts(self, batch: _Batch, refusal: Exception) -> None:
        """Bisect a refused batch, committing each part that the database accepts.

        Depth first, earlier half first, so parts commit in the order their messages arrived
        (the rules see each series' time in order). One bad message among n costs about
        2·log2(n) transactions.
        """
        stack: list[tuple[int, int, Exception | None]] = [(0, len(batch.messages), refusal)]
        while stack:
            lo, hi, error = stack.pop()
            if error is None:
                try:
                    self._commit_part(batch.part(lo, hi))
                    continue
                except psycopg.OperationalError:
                    raise
                except Exception as exc:
                    error = exc
            if hi - lo == 1:
                self._store_failed(batch, lo, error)
            else:
                mid = (lo + hi) // 2
                stack += [(mid, hi, None), (lo, mid, None)]

    def _commit_part(self, batch: _Batch) -> None:
        """Commit a batch (or part of one); after a refusal, put the engine back in step.

        Raises:
            psycopg.OperationalError: the connection failed (also when a refusal left it
                broken).
            Exception: whatever refused the batch, once the engine matches the database.
        """
        try:
            self._commit(batch, batch.columns())
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            conn = self._conn
            if conn is None or conn.closed or conn.broken:
                raise psycopg.OperationalError(f"connection lost: {_describe(exc)}") from exc
            if self._engine_ahead:
                # The rules graded a transaction that rolled back: rebuild their state from
                # the database (the in-memory engine is ahead of it; see _load).
                self._load(conn, self._registry_version)
            raise

    def _store_failed(self, batch: _Batch, index: int, exc: Exception) -> None:
        """Dead-letter the one message of a batch that the database refuses to store."""
        m = batch.messages[index]
        detail = f"the database refused this message: {_describe(exc)}"
        _log_last_resort("message could not be stored", Reason.STORE_FAILED, m, exc)
        alone = _Batch(retried=batch.retried)
        alone.messages.append(m)
        alone.dead_letters.append(
            _letter(m, Reason.STORE_FAILED, detail, seen_before=batch.retried)
        )
        alone.letter_origin.append(0)
        # Its dead letter alone: topic, sanitized detail and raw bytes. If even this is refused,
        # the database refuses plain writes (a schema or permission problem): that raises.
        self._commit_part(alone)

    def _commit(
        self,
        batch: _Batch,
        columns: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]],
    ) -> None:
        """One transaction: the readings, their grading, dead letters and statuses.

        Direct COPY first; a batch holding a reading that is stored already (a redelivery)
        is rolled back before anything was graded and written again through the staged,
        idempotent path, which says which readings are new: only those are graded.
        """
        conn = self._require_connection()
        series_id, time_us, value = columns
        letters = batch.dead_letters
        started = time.monotonic()
        try:
            with conn.transaction():
                copy_direct(conn, series_id, time_us, value)
                fresh = np.ones(len(series_id), dtype=np.bool_)
                self._grade_and_record(conn, batch, letters, series_id, time_us, value)
            self._engine_ahead = False
            self.metrics.write_path.labels(path="direct").inc()
        except DuplicateReadingError:
            with conn.transaction():
                fresh = copy_idempotent(conn, series_id, time_us, value)
                letters = letters + _conflict_letters(batch, conflicting_readings(conn))
                self._grade_and_record(
                    conn, batch, letters, series_id[fresh], time_us[fresh], value[fresh]
                )
            self._engine_ahead = False
            self.metrics.write_path.labels(path="staged").inc()
        elapsed = time.monotonic() - started
        n_new = int(fresh.sum())
        self.metrics.commit_seconds.observe(elapsed)
        self.metrics.batch_readings.observe(len(fresh))
        self.metrics.readings_received.inc(len(fresh))
        self.metrics.readings_committed.inc(n_new)
        self.metrics.readings_duplicate.inc(len(fresh) - n_new)
        for letter in letters:
            self.metrics.dead_letters.labels(reason=letter.reason).inc()
        if len(time_us):
            at_us = now_us()
            self.metrics.lag_seconds.observe(max(0.0, (at_us - int(time_us.max())) / 1e6))
            self.metrics.oldest_reading_age_seconds.observe(
                max(0.0, (at_us - int(time_us.min())) / 1e6)
            )

    def _grade_and_record(
        self,
        conn: psycopg.Connection[Any],
        batch: _Batch,
        letters: list[DeadLetter],
        series_id: NDArray[np.int64],
        time_us: NDArray[np.int64],
        value: NDArray[np.float64],
    ) -> None:
        """Write dead letters and statuses, then grade the new readings and write transitions.

        What a message's contents can make the database refuse is written before the rules
        run, so such a refusal leaves the engine in step with the database.
        """
        assert self._engine is not None
        insert_dead_letters(conn, letters)
        record_device_status(conn, batch.statuses)
        self._engine_ahead = True
        transitions = self._engine.evaluate(Batch(series_id, time_us, value), now_us())
        alerts.record(conn, transitions)

    def _tick(self, stop: threading.Event) -> None:
        if self._engine is None:
            return
        try:
            conn = self._require_connection()
            with conn.transaction():
                alerts.record(conn, self._engine.tick(now_us()))
        except psycopg.OperationalError:
            self._drop_connection()
            self._ensure_connection(stop, force_reload=True)

    def _refresh_registry(self, stop: threading.Event) -> None:
        try:
            conn = self._require_connection()
            version = registry_version(conn)
            conn.rollback()
            if version != self._registry_version:
                # The engine is in step with the database here, so unchanged series keep their
                # state instead of being replayed from storage (a new device must not stall
                # ingest while every series' history is read again).
                self._load(conn, version, previous=self._engine)
        except psycopg.OperationalError:
            self._drop_connection()
            self._ensure_connection(stop, force_reload=True)

    def _load(
        self, conn: psycopg.Connection[Any], version: int, previous: Engine | None = None
    ) -> None:
        """Load the series map and the rule engine; `previous` only if it matches the database.

        After a failed commit the in-memory engine is ahead of the database, so it is rebuilt
        from storage (previous=None).
        """
        partition = self.settings.partition_sites
        self._lookup = load_lookup(conn, partition)
        self._engine = alerts.load_engine(conn, partition or None, previous=previous)
        self.metrics.works_isolated.set(len(self._engine.isolated))
        conn.commit()
        self._engine_ahead = False
        self._registry_version = version
        log.info(
            "registry loaded",
            extra={"version": version, "devices": len(self._lookup.devices)},
        )

    def _require_connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            raise psycopg.OperationalError("no database connection")
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def _ensure_connection(self, stop: threading.Event, *, force_reload: bool = False) -> None:
        """Connect (with capped, jittered backoff) and load the registry and rule state."""
        while not stop.is_set():
            try:
                if self._conn is None:
                    self._conn = connect(self.settings.database_url)
                version = registry_version(self._conn)
                if force_reload or version != self._registry_version:
                    self._load(self._conn, version)
                self._backoff.reset()
                return
            except (DatabaseError, psycopg.OperationalError) as exc:
                self._drop_connection()
                delay = self._backoff.next_delay_s()
                log.warning(
                    "database unavailable; ingest paused (messages stay unacknowledged)",
                    extra={"error": str(exc).strip()[:300], "retry_in_s": round(delay, 2)},
                )
                stop.wait(delay)
