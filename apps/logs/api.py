"""POST /api/v1/logs (ingestion) and GET /api/v1/logs (search), per API.md."""

from __future__ import annotations

from typing import Any

from ninja import Query, Router
from ninja.responses import Status

from apps.accounts.auth import require_service
from apps.logs.models import LEVEL_NAMES
from apps.logs.schemas import LogAcceptedOut, LogBatchIn, LogListOut
from apps.logs.selectors import (
    LogFilter,
    consistent_reads,
    log_lines,
    log_lines_after,
    log_lines_since,
    searchable,
    tail_cursor,
    valid_tail_cursor,
)
from apps.logs.services import log_batch_submit
from coreadmin.errors import ValidationFailed
from coreadmin.http import ApiRequest

router = Router(tags=["logs"])


@router.post("/logs", response={202: LogAcceptedOut})
def ingest(request: ApiRequest, payload: LogBatchIn) -> Status:
    """Stores a batch of log lines (redacted first). Lines below the service's
    min_log_level (fleet configuration) are accepted and dropped; `dropped` counts them.
    A `batch_id` makes a resend store nothing and answer as the first time did."""
    principal = request.auth
    if principal.service:
        for service in {record["service"] for record in payload.records}:
            require_service(principal, service)
    return Status(202, log_batch_submit(records=payload.records, batch_id=payload.batch_id))


class LogQuery(LogFilter):
    after_id: int | None = None
    cursor: str | None = None
    limit: int = 100


def line_out(line: Any) -> dict[str, Any]:
    return {
        "id": line.id,
        "ts": line.ts,
        "level": LEVEL_NAMES.get(line.level, str(line.level)),
        "logger": line.logger,
        "message": line.message,
        "service": line.service,
        "thread_id": line.thread_id or None,
        "context": line.context,
    }


@router.get("/logs", response=LogListOut)
def search(request: ApiRequest, params: Query[LogQuery]) -> dict[str, Any]:
    """Lines newest first (already redacted). `level` is exact, `min_level` at least;
    Every answer carries a `cursor`; passing it back as `cursor` returns exactly the lines
    committed since that answer (tailing: none skipped, none twice, newest first; `more`
    says more arrived than `limit`). `after_id` (lines with a higher id) is kept for old
    callers, but can miss lines under concurrent ingestion. A key restricted to a service
    reads only that service's lines."""
    if params.q and not searchable(params.q):
        raise ValidationFailed(
            "q holds no word to search for",
            [{"path": "q", "reason": "give at least one word (letters or digits)"}],
        )
    service = params.service
    if request.auth.service:
        require_service(request.auth, service or request.auth.service)
        service = request.auth.service
    filters = LogFilter(
        **{
            **params.model_dump(include=set(LogFilter.model_fields)),
            "service": service,
            "level": params.level.lower(),
            "min_level": params.min_level.lower(),
        }
    )
    limit = max(1, min(params.limit, 1000))
    more = False
    if params.cursor is not None:
        if not valid_tail_cursor(params.cursor):
            raise ValidationFailed(
                "cursor is not a tail cursor",
                [{"path": "cursor", "reason": "pass the cursor of a previous answer"}],
            )
        page = log_lines_since(filters, cursor=params.cursor, limit=limit)
        rows, cursor, more = page.lines, page.cursor, page.more
    else:
        with consistent_reads():
            cursor = tail_cursor()
            if params.after_id is not None:
                rows = log_lines_after(filters, after_id=params.after_id, limit=limit)
            else:
                rows = list(log_lines(filters).order_by("-ts", "-id")[:limit])
    items = [line_out(line) for line in rows]
    return {"items": items, "count": len(items), "cursor": cursor, "more": more}
