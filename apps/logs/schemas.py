from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from django.conf import settings
from ninja import Field, Schema
from pydantic import field_validator

from apps.fleet.schemas import PRINTABLE
from coreadmin.errors import PayloadTooLarge

LevelName = Literal[
    "debug",
    "info",
    "warning",
    "error",
    "critical",
    "DEBUG",
    "INFO",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "warn",
    "WARN",
    "fatal",
    "FATAL",
    "exception",
    "notset",
    "trace",
]


class LogRecordIn(TypedDict):
    """One line of a batch. A TypedDict, not a ninja Schema: pydantic-core validates it
    into the dict ingestion reads, with no model object per line. A Schema wraps each
    line's validation in a Python-level validator (for reading ORM objects) and then has
    to be turned back into a dict: 4 ms per 1,000-line batch, against 0.5 ms."""

    ts: NotRequired[
        Annotated[dt.datetime | None, Field(description="Defaults to the server's time.")]
    ]
    level: NotRequired[Annotated[LevelName, Field(description='Defaults to "info".')]]
    logger: NotRequired[Annotated[str, Field(max_length=1000)]]
    message: NotRequired[Annotated[str, Field(max_length=1_000_000)]]
    service: Annotated[str, Field(min_length=1, max_length=100, pattern=PRINTABLE)]
    thread_id: NotRequired[Annotated[str | None, Field(max_length=100)]]
    context: NotRequired[dict[str, Any]]


class LogBatchIn(Schema):
    batch_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Idempotency key, as for dataset writes: a resend stores nothing.",
    )
    records: list[LogRecordIn]

    @field_validator("records", mode="before")
    @classmethod
    def not_too_many(cls, value: Any) -> Any:
        """Refuses an oversized batch before a single record is validated (413; raised
        as our error, which pydantic lets through)."""
        if isinstance(value, list) and len(value) > settings.LOGS_MAX_BATCH:
            raise PayloadTooLarge(
                f"At most {settings.LOGS_MAX_BATCH} records per batch; got {len(value)}.",
                details={"max_records": settings.LOGS_MAX_BATCH, "received": len(value)},
            )
        return value


class LogAcceptedOut(Schema):
    batch_id: str | None = None
    accepted: int = Field(description="Lines received (stored + dropped).")
    stored: int
    dropped: int = Field(description="Lines below the service's min_log_level or too old.")


class LogLineOut(Schema):
    id: int
    ts: dt.datetime
    level: str
    logger: str
    message: str
    service: str
    thread_id: str | None
    context: dict[str, Any]


class LogListOut(Schema):
    items: list[LogLineOut]
    count: int
    cursor: str  # pass back as ?cursor= for the lines committed since this answer
    more: bool = False
