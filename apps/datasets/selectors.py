"""Reads shared by the API and the dashboard."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from django.db.models import Count, Q, QuerySet, Sum, TextField
from django.db.models.functions import Cast

from apps.datasets.models import Dataset, Record, RecordCount, RetryItem
from coreadmin.clock import clock
from coreadmin.errors import NotFound, ValidationFailed
from coreadmin.redis import connection as redis_connection
from coreadmin.redis import key as redis_key

TABS = ("pending", "scheduled", "dead", "resolved")


def dataset_get(name: str) -> Dataset:
    dataset = Dataset.objects.filter(name=name).first()
    if dataset is None:
        raise NotFound(f"No dataset named {name!r}.")
    return dataset


def dataset_list() -> QuerySet[Dataset]:
    return Dataset.objects.order_by("name")


def dataset_stats() -> list[dict[str, Any]]:
    """Every dataset with its record count and retry counts: three queries in all."""
    datasets = list(Dataset.objects.order_by("name"))
    records: dict[int, int] = dict(
        RecordCount.objects.values_list("dataset")
        .annotate(n=Sum("delta"))
        .values_list("dataset", "n")
    )
    retries: dict[int, Any] = {
        row["dataset"]: row
        for row in RetryItem.objects.exclude(status=RetryItem.Status.RESOLVED)
        .values("dataset")
        .annotate(
            pending=Count("id", filter=Q(status=RetryItem.Status.PENDING)),
            dead=Count("id", filter=Q(status=RetryItem.Status.DEAD)),
        )
    }
    return [
        {
            "dataset": d,
            "records": records.get(d.pk, 0),
            "pending": retries.get(d.pk, {}).get("pending", 0),
            "dead": retries.get(d.pk, {}).get("dead", 0),
        }
        for d in datasets
    ]


def record_count(dataset: Dataset) -> int:
    """Exact, without count(*): the sum of the dataset's count rows (see RecordCount)."""
    total = RecordCount.objects.filter(dataset=dataset).aggregate(n=Sum("delta"))["n"]
    return int(total or 0)


def records_page(
    dataset: Dataset, *, limit: int = 100, after: str = ""
) -> tuple[list[Record], int, str | None]:
    """Records in key order after the cursor ``after`` (the JSON of the last key seen):
    (items, the dataset's total, the next cursor or None)."""
    records = Record.objects.filter(dataset=dataset).order_by("key")
    if after:
        try:
            orjson.loads(after)
        except orjson.JSONDecodeError as exc:
            raise ValidationFailed(
                "after is not a cursor from a previous page.",
                [{"path": "after", "reason": "the JSON of a key, as returned in next"}],
            ) from exc
        records = records.extra(where=["datasets_record.key > %s::jsonb"], params=[after])
    items = list(records[:limit])
    cursor = (
        orjson.dumps(items[-1].key, option=orjson.OPT_SORT_KEYS).decode()
        if len(items) == limit
        else None
    )
    return items, record_count(dataset), cursor


def recent_records(dataset: Dataset, limit: int = 20) -> list[Record]:
    return list(Record.objects.filter(dataset=dataset).order_by("-updated_at", "-id")[:limit])


def write_rate(dataset: Dataset, *, minutes: int = 60) -> list[dict[str, Any]]:
    """Records written and queued per minute over the last ``minutes`` (one MGET-like
    round trip to Redis; empty minutes are zero)."""
    now = int(clock.time()) // 60 * 60
    starts = [now - 60 * i for i in range(minutes - 1, -1, -1)]
    try:
        pipe = redis_connection().pipeline(transaction=False)
        for start in starts:
            pipe.hgetall(redis_key("datasets", "rate", dataset.pk, start))
        rows = pipe.execute()
    except Exception:
        rows = [{} for _ in starts]
    out = []
    for start, row in zip(starts, rows, strict=True):
        out.append(
            {
                "minute": dt.datetime.fromtimestamp(start, tz=dt.UTC),
                "written": int(row.get(b"written", 0)),
                "queued": int(row.get(b"queued", 0)),
            }
        )
    return out


@dataclass(frozen=True)
class RetryFilters:
    dataset: str = ""
    code: str = ""
    q: str = ""
    tab: str = "pending"

    @classmethod
    def from_params(cls, params: Any) -> RetryFilters:
        tab = params.get("tab", "") or params.get("status", "") or "pending"
        return cls(
            dataset=(params.get("dataset") or "").strip(),
            code=(params.get("code") or "").strip(),
            q=(params.get("q") or "").strip()[:200],
            tab=tab if tab in TABS else "pending",
        )

    def describe(self) -> str:
        parts = [f"tab={self.tab}"]
        parts += [
            f"{k}={v}"
            for k, v in (("dataset", self.dataset), ("code", self.code), ("q", self.q))
            if v
        ]
        return " ".join(parts)


def _tab_q(tab: str, now: dt.datetime) -> Q:
    if tab == "pending":
        return Q(status=RetryItem.Status.PENDING, next_attempt_at__lte=now)
    if tab == "scheduled":
        return Q(status=RetryItem.Status.PENDING, next_attempt_at__gt=now)
    return Q(status=tab)


def _filtered(filters: RetryFilters) -> QuerySet[RetryItem]:
    items = RetryItem.objects.all()
    if filters.dataset:
        items = items.filter(dataset__name=filters.dataset)
    if filters.code:
        items = items.filter(code=filters.code)
    if filters.q:
        items = items.annotate(record_text=Cast("record", TextField())).filter(
            Q(message__icontains=filters.q) | Q(record_text__icontains=filters.q)
        )
    return items


def retry_items(filters: RetryFilters, *, now: dt.datetime | None = None) -> QuerySet[RetryItem]:
    """The list behind a tab, newest failure first."""
    now = now or clock.now()
    items = _filtered(filters).filter(_tab_q(filters.tab, now)).select_related("dataset")
    if filters.tab == "scheduled":
        return items.order_by("next_attempt_at", "id")
    return items.order_by("-failed_at", "-id")


def retry_tab_counts(filters: RetryFilters, *, now: dt.datetime | None = None) -> dict[str, int]:
    now = now or clock.now()
    return _filtered(filters).aggregate(
        **{tab: Count("id", filter=_tab_q(tab, now)) for tab in TABS}
    )


def retry_api_items(
    *, dataset: str = "", status: str = "", limit: int = 100
) -> tuple[list[RetryItem], int]:
    items = RetryItem.objects.select_related("dataset").order_by("-failed_at", "-id")
    if dataset:
        items = items.filter(dataset__name=dataset)
    if status:
        items = items.filter(status=status)
    return list(items[:limit]), items.count()


ERROR_CODES = ("validation_error", "missing_reference", "write_error")


def retry_detail(item_id: int) -> RetryItem:
    item = (
        RetryItem.objects.select_related("dataset")
        .prefetch_related("attempt_log")
        .filter(pk=item_id)
        .first()
    )
    if item is None:
        raise NotFound(f"No retry item {item_id}.")
    return item


def retry_queue_totals() -> dict[str, int]:
    now = clock.now()
    return RetryItem.objects.aggregate(
        pending=Count("id", filter=Q(status=RetryItem.Status.PENDING)),
        due=Count("id", filter=_tab_q("pending", now)),
        dead=Count("id", filter=Q(status=RetryItem.Status.DEAD)),
    )
