"""``batch_id`` idempotency, shared by every endpoint that takes a batch.

API.md defines it for dataset writes; log lines and spans follow the same rule, because
coreadmin_client resends a batch under its original id after a timeout, a crash or a
restart (its journal), and that resend must not store the batch twice:

- the first request with an id claims it (a row in the endpoint's batch table) in the
  same transaction that stores the batch, and stores its response there before commit;
- a repeat with the same items returns that response and stores nothing;
- a repeat with different items is refused (409 ``batch_id_conflict``);
- concurrent requests with one id: the second INSERT waits on the first transaction's
  row, then replays its response (or, if the first rolled back, claims the id itself).

Each table has columns (scope..., batch_id, request_hash, response, created_at) with a
unique constraint on (scope..., batch_id); ``scope`` is e.g. the dataset a batch id
belongs to. Plain SQL rather than the ORM: the claim must be one INSERT ... ON CONFLICT
DO NOTHING RETURNING, which the ORM cannot express. Table and column names come from
our code, never from a request; they are quoted all the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from django.db import connection, models, transaction

from coreadmin.clock import clock
from coreadmin.errors import BatchIdConflict, ServiceUnavailable


class BatchRecord(models.Model):
    """The columns of a batch table; each endpoint's concrete model adds its scope and
    the unique constraint over (scope..., batch_id)."""

    batch_id = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"batch {self.batch_id}"


_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> str:
    return str(value)


def request_hash(items: Any) -> str:
    """A digest of a batch's items that ignores key order (a resend re-serialises)."""
    return hashlib.sha256(orjson.dumps(items, option=_SORTED, default=_default)).hexdigest()


def _names(names: Any) -> str:
    return ", ".join(connection.ops.quote_name(name) for name in names)


def _where(scope: Mapping[str, Any], batch_id: str) -> tuple[str, list[Any]]:
    columns = [*scope, "batch_id"]
    clause = " AND ".join(f"{connection.ops.quote_name(column)} = %s" for column in columns)
    return clause, [*scope.values(), batch_id]


def batch_claim(
    *,
    table: str,
    batch_id: str,
    digest: str,
    now: dt.datetime,
    scope: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Claims ``batch_id`` for the current transaction (None: go on and store the batch)
    or returns the response stored by the request that claimed it first. Must run
    inside the transaction that stores the batch."""
    scope = scope or {}
    columns = [*scope, "batch_id", "request_hash", "created_at"]
    name = connection.ops.quote_name(table)
    insert = (
        f"INSERT INTO {name} ({_names(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({_names([*scope, 'batch_id'])}) DO NOTHING RETURNING 1"
    )
    where, params = _where(scope, batch_id)
    select = f"SELECT request_hash, response FROM {name} WHERE {where}"
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute(insert, [*scope.values(), batch_id, digest, now])
            if cursor.fetchone() is not None:
                return None
            cursor.execute(select, params)
            row = cursor.fetchone()
            if row is None:  # pruned in between: claim again
                continue
            stored_digest, response = row
            if stored_digest != digest:
                raise BatchIdConflict(
                    f"batch_id {batch_id!r} was already used with different items.",
                    details={"batch_id": batch_id},
                )
            if response is None:  # claimed by a transaction that committed no response
                raise ServiceUnavailable(
                    "That batch_id is being written; send it again shortly.",
                    headers={"Retry-After": "1"},
                )
            return response if isinstance(response, dict) else orjson.loads(response)
    raise ServiceUnavailable("Could not claim the batch id; try again.")


def batch_remember(
    *,
    table: str,
    batch_id: str,
    response: Mapping[str, Any],
    scope: Mapping[str, Any] | None = None,
) -> None:
    """Stores the first response under a claimed ``batch_id`` (same transaction)."""
    where, params = _where(scope or {}, batch_id)
    update = f"UPDATE {connection.ops.quote_name(table)} SET response = %s WHERE {where}"
    with connection.cursor() as cursor:
        cursor.execute(update, [orjson.dumps(response, default=_default).decode(), *params])


def batch_once(
    *,
    table: str,
    batch_id: str | None,
    items: Any,
    now: dt.datetime,
    store: Callable[[], dict[str, Any]],
    scope: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Runs ``store`` (writes the batch, returns its response) in one transaction with
    the claim of ``batch_id`` and the stored response; returns (response, replayed). A
    repeat returns the first response without calling ``store``. Without a batch_id,
    ``store`` runs in a transaction of its own."""
    with transaction.atomic():
        if batch_id:
            replay = batch_claim(
                table=table, scope=scope, batch_id=batch_id, digest=request_hash(items), now=now
            )
            if replay is not None:
                return replay, True
        response = store()
        if batch_id:
            batch_remember(table=table, scope=scope, batch_id=batch_id, response=response)
    return response, False


def batch_prune(*, table: str, retention_hours: int, now: dt.datetime | None = None) -> int:
    """Forgets the batch ids claimed more than ``retention_hours`` before ``now``."""
    cutoff = (now or clock.now()) - dt.timedelta(hours=retention_hours)
    delete = f"DELETE FROM {connection.ops.quote_name(table)} WHERE created_at < %s"
    with connection.cursor() as cursor:
        cursor.execute(delete, [cutoff])
        return cursor.rowcount
