"""Datasets, batch writes and the retry queue (API.md)."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from django.conf import settings
from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.responses import Status

from apps.accounts.auth import admin_auth
from apps.datasets.models import Dataset, RetryItem
from apps.datasets.schemas import (
    BatchIn,
    BatchOut,
    DatasetIn,
    DatasetListOut,
    DatasetOut,
    RecordListOut,
    RetryIn,
    RetryItemOut,
    RetryListOut,
)
from apps.datasets.selectors import dataset_get, dataset_list, records_page, retry_api_items
from apps.datasets.services import batch_submit, dataset_put, retry_discard, retry_now
from coreadmin.errors import PayloadTooLarge, ValidationFailed
from coreadmin.http import ApiRequest

router = Router(tags=["datasets"])


def _dataset_out(dataset: Dataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "key_fields": dataset.key_fields,
        "fields": dataset.fields,
        "created_at": dataset.created_at,
        "updated_at": dataset.updated_at,
    }


@router.put("/datasets/{name}", response={200: DatasetOut, 201: DatasetOut}, auth=admin_auth)
def put_dataset(request: ApiRequest, name: str, payload: DatasetIn) -> Status:
    """Creates or replaces a dataset definition (201 when created)."""
    body = payload.dict(exclude_none=True)
    dataset, created = dataset_put(
        name=name,
        key_fields=body["key_fields"],
        fields=body["fields"],
        actor=f"key:{request.auth.name}",
    )
    return Status(201 if created else 200, _dataset_out(dataset))


@router.get("/datasets", response=DatasetListOut)
def list_datasets(request: HttpRequest) -> dict[str, Any]:
    items = [_dataset_out(d) for d in dataset_list()]
    return {"items": items, "count": len(items)}


@router.get("/datasets/{name}", response=DatasetOut)
def get_dataset(request: HttpRequest, name: str) -> dict[str, Any]:
    return _dataset_out(dataset_get(name))


def _read_batch(request: HttpRequest) -> tuple[str | None, list[Any]]:
    """Parses the body ourselves: the byte limit before reading, the count limit before
    any record is looked at, and every malformation as a 422 naming the path."""
    limit = settings.DATASETS_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise PayloadTooLarge(
            f"The request body is {declared} bytes; the limit is {limit} bytes.",
            details={"limit_bytes": limit, "received_bytes": declared},
        )
    raw = request.body
    if len(raw) > limit:
        raise PayloadTooLarge(
            f"The request body is {len(raw)} bytes; the limit is {limit} bytes.",
            details={"limit_bytes": limit, "received_bytes": len(raw)},
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(
            "The request body is not valid JSON.", [{"path": "body", "reason": str(exc)}]
        ) from exc
    if not isinstance(body, dict):
        raise ValidationFailed(
            "The body must be an object.", [{"path": "body", "reason": "expected an object"}]
        )
    problems = []
    records = body.get("records")
    if not isinstance(records, list):
        problems.append({"path": "records", "reason": "a list of record objects is required"})
    batch_id = body.get("batch_id")
    if batch_id is not None and (not isinstance(batch_id, str) or not 1 <= len(batch_id) <= 200):
        problems.append({"path": "batch_id", "reason": "a string of 1 to 200 characters"})
    unknown = set(body) - {"records", "batch_id"}
    if unknown:
        problems += [{"path": name, "reason": "unknown field"} for name in sorted(unknown)]
    if problems:
        raise ValidationFailed("The request is not valid; see details.fields.", problems)
    assert isinstance(records, list)
    maximum = settings.DATASETS_MAX_BATCH_RECORDS
    if len(records) > maximum:
        raise PayloadTooLarge(
            f"The batch has {len(records)} records; the limit is {maximum}.",
            details={"limit_records": maximum, "received_records": len(records)},
        )
    return batch_id, records


@router.post(
    "/datasets/{name}/records",
    response=BatchOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BatchIn.json_schema()}},
        }
    },
)
def post_records(request: HttpRequest, name: str) -> dict[str, Any]:
    """Writes a batch: valid records upserted by key_fields, the others queued for retry
    and listed in ``failures``. Answered only after commit."""
    dataset = dataset_get(name)
    batch_id, records = _read_batch(request)
    return batch_submit(dataset=dataset, records=records, batch_id=batch_id)


class RecordQuery(Schema):
    limit: int = 100
    after: str = ""


@router.get("/datasets/{name}/records", response=RecordListOut)
def get_records(request: HttpRequest, name: str, query: Query[RecordQuery]) -> dict[str, Any]:
    dataset = dataset_get(name)
    limit = min(max(query.limit, 1), 1000)
    items, count, cursor = records_page(dataset, limit=limit, after=query.after)
    return {
        "items": [{"key": r.key, "data": r.data, "updated_at": r.updated_at} for r in items],
        "count": count,
        "next": cursor,
    }


def _item_out(item: RetryItem) -> dict[str, Any]:
    return {
        "id": item.pk,
        "dataset": item.dataset.name,
        "record": item.record,
        "code": item.code,
        "message": item.message,
        "attempts": item.attempts,
        "max_attempts": item.max_attempts,
        "next_attempt_at": item.next_attempt_at if item.status == "pending" else None,
        "status": item.status,
        "resolution": item.resolution,
        "failed_at": item.failed_at,
        "created_at": item.created_at,
    }


class RetryQuery(Schema):
    dataset: str = ""
    status: Literal["", "pending", "dead", "resolved"] = ""
    limit: int = 100


@router.get("/retries", response=RetryListOut)
def list_retries(request: HttpRequest, query: Query[RetryQuery]) -> dict[str, Any]:
    """Newest failure first; ``count`` is the number matching the filters."""
    items, count = retry_api_items(
        dataset=query.dataset, status=query.status, limit=min(max(query.limit, 1), 1000)
    )
    return {"items": [_item_out(i) for i in items], "count": count}


@router.post("/retries/{item_id}/retry", response=RetryItemOut, auth=admin_auth)
def retry_item(request: ApiRequest, item_id: int, payload: RetryIn | None = None) -> Any:
    """Retries now, optionally with an edited record; returns the item afterwards."""
    record = payload.record if payload is not None else None
    return _item_out(retry_now(item_id=item_id, actor=f"key:{request.auth.name}", record=record))


@router.post("/retries/{item_id}/discard", response=RetryItemOut, auth=admin_auth)
def discard_item(request: ApiRequest, item_id: int) -> Any:
    return _item_out(retry_discard(item_id=item_id, actor=f"key:{request.auth.name}"))
