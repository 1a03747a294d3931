"""The batch write path.

``batch_submit`` runs one transaction per request: claim the batch id (if any), map and
check every record, upsert the valid ones in bulk (COPY into a temporary staging table,
then one INSERT ... ON CONFLICT), queue the others in the retry table, store the
response under the batch id, commit, and only then answer. A record the database refuses
is isolated by bisection under savepoints, so it fails alone and its batch is written.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from apps.datasets.errors import DatabaseUnavailable
from apps.datasets.mapping import Mapping, describe_errors, map_and_encode
from apps.datasets.metrics import RECORDS
from apps.datasets.models import Batch, Dataset, RetryAttempt, RetryItem
from apps.datasets.services.definitions import dataset_mapping
from coreadmin.clock import clock
from coreadmin.dbfailures import infrastructure_failure as infrastructure_failure
from coreadmin.errors import NotFound
from coreadmin.idempotency import batch_once
from coreadmin.idempotency import batch_prune as shared_batch_prune
from coreadmin.redis import connection as redis_connection
from coreadmin.redis import key as redis_key

STAGE_SQL = (
    "CREATE TEMP TABLE IF NOT EXISTS datasets_stage (data jsonb NOT NULL) "
    "ON COMMIT DELETE ROWS; DELETE FROM datasets_stage"
)
COPY_SQL = "COPY datasets_stage (data) FROM STDIN"
BATCH_TABLE = Batch._meta.db_table
# Only the mapped data is sent; Postgres builds the key from it (jsonb_build_object of
# the key fields), so each record is encoded once and parsed once. The upsert also
# records how many rows it inserted (xmax = 0 marks an inserted row, not an updated one)
# in datasets_recordcount, in the same statement and transaction.
UPSERT_SQL = (
    "WITH up AS (INSERT INTO datasets_record (dataset_id, key, data, created_at, updated_at) "
    "SELECT %s, jsonb_build_object({key}), data, %s, %s FROM datasets_stage "
    "ON CONFLICT (dataset_id, key) DO UPDATE "
    "SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at "
    "RETURNING (xmax = 0) AS inserted) "
    "INSERT INTO datasets_recordcount (dataset_id, delta) "
    "SELECT %s, count(*) FILTER (WHERE inserted) FROM up"
)
# A btree entry holds at most ~2,700 bytes (after compression): a longer key is the usual
# reason Postgres refuses a record. Rows whose key JSON is longer than this are upserted
# after the others, so such a record costs its batch one small extra statement instead
# of a bisection of the whole batch. Still Postgres decides: a compressible long key is
# written.
LONG_KEY_BYTES = 2000
RATE_BUCKET_TTL_SECONDS = 2 * 3600
SORTED = orjson.OPT_SORT_KEYS


@dataclass
class Failure:
    index: int
    code: str
    message: str
    fields: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "code": self.code,
            "message": self.message,
            "fields": self.fields,
        }


@dataclass
class WriteOutcome:
    written: list[int]
    failures: list[Failure]


def _copy_upsert(
    dataset_id: int, key_fields: tuple[str, ...], rows: list[bytes], now: dt.datetime
) -> None:
    # COPY text format: one row a line, backslash is the escape character. orjson never
    # emits raw tabs or newlines (they are escaped inside strings), so doubling the
    # backslashes (once, over the whole buffer) is all the escaping JSON needs.
    buffer = (b"\n".join(rows) + b"\n").replace(b"\\", b"\\\\")
    key_sql = ", ".join(["%s::text, data->%s::text"] * len(key_fields))
    key_params = [name for name in key_fields for _ in (0, 1)]
    with connection.cursor() as cursor:
        cursor.execute(STAGE_SQL)
        with cursor.cursor.copy(COPY_SQL) as copy:
            copy.write(buffer)
        cursor.execute(
            UPSERT_SQL.format(key=key_sql), [dataset_id, *key_params, now, now, dataset_id]
        )


def _upsert_isolating(
    dataset_id: int, key_fields: tuple[str, ...], rows: list[bytes], now: dt.datetime
) -> list[tuple[int, str]]:
    """Upserts rows; returns [(position in rows, database message)] for the rows the
    database refused. One savepoint when all is well; bisection when it is not. A
    deadlock or serialization failure (class 40) is not the rows' fault: tried again."""
    for attempt in range(3):
        try:
            with transaction.atomic():
                _copy_upsert(dataset_id, key_fields, rows, now)
            return []
        except DatabaseError as exc:
            if infrastructure_failure(exc):
                raise
            state = getattr(exc.__cause__, "sqlstate", "") or ""
            if state.startswith("40") and attempt < 2:
                continue
            if len(rows) == 1:
                message = str(exc.__cause__ or exc).strip().splitlines()[0]
                return [(0, message)]
            break
    mid = len(rows) // 2
    left = _upsert_isolating(dataset_id, key_fields, rows[:mid], now)
    right = _upsert_isolating(dataset_id, key_fields, rows[mid:], now)
    return left + [(mid + i, message) for i, message in right]


