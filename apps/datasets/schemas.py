from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

FieldType = Literal["string", "integer", "float", "boolean", "datetime", "json"]


class FieldIn(Schema):
    # A typo such as "requred" must be an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")

    type: FieldType
    required: bool = False
    source: str | None = Field(default=None, description="The incoming name, if different.")
    references: str | None = Field(default=None, description='"parent_dataset.key_field"')


class DatasetIn(Schema):
    model_config = ConfigDict(extra="forbid")

    key_fields: list[str] = Field(min_length=1)
    fields: dict[str, FieldIn] = Field(min_length=1)


class DatasetOut(Schema):
    name: str
    key_fields: list[str]
    fields: dict[str, dict[str, Any]]
    created_at: dt.datetime
    updated_at: dt.datetime


class DatasetListOut(Schema):
    items: list[DatasetOut]
    count: int


class BatchIn(Schema):
    """Documents the body; the endpoint parses it itself (fast path, own limits)."""

    batch_id: str | None = Field(default=None, max_length=200)
    records: list[dict[str, Any]]


class FailureOut(Schema):
    index: int
    code: Literal["validation_error", "missing_reference", "write_error"]
    message: str
    fields: list[dict[str, str]] = Field(
        default_factory=list, description="Per-field problems of a validation_error."
    )


class BatchOut(Schema):
    batch_id: str | None
    received: int
    written: int
    queued: int
    failures: list[FailureOut]


class RecordOut(Schema):
    key: dict[str, Any]
    data: dict[str, Any]
    updated_at: dt.datetime


class RecordListOut(Schema):
    items: list[RecordOut]
    count: int
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


class RetryItemOut(Schema):
    id: int
    dataset: str
    record: Any
    code: str
    message: str
    attempts: int
    max_attempts: int
    next_attempt_at: dt.datetime | None
    status: Literal["pending", "dead", "resolved"]
    resolution: str
    failed_at: dt.datetime
    created_at: dt.datetime


class RetryListOut(Schema):
    items: list[RetryItemOut]
    count: int


class RetryIn(Schema):
    record: dict[str, Any] | None = None
