"""Spans in (POST /spans), per-stage percentiles and one thread's spans out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from ninja import Query, Router, Status

from apps.accounts.auth import require_service
from apps.tracing.schemas import SpansAccepted, SpansIn, StagesOut, ThreadOut
from apps.tracing.selectors import stage_stats, thread_spans
from apps.tracing.services import SpanIn, span_batch_submit
from coreadmin.errors import NotFound, PayloadTooLarge, ValidationFailed
from coreadmin.http import ApiRequest

router = Router(tags=["tracing"])


@router.post("/spans", response={202: SpansAccepted})
def post_spans(request: ApiRequest, payload: SpansIn) -> Status:
    """Stores the spans of sampled threads (sampling by thread_id, see docs/tracing.md).
    A `batch_id` makes a resend store nothing and answer as the first time did."""
    limit = settings.TRACING_MAX_SPANS_PER_REQUEST
    if len(payload.spans) > limit:
        raise PayloadTooLarge(
            f"At most {limit} spans per request; got {len(payload.spans)}.",
            details={"limit": limit, "received": len(payload.spans)},
        )
    spans = []
    bad = []
    for index, span in enumerate(payload.spans):
        if span.started_at.tzinfo is None:
            bad.append({"path": f"spans.{index}.started_at", "reason": "needs a time zone"})
            continue
        # No service: the key's own, else "default" (as coreadmin_client names it).
        service = span.service or request.auth.service or "default"
        require_service(request.auth, service)
        spans.append(
            SpanIn(
                thread_id=span.thread_id,
                stage=span.stage,
                name=span.name or span.stage,
                parent_stage=span.parent_stage or "",
                service=service,
                started_at=span.started_at.astimezone(dt.UTC),
                duration_ms=span.duration_ms,
                status=span.status,
            )
        )
    if bad:
        raise ValidationFailed("Some spans are not valid; see details.fields.", bad)
    return Status(202, span_batch_submit(spans=spans, batch_id=payload.batch_id))


@router.get("/tracing/stages", response=StagesOut)
def get_stages(
    request: ApiRequest, service: str = "", window_s: int = Query(3600, ge=60, le=35 * 86400)
) -> dict[str, Any]:
    """count, error_count, p50/p95/p99 (within 1% relative error) and max per stage."""
    stats = stage_stats(window_s=window_s, service=service)
    return {
        "items": [
            {
                "stage": s.stage,
                "parent_stage": s.parent_stage,
                "count": s.count,
                "error_count": s.error_count,
                "p50_ms": s.p50_ms,
                "p95_ms": s.p95_ms,
                "p99_ms": s.p99_ms,
                "max_ms": s.max_ms,
            }
            for s in stats
        ],
        "window_s": window_s,
        "service": service or None,
    }


@router.get("/tracing/threads/{thread_id}", response=ThreadOut)
def get_thread(request: ApiRequest, thread_id: str) -> dict[str, Any]:
    """A thread's spans, parents before children, with depth and offset from its start."""
    thread = thread_spans(thread_id=thread_id)
    if not thread.spans:
        raise NotFound(f"No spans stored for thread {thread_id!r} (unsampled or expired).")
    return {
        "thread_id": thread.thread_id,
        "spans": [
            {
                "stage": s.stage,
                "name": s.name,
                "parent_stage": s.parent_stage,
                "service": s.service,
                "started_at": s.started_at,
                "duration_ms": s.duration_ms,
                "status": s.status,
                "depth": s.depth,
                "offset_ms": s.offset_ms,
            }
            for s in thread.spans
        ],
        "count": len(thread.spans),
        "total_ms": thread.total_ms,
        "truncated": thread.truncated,
    }