def _parents_present(parent: Dataset, parent_field: str, values: set[Any]) -> set[bytes]:
    keys = [orjson.dumps({parent_field: v}) for v in values]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key FROM datasets_record WHERE dataset_id = %s AND key = ANY(%s::jsonb[])",
            [parent.pk, [k.decode() for k in keys]],
        )
        found = cursor.fetchall()
    # Django's psycopg setup hands jsonb back as text.
    return {
        orjson.dumps(orjson.loads(k) if isinstance(k, str) else k, option=SORTED) for (k,) in found
    }


def _check_references(
    mapping: Mapping, rows: list[tuple[int, dict[str, Any]]]
) -> tuple[list[tuple[int, dict[str, Any]]], list[Failure]]:
    failures: dict[int, Failure] = {}
    parents = {
        d.name: d
        for d in Dataset.objects.filter(
            name__in=[spec.references[0] for spec in mapping.references if spec.references]
        )
    }
    for spec in mapping.references:
        assert spec.references is not None
        parent_name, parent_field = spec.references
        parent = parents.get(parent_name)
        values = {data[spec.name] for _, data in rows if data.get(spec.name) is not None}
        if not values:
            continue
        if parent is None or parent.key_fields != [parent_field]:
            present: set[bytes] = set()
            why = (
                f"dataset {parent_name!r} is not defined"
                if parent is None
                else f"{parent_field!r} is not the key of {parent_name!r}"
            )
        else:
            present = _parents_present(parent, parent_field, values)
            why = ""
        for index, data in rows:
            value = data.get(spec.name)
            if value is None:
                continue
            if orjson.dumps({parent_field: value}, option=SORTED) not in present:
                message = (
                    f"{spec.source}: no {parent_name} record with {parent_field} = {value!r}"
                    + (f" ({why})" if why else "")
                )
                if index in failures:
                    failures[index].message += "; " + message
                else:
                    failures[index] = Failure(index, "missing_reference", message)
    kept = [(index, data) for index, data in rows if index not in failures]
    return kept, list(failures.values())


def _first(item: tuple[Any, Any]) -> Any:
    return item[0]


