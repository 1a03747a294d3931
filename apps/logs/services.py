"""Log ingestion: level filtering, redaction, day partitions, one COPY per batch.

Both entry points end here: POST /api/v1/logs (scrapers) and the server's own log lines
(coreadmin.logging.BufferedStoreHandler calls ``log_lines_store_server``).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from prometheus_client import Counter as PromCounter

from apps.fleet.selectors import service_config
from apps.logs.models import LEVEL_ALIASES, LEVELS, LogBatch, LogStream
from apps.logs.partitions import forget_known_partitions, partitions_ensure, retention_days
from apps.logs.selectors import DROP_COUNTS_DAYS, drop_counts_key
from coreadmin import redaction
from coreadmin.clock import clock
from coreadmin.idempotency import batch_once, batch_prune
from coreadmin.redis import connection as redis_connection

LINES = PromCounter(
    "coreadmin_log_lines_total",
    "Log lines received, by service and outcome (stored, below_min_level, expired).",
    ["service", "outcome"],
)
COPY_SQL = "COPY logs_logline (ts, level, service, logger, message, thread_id, context) FROM STDIN"
BATCH_TABLE = LogBatch._meta.db_table
# Postgres text and jsonb cannot hold NUL; a JSON \u0000 escape (not an escaped
# backslash followed by "u0000") is removed.
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


@dataclass
class IngestResult:
    accepted: int = 0
    stored: int = 0
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    streams: set[tuple[str, str]] = field(default_factory=set)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def response(self, batch_id: str | None) -> dict[str, Any]:
        return {
            "batch_id": batch_id,
            "accepted": self.accepted,
            "stored": self.stored,
            "dropped": self.dropped_total,
        }


def _json_default(value: Any) -> str:
    return str(value)


def _context_json(context: Any) -> str:
    text = orjson.dumps(context, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()
    return _JSON_NUL.sub(r"\1", text) if "\\u0000" in text else text


def _clean(text: str, limit: int) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def log_batch_submit(*, records: list[dict[str, Any]], batch_id: str | None) -> dict[str, Any]:
    """POST /logs: stores a batch, under its ``batch_id`` if it has one (a resend replays
    the first answer and stores nothing; coreadmin/idempotency.py). Returns the body."""
    now = clock.now()
    stored: list[IngestResult] = []

    def store() -> dict[str, Any]:
        stored.append(_ingest(records, now))
        return stored[-1].response(batch_id)

    response, replayed = _retrying_partitions(
        lambda: batch_once(
            table=BATCH_TABLE, batch_id=batch_id, items=records, now=now, store=store
        )
    )
    if not replayed:
        _after_commit(stored[-1], now)
    return response


def log_batches_prune(*, now: dt.datetime | None = None) -> int:
    """Forgets log batch ids older than TELEMETRY_BATCH_ID_RETENTION_HOURS."""
    hours = settings.TELEMETRY_BATCH_ID_RETENTION_HOURS
    return batch_prune(table=BATCH_TABLE, retention_hours=hours, now=now)


def log_lines_ingest(*, records: Iterable[Mapping[str, Any]]) -> IngestResult:
    """Stores ``records`` (dicts with ts, level, logger, message, service, thread_id,
    context). A line below its service's min_log_level, or already past its level's
    retention, is accepted and dropped, and counted; everything stored is redacted
    first (message, logger, context at any depth). One COPY for the whole batch."""
    now = clock.now()
    records = list(records)

    def store() -> IngestResult:
        with transaction.atomic():
            return _ingest(records, now)

    result = _retrying_partitions(store)
    _after_commit(result, now)
    return result


class PartitionMissing(Exception):
    """A day partition this process knew of was not there when the COPY ran."""


def _retrying_partitions[T](work: Callable[[], T]) -> T:
    """Runs ``work`` (a whole transaction), once more if a partition this process
    thought existed had been dropped (retention elsewhere, a rolled-back test): the
    transaction is gone by then, so the retry needs no savepoint around each COPY."""
    try:
        return work()
    except PartitionMissing:
        forget_known_partitions()
        return work()


def _ingest(records: Iterable[Mapping[str, Any]], now: dt.datetime) -> IngestResult:
    future_limit = now + dt.timedelta(seconds=settings.LOGS_MAX_FUTURE_SECONDS)
    oldest = {level: now - dt.timedelta(days=days) for level, days in retention_days().items()}
    max_message = settings.LOGS_MAX_MESSAGE_CHARS
    redactor = redaction.default_redactor
    text, value = redactor.text, redactor.value
    min_levels: dict[str, int] = {}
    result = IngestResult()
    rows: list[str] = []  # lines of COPY text
    days: set[dt.date] = set()
    streams: set[tuple[str, str]] = set()
    for record in records:
        result.accepted += 1
        service = record["service"]
        level = LEVEL_ALIASES.get(str(record.get("level") or "info").lower(), 20)
        minimum = min_levels.get(service)
        if minimum is None:
            minimum = min_levels[service] = LEVELS[service_config(service).min_log_level]
        if level < minimum:
            result.dropped[(service, "below_min_level")] += 1
            continue
        ts = record.get("ts") or now
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=dt.UTC)
        context = record.get("context") or {}
        if ts > future_limit:
            context = {**context, "client_ts": ts.isoformat()}
            ts = now
        elif ts < oldest[level]:
            result.dropped[(service, "expired")] += 1
            continue
        else:
            ts = ts.astimezone(dt.UTC)  # Postgres refuses offsets beyond ±15:59
        logger = _clean(text(record.get("logger") or ""), 200)
        rows.append(
            "\t".join(
                (
                    ts.isoformat(),
                    str(level),
                    _copy_text(service),
                    _copy_text(logger),
                    _copy_text(_clean(text(record.get("message") or ""), max_message)),
                    _copy_text(_clean(str(record.get("thread_id") or ""), 100)),
                    _copy_text(_context_json(value(context))) if context else "{}",
                )
            )
        )
        days.add(ts.date())
        streams.add((service, logger))
    if rows:
        _copy_rows(rows, days)
    result.stored = len(rows)
    result.streams = streams
    return result


def _after_commit(result: IngestResult, now: dt.datetime) -> None:
    """What follows a stored batch and may fail without losing it: the (service, logger)
    pairs for the filters, the counters."""
    if result.streams:
        _streams_seen(result.streams, now)
    _count(result)


# COPY's text format: a backslash starts an escape, tab ends a column, newline a row.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_rows(rows: list[str], days: set[dt.date]) -> None:
    """One COPY, in the caller's transaction. The rows are already COPY text, sent in
    one write: formatting them inside the COPY (write_row per row) left the server
    waiting on this process whenever another thread of the worker held the GIL, and
    those waits, 17% of the COPY's time under load, held the table's insert locks."""
    partitions_ensure(days)
    data = "\n".join(rows) + "\n"
    try:
        with connection.cursor() as cursor, cursor.copy(COPY_SQL) as copy:
            copy.write(data)
    except (IntegrityError, psycopg.errors.CheckViolation) as exc:
        # "no partition of relation found for row"
        if "no partition" in str(exc):
            raise PartitionMissing(str(exc)) from exc
        raise


_streams_written: dict[tuple[str, str], float] = {}
_streams_lock = threading.Lock()
STREAM_REFRESH_SECONDS = 600.0


def _streams_seen(streams: set[tuple[str, str]], now: dt.datetime) -> None:
    """Upserts (service, logger) pairs not written by this process in the last 10 min:
    usually no query at all."""
    moment = now.timestamp()
    fresh = [
        pair
        for pair in streams
        if moment - _streams_written.get(pair, float("-inf")) >= STREAM_REFRESH_SECONDS
    ]
    if not fresh:
        return
    LogStream.objects.bulk_create(
        [LogStream(service=s, logger=lg, last_seen_at=now) for s, lg in sorted(fresh)],
        update_conflicts=True,
        unique_fields=["service", "logger"],
        update_fields=["last_seen_at"],
    )
    with _streams_lock:
        for pair in fresh:
            _streams_written[pair] = moment


def forget_streams_written() -> None:
    with _streams_lock:
        _streams_written.clear()


def _count(result: IngestResult) -> None:
    """Prometheus counters, and per-day drop counts in Redis for the logs page."""
    for (service, reason), count in result.dropped.items():
        LINES.labels(service, reason).inc(count)
    if result.stored:
        LINES.labels("*", "stored").inc(result.stored)
    if not result.dropped:
        return
    day_key = drop_counts_key(clock.now().date())
    try:
        pipe = redis_connection().pipeline(transaction=False)
        for (service, reason), count in result.dropped.items():
            pipe.hincrby(day_key, f"{service}|{reason}", count)
        pipe.expire(day_key, DROP_COUNTS_DAYS * 86400)
        pipe.execute()
    except Exception:
        pass


def log_lines_store_server(records: list[dict[str, Any]]) -> int:
    """Sink of coreadmin.logging.BufferedStoreHandler: the server's own lines, through
    the same pipeline as a scraper's."""
    result = log_lines_ingest(records=records)
    return result.stored
