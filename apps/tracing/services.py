"""Writes: span ingestion (sampling, COPY of raw spans, sketch merges), partitions,
retention, and rebuilding sketches from raw spans."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from apps.tracing.models import SpanBatch
from apps.tracing.sampling import is_sampled, sample_rate
from apps.tracing.sketch import LOG_GAMMA, MIN_MS, STORED_COLUMNS, Merged, Sketch
from coreadmin.clock import clock
from coreadmin.idempotency import batch_once, batch_prune

SPAN_COLUMNS = (
    "started_at",
    "thread_id",
    "stage",
    "name",
    "parent_stage",
    "service",
    "duration_ms",
    "status",
)
BATCH_TABLE = SpanBatch._meta.db_table
SKETCH_TABLES = {"minute": "tracing_stageminute", "hour": "tracing_stagehour"}


@dataclass(frozen=True)
class SpanIn:
    thread_id: str
    stage: str
    name: str
    parent_stage: str
    service: str
    started_at: dt.datetime
    duration_ms: float
    status: str


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    sampled_out: int


def _truncate(moment: dt.datetime, unit: str) -> dt.datetime:
    moment = moment.astimezone(dt.UTC)
    if unit == "minute":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


# ---------------------------------------------------------------- partitions


def _partition_name(day: dt.date) -> str:
    return f"tracing_span_p{day:%Y%m%d}"


_known_partitions: set[dt.date] = set()


def span_partitions_ensure(*, days: Iterable[dt.date]) -> None:
    """Creates the daily partitions of tracing_span that do not exist yet."""
    missing = sorted(set(days) - _known_partitions)
    if not missing:
        return
    with connection.cursor() as cursor:
        for day in missing:
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
            end = start + dt.timedelta(days=1)
            cursor.execute("SELECT 1 FROM pg_class WHERE relname = %s", [_partition_name(day)])
            if cursor.fetchone() is None:
                # Two processes may race here: the loser's CREATE fails inside a
                # savepoint and the partition is there anyway.
                try:
                    with transaction.atomic():
                        cursor.execute(
                            f"CREATE TABLE IF NOT EXISTS {_partition_name(day)} "
                            f"PARTITION OF tracing_span FOR VALUES FROM (%s) TO (%s)",
                            [start, end],
                        )
                except Exception:
                    cursor.execute(
                        "SELECT 1 FROM pg_class WHERE relname = %s", [_partition_name(day)]
                    )
                    if cursor.fetchone() is None:
                        raise
    if not connection.in_atomic_block:
        _known_partitions.update(missing)
    else:
        # Remember only once committed: a rolled-back CREATE must be retried.
        transaction.on_commit(lambda: _known_partitions.update(missing))


def forget_known_partitions() -> None:
    _known_partitions.clear()


def span_partitions_drop_expired(*, now: dt.datetime | None = None) -> list[str]:
    """Drops whole daily partitions older than TRACING_RAW_RETENTION_DAYS."""
    now = now or clock.now()
    cutoff = (now - dt.timedelta(days=settings.TRACING_RAW_RETENTION_DAYS)).date()
    dropped = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'tracing_span'"
        )
        for (name,) in cursor.fetchall():
            day = dt.datetime.strptime(name.removeprefix("tracing_span_p"), "%Y%m%d").date()
            if day < cutoff:
                cursor.execute(f"DROP TABLE {name}")
                dropped.append(name)
                _known_partitions.discard(day)
    return dropped


@transaction.atomic
def tracing_retention(*, now: dt.datetime | None = None) -> dict[str, int]:
    now = now or clock.now()
    # Tomorrow's partitions exist before the first span of the day needs them, so
    # ingestion does not take the parent's lock to create one at midnight.
    span_partitions_ensure(days={(now + dt.timedelta(days=d)).date() for d in range(3)})
    dropped = span_partitions_drop_expired(now=now)
    minute_cutoff = now - dt.timedelta(days=settings.TRACING_MINUTE_RETENTION_DAYS)
    hour_cutoff = now - dt.timedelta(days=settings.TRACING_HOUR_RETENTION_DAYS)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tracing_stageminute WHERE bucket < %s", [minute_cutoff])
        minutes = cursor.rowcount
        cursor.execute("DELETE FROM tracing_stagehour WHERE bucket < %s", [hour_cutoff])
        hours = cursor.rowcount
    return {
        "partitions_dropped": len(dropped),
        "minutes_deleted": minutes,
        "hours_deleted": hours,
        "batch_ids_forgotten": span_batches_prune(now=now),
    }


# ---------------------------------------------------------------- ingestion


def span_batch_submit(*, spans: Sequence[SpanIn], batch_id: str | None) -> dict[str, Any]:
    """POST /spans: stores a batch, under its ``batch_id`` if it has one (a resend
    replays the first answer and stores nothing; coreadmin/idempotency.py)."""
    response, _replayed = batch_once(
        table=BATCH_TABLE,
        batch_id=batch_id,
        items=spans,
        now=clock.now(),
        store=lambda: _batch_response(spans, spans_ingest(spans=spans), batch_id),
    )
    return response


def _batch_response(
    spans: Sequence[SpanIn], result: IngestResult, batch_id: str | None
) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "accepted": result.accepted,
        "sampled_out": result.sampled_out,
        "sample_rates": {s: sample_rate(s) for s in {span.service for span in spans}},
    }


def span_batches_prune(*, now: dt.datetime | None = None) -> int:
    """Forgets span batch ids older than TELEMETRY_BATCH_ID_RETENTION_HOURS."""
    hours = settings.TELEMETRY_BATCH_ID_RETENTION_HOURS
    return batch_prune(table=BATCH_TABLE, retention_hours=hours, now=now)


def spans_ingest(*, spans: Sequence[SpanIn], rate: float | None = None) -> IngestResult:
    """Keeps the spans of sampled threads: raw rows by COPY (if their day is within raw
    retention) and their durations merged into the minute and hour sketches, in one
    transaction, so an acknowledged span is committed."""
    rates = {s.service: sample_rate(s.service) if rate is None else rate for s in spans}
    kept = [s for s in spans if is_sampled(s.thread_id, rates[s.service])]
    if kept:
        _store(kept)
    return IngestResult(accepted=len(kept), sampled_out=len(spans) - len(kept))


@transaction.atomic
def _store(spans: Sequence[SpanIn]) -> None:
    now = clock.now()
    oldest_raw = (now - dt.timedelta(days=settings.TRACING_RAW_RETENTION_DAYS - 1)).date()
    newest_raw = (now + dt.timedelta(days=1)).date()
    raw = [s for s in spans if oldest_raw <= s.started_at.astimezone(dt.UTC).date() <= newest_raw]
    if raw:
        span_partitions_ensure(days={s.started_at.astimezone(dt.UTC).date() for s in raw})
        _copy_spans(raw)
    for unit in ("minute", "hour"):
        sketches: dict[tuple[dt.datetime, str, str], tuple[str, Sketch]] = {}
        for s in spans:
            key = (_truncate(s.started_at, unit), s.service, s.stage)
            entry = sketches.get(key)
            if entry is None:
                entry = sketches[key] = (s.parent_stage, Sketch())
            entry[1].add(s.duration_ms, error=s.status == "error")
        sketches_merge(
            unit=unit, sketches={k: (p, _as_merged(sk)) for k, (p, sk) in sketches.items()}
        )


def _copy_spans(spans: Sequence[SpanIn]) -> None:
    with connection.cursor() as cursor:
        raw_cursor = cursor.cursor
        with raw_cursor.copy(f"COPY tracing_span ({', '.join(SPAN_COLUMNS)}) FROM STDIN") as copy:
            for s in spans:
                copy.write_row(
                    (
                        s.started_at,
                        s.thread_id,
                        s.stage,
                        s.name,
                        s.parent_stage,
                        s.service,
                        s.duration_ms,
                        s.status,
                    )
                )


def _as_merged(sketch: Sketch) -> Merged:
    merged = Merged()
    merged.add_sketch(sketch)
    return merged


def sketches_merge(
    *, unit: str, sketches: dict[tuple[dt.datetime, str, str], tuple[str, Merged]]
) -> None:
    """Adds each sketch to its stored row (bucket, service, stage), creating it if needed.

    Concurrency: missing rows are inserted first (ON CONFLICT DO NOTHING), then every row
    is locked (FOR UPDATE) in key order, so two writers of the same minute serialise and
    never deadlock, and no update is lost."""
    if not sketches:
        return
    table = SKETCH_TABLES[unit]
    keys = sorted(sketches)
    with connection.cursor() as cursor:
        values = ", ".join(["(%s, %s, %s, %s)"] * len(keys))
        params: list[Any] = []
        for key in keys:
            params.extend([*key, sketches[key][0]])
        cursor.execute(
            f"INSERT INTO {table} (bucket, service, stage, parent_stage, {STORED_COLUMNS}) "
            f"SELECT v.*, 0, 0, 0, 0, 'Infinity', 0, 0, ''::bytea FROM (VALUES {values}) "
            f"AS v(bucket, service, stage, parent_stage) "
            f"ORDER BY 1, 2, 3 ON CONFLICT (bucket, service, stage) DO NOTHING",
            params,
        )
        key_values = ", ".join(["(%s::timestamptz, %s, %s)"] * len(keys))
        cursor.execute(
            f"SELECT id, bucket, service, stage, {STORED_COLUMNS} FROM {table} "
            f"WHERE (bucket, service, stage) IN ({key_values}) "
            f"ORDER BY bucket, service, stage FOR UPDATE",
            [p for key in keys for p in key],
        )
        updates = []
        for row in cursor.fetchall():
            pk, bucket, service, stage = row[:4]
            merged = Merged()
            merged.add_row(row[4:])
            merged.merge(sketches[(_truncate(bucket, unit), service, stage)][1])
            updates.append((*merged.row(), pk))
        cursor.executemany(
            f"UPDATE {table} SET ({STORED_COLUMNS}) = (%s, %s, %s, %s, %s, %s, %s, %s) "
            f"WHERE id = %s",
            updates,
        )


# ---------------------------------------------------------------- rebuild


def sketches_rebuild(*, since: dt.datetime, until: dt.datetime) -> int:
    """Recomputes the minute and hour sketches of [since, until) from raw spans, binning in
    Postgres with the same mapping as sketch.py. For bench/demo data loaded straight into
    tracing_span, and to repair sketches after an incident. Returns sketch rows written."""
    since_h, until_h = _truncate(since, "hour"), _truncate(until, "hour")
    if until_h < until:
        until_h += dt.timedelta(hours=1)
    written = 0
    for unit in ("minute", "hour"):
        table = SKETCH_TABLES[unit]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE bucket >= %s AND bucket < %s", [since_h, until_h]
            )
            cursor.execute(
                """
                WITH binned AS (
                    SELECT date_trunc(%s, started_at) AS bucket, service, stage,
                           max(parent_stage) AS parent_stage,
                           CASE WHEN duration_ms <= %s THEN NULL
                                ELSE ceil(ln(duration_ms) / %s)::int END AS bin,
                           count(*) AS n, count(*) FILTER (WHERE status = 'error') AS errors,
                           sum(duration_ms) AS total, min(duration_ms) AS lo,
                           max(duration_ms) AS hi
                    FROM tracing_span WHERE started_at >= %s AND started_at < %s
                    GROUP BY 1, 2, 3, 5
                )
                SELECT bucket, service, stage, max(parent_stage), sum(n)::bigint,
                       sum(errors)::bigint, coalesce(sum(n) FILTER (WHERE bin IS NULL), 0)::bigint,
                       sum(total), min(lo), max(hi),
                       array_agg(bin ORDER BY bin) FILTER (WHERE bin IS NOT NULL),
                       array_agg(n ORDER BY bin) FILTER (WHERE bin IS NOT NULL)
                FROM binned GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
                """,
                [unit, MIN_MS, LOG_GAMMA, since_h, until_h],
            )
            rows = []
            for row in cursor.fetchall():
                sketch = Sketch(
                    bins=dict(zip(row[10] or [], row[11] or [], strict=True)),
                    count=row[4],
                    error_count=row[5],
                    zero_count=row[6],
                    sum_ms=row[7],
                    min_ms=row[8],
                    max_ms=row[9],
                )
                rows.append((*row[:4], *_as_merged(sketch).row()))
            cursor.executemany(
                f"INSERT INTO {table} (bucket, service, stage, parent_stage, {STORED_COLUMNS}) "
                f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
            written += len(rows)
    return written