def _dataset_hold(dataset: Dataset) -> None:
    """Holds the dataset row FOR KEY SHARE until commit (what a foreign key check would
    take for every row, once for the batch): dataset_delete, which takes it FOR UPDATE,
    waits for this batch, and this batch waits for a delete in progress. The definition
    is read again under the lock, so a batch is mapped by the definition it commits under.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key_fields, fields FROM datasets_dataset WHERE id = %s FOR KEY SHARE",
            [dataset.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"No dataset named {dataset.name!r}.")
    key_fields, fields = (orjson.loads(v) if isinstance(v, str | bytes) else v for v in row)
    dataset.key_fields, dataset.fields = key_fields, fields


def records_write(*, dataset: Dataset, records: list[Any], now: dt.datetime) -> WriteOutcome:
    """Maps, checks and upserts ``records`` (call inside a transaction). Every index ends
    up in exactly one of ``written`` and ``failures``."""
    _dataset_hold(dataset)
    mapping = dataset_mapping(dataset)
    failures: list[Failure] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    encoded: dict[int, bytes] = {}
    for index, raw in enumerate(records):
        data, data_bytes, errors = map_and_encode(mapping, raw)
        if data is None:
            failures.append(Failure(index, "validation_error", describe_errors(errors), errors))
        else:
            rows.append((index, data))
            encoded[index] = data_bytes
    if mapping.references and rows:
        rows, missing = _check_references(mapping, rows)
        failures.extend(missing)
    # One row per key: within a batch the last record with a key wins (the earlier ones
    # are written and then superseded, as if sent one after the other). Keys are compared
    # as Python values: each key field holds one type after coercion.
    key_fields = mapping.key_fields
    by_key: dict[Any, tuple[list[int], bytes]] = {}
    if len(key_fields) == 1:
        (name,) = key_fields
        keyed = [(data[name], index) for index, data in rows]
    else:
        keyed = [(tuple(data[k] for k in key_fields), index) for index, data in rows]
    for key, index in keyed:
        previous = by_key.get(key)
        if previous is None:
            by_key[key] = ([index], encoded[index])
        else:
            previous[0].append(index)
            by_key[key] = (previous[0], encoded[index])
    # In key order, so concurrent batches lock shared keys in one order (no deadlocks).
    ordered = sorted(by_key.items(), key=_first)
    staged = [data for _, (_, data) in ordered]
    owners = [indexes for _, (indexes, _) in ordered]
    long_keys = [
        position
        for position, (key, (_, data)) in enumerate(ordered)
        if len(data) > LONG_KEY_BYTES and len(orjson.dumps(key)) > LONG_KEY_BYTES
    ]
    if not long_keys:
        groups = [list(range(len(staged)))] if staged else []
    else:
        skip = set(long_keys)
        groups = [[p for p in range(len(staged)) if p not in skip], long_keys]
    refused: list[tuple[int, str]] = []
    for group in groups:
        if group:
            rows_of = staged if len(group) == len(staged) else [staged[p] for p in group]
            outcome = _upsert_isolating(dataset.pk, key_fields, rows_of, now)
            refused += [(group[i], message) for i, message in outcome]
    if not refused:  # rows are in index order: every one of them was written
        written = [index for index, _ in rows]
    else:
        refused_positions = set()
        for position, message in refused:
            refused_positions.add(position)
            for index in owners[position]:
                failures.append(Failure(index, "write_error", message))
        written = sorted(
            index
            for position, indexes in enumerate(owners)
            if position not in refused_positions
            for index in indexes
        )
    failures.sort(key=lambda f: f.index)
    return WriteOutcome(written=written, failures=failures)


def retry_backoff_seconds(attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with "equal jitter": half of base * 2**(attempts-1) (capped),
    plus a random share of the other half, so retries of one batch spread out."""
    base = settings.DATASETS_RETRY_BASE_SECONDS
    cap = settings.DATASETS_RETRY_MAX_DELAY_SECONDS
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def _storable(value: Any) -> Any:
    """Postgres jsonb cannot hold NUL characters: such a record is kept with each NUL
    replaced by U+FFFD (the failure message says the record had them)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def queue_failures(
    *,
    dataset: Dataset,
    records: list[Any],
    failures: list[Failure],
    now: dt.datetime,
    batch_id: str = "",
) -> list[RetryItem]:
    max_attempts = settings.DATASETS_RETRY_MAX_ATTEMPTS
    dead = max_attempts <= 1
    items = RetryItem.objects.bulk_create(
        [
            RetryItem(
                dataset=dataset,
                record=records[f.index]
                if b"\\u0000" not in orjson.dumps(records[f.index])
                else _storable(records[f.index]),
                code=f.code,
                message=f.message,
                attempts=1,
                max_attempts=max_attempts,
                status=RetryItem.Status.DEAD if dead else RetryItem.Status.PENDING,
                next_attempt_at=now + dt.timedelta(seconds=retry_backoff_seconds(1)),
                failed_at=now,
                created_at=now,
                batch_id=batch_id,
                batch_index=f.index,
            )
            for f in failures
        ]
    )
    RetryAttempt.objects.bulk_create(
        [
            RetryAttempt(item=item, number=1, at=now, code=f.code, message=f.message)
            for item, f in zip(items, failures, strict=True)
        ]
    )
    return items


def _count_writes(dataset_id: int, written: int, queued: int, now: dt.datetime) -> None:
    """Per-minute write counters for the dashboard's write rate (best effort)."""
    minute = int(now.timestamp()) // 60 * 60
    name = redis_key("datasets", "rate", dataset_id, minute)
    try:
        pipe = redis_connection().pipeline(transaction=False)
        if written:
            pipe.hincrby(name, "written", written)
        if queued:
            pipe.hincrby(name, "queued", queued)
        pipe.expire(name, RATE_BUCKET_TTL_SECONDS)
        pipe.execute()
    except Exception:  # the rate display must never fail a committed write
        pass


