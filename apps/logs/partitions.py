"""Day partitions of logs_logline: created ahead (beat) and on demand (ingestion), and
retention, which drops whole partitions or trims one day's partition by level; never a
row-by-row delete over the whole table.

A partition holds one UTC day: logs_logline_pYYYYMMDD, FOR VALUES FROM (day) TO (day+1).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction

from apps.logs.models import LEVELS
from coreadmin.clock import clock

PARENT = "logs_logline"
_NAME = re.compile(rf"^{PARENT}_p(\d{{8}})$")
# Any constant: serialises partition DDL between processes (pg_advisory_xact_lock).
_DDL_LOCK = 0x6C6F6773

# Days this process knows have a partition, so ingestion skips the catalog lookup.
_known: set[dt.date] = set()
_known_lock = threading.Lock()


def partition_name(day: dt.date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def forget_known_partitions() -> None:
    with _known_lock:
        _known.clear()


def partitions_existing() -> dict[dt.date, str]:
    """Every day partition of the table, from the catalog."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [PARENT],
        )
        names = [row[0] for row in cursor.fetchall()]
    days = {}
    for name in names:
        match = _NAME.match(name)
        if match:
            days[dt.datetime.strptime(match.group(1), "%Y%m%d").date()] = name
    return days


def partitions_ensure(days: Iterable[dt.date]) -> list[dt.date]:
    """Creates the partitions that do not exist yet; returns the days created. Costs
    nothing for days this process already knows about."""
    wanted = set(days) - _known
    if not wanted:
        return []
    created = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_DDL_LOCK])
        existing = partitions_existing()
        for day in sorted(wanted - set(existing)):
            nxt = day + dt.timedelta(days=1)
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF {PARENT} "
                f"FOR VALUES FROM ('{day.isoformat()} 00:00:00+00') "
                f"TO ('{nxt.isoformat()} 00:00:00+00')"
            )
            created.append(day)
    with _known_lock:
        _known.update(wanted)
    return created


def partitions_ahead(*, now: dt.datetime | None = None) -> list[dt.date]:
    """Creates today's partition and LOGS_PARTITIONS_AHEAD_DAYS more (beat task)."""
    today = (now or clock.now()).astimezone(dt.UTC).date()
    days = [today + dt.timedelta(days=n) for n in range(settings.LOGS_PARTITIONS_AHEAD_DAYS + 1)]
    forget_known_partitions()  # the catalog is the truth for the hourly task
    return partitions_ensure(days)


def retention_days() -> dict[int, int]:
    """Days kept per level number, from LOGS_RETENTION_DAYS."""
    return {LEVELS[name]: int(days) for name, days in settings.LOGS_RETENTION_DAYS.items()}


def oldest_kept(level: int, now: dt.datetime) -> dt.datetime:
    """Lines of ``level`` older than this are past retention (ingestion drops them)."""
    return now - dt.timedelta(days=retention_days()[level])


@dataclass
class RetentionResult:
    dropped: list[str] = field(default_factory=list)
    trimmed: dict[str, int] = field(default_factory=dict)


def retention_apply(*, now: dt.datetime | None = None) -> RetentionResult:
    """A day's partition whose every line is past its level's retention is dropped; a
    day past some levels' retention is trimmed of those levels (a DELETE inside that
    one partition, through its (level, ts) index)."""
    now = now or clock.now()
    keep = retention_days()
    longest = max(keep.values())
    result = RetentionResult()
    for day, name in sorted(partitions_existing().items()):
        end = day_start(day + dt.timedelta(days=1))
        if end <= now - dt.timedelta(days=longest):
            with transaction.atomic(), connection.cursor() as cursor:
                # Wait briefly for readers rather than queue every later query behind us.
                cursor.execute("SET LOCAL lock_timeout = '5s'")
                cursor.execute(f"DROP TABLE IF EXISTS {name}")
            result.dropped.append(name)
            with _known_lock:
                _known.discard(day)
            continue
        expired = sorted(
            level for level, days in keep.items() if end <= now - dt.timedelta(days=days)
        )
        if expired:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {name} WHERE level = ANY(%s)", [expired])
                if cursor.rowcount:
                    result.trimmed[name] = cursor.rowcount
    return result