def batch_submit(*, dataset: Dataset, records: list[Any], batch_id: str | None) -> dict[str, Any]:
    """Writes one batch; returns API.md's response, which exists only once committed."""
    now = clock.now()

    def store() -> dict[str, Any]:
        outcome = records_write(dataset=dataset, records=records, now=now)
        queue_failures(
            dataset=dataset,
            records=records,
            failures=outcome.failures,
            now=now,
            batch_id=batch_id or "",
        )
        return {
            "batch_id": batch_id,
            "received": len(records),
            "written": len(outcome.written),
            "queued": len(outcome.failures),
            "failures": [f.as_dict() for f in outcome.failures],
        }

    try:
        response, replayed = batch_once(
            table=BATCH_TABLE,
            scope={"dataset_id": dataset.pk},
            batch_id=batch_id,
            items=records,
            now=now,
            store=store,
        )
    except DatabaseError as exc:
        if not infrastructure_failure(exc):
            raise
        # The transaction is gone with its connection: nothing of this batch was
        # committed. Drop the broken connection so the next request opens a new one.
        connection.close()
        raise DatabaseUnavailable(
            "The database connection was lost; nothing of this batch was written. "
            "Send it again (with the same batch_id).",
            headers={"Retry-After": "1"},
        ) from exc
    if replayed:
        return response
    written, queued = response["written"], response["queued"]
    _count_writes(dataset.pk, written, queued, now)
    if written:
        RECORDS.labels(dataset.name, "written").inc(written)
    if queued:
        RECORDS.labels(dataset.name, "queued").inc(queued)
    return response


def record_counts_compact() -> int:
    """Folds each dataset's count rows into one (one statement a dataset, atomic; rows
    added meanwhile are left for next time). Returns how many datasets it compacted."""
    compacted = 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT dataset_id FROM datasets_recordcount GROUP BY dataset_id HAVING count(*) > 1"
        )
        for (dataset_id,) in cursor.fetchall():
            cursor.execute(
                "WITH gone AS (DELETE FROM datasets_recordcount WHERE dataset_id = %s "
                "RETURNING delta) INSERT INTO datasets_recordcount (dataset_id, delta) "
                "SELECT %s, COALESCE(sum(delta), 0) FROM gone HAVING count(*) > 0",
                [dataset_id, dataset_id],
            )
            compacted += 1
    return compacted


def batch_prune(*, now: dt.datetime | None = None) -> int:
    """Forgets batch ids older than DATASETS_BATCH_ID_RETENTION_HOURS (at least 24)."""
    hours = settings.DATASETS_BATCH_ID_RETENTION_HOURS
    return shared_batch_prune(table=BATCH_TABLE, retention_hours=hours, now=now)
