"""Reads of the log store for the API, the logs page and the overview tile.

Every list is keyset-paginated newest first on (ts, id), which each day partition's
indexes serve directly ((ts, id), (level, ts, id), (service, ts, id), (logger, ts, id));
text search is full text, on a GIN index of the message's words (migration 0004). No
query counts the table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Lookup, QuerySet
from django.db.models.functions import TruncMinute
from ninja import Schema
from pydantic import ConfigDict

from apps.logs.models import LEVELS, LogLine, LogStream
from apps.logs.partitions import day_start, partitions_existing
from coreadmin.clock import clock
from coreadmin.redis import connection as redis_connection
from coreadmin.redis import key as redis_key

DROP_COUNTS_DAYS = 8


def drop_counts_key(day: dt.date) -> str:
    return redis_key("logs", "dropped", f"{day:%Y%m%d}")


# The words of a message against a websearch query, as the GIN index of migration 0004
# is built (the expression must be this one for Postgres to use the index).
MATCHES_SQL = "logs_search_vector({message}) @@ websearch_to_tsquery('simple'::regconfig, {query})"


class Words(Lookup):
    """``message__words``: full-text match of a websearch query (see ``search_query``)
    against the words of the message, as the GIN index on ``logs_search_vector(message)``
    holds them (migration 0004)."""

    lookup_name = "words"

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return MATCHES_SQL.format(message=lhs, query=rhs), [*lhs_params, *rhs_params]


LogLine._meta.get_field("message").register_lookup(Words)

# A quoted phrase, with its optional "-", or one bare term.
_TERM = re.compile(r'(-?)"([^"]*)"?|(\S+)')
# What logs_search_vector reads as spaces, so URLs, hosts and paths split into words.
_SPLIT = str.maketrans({"/": " ", ".": " "})


def search_query(text: str) -> str:
    """The page's text search as websearch_to_tsquery syntax, with the message's split
    applied: words match whole and case-insensitively, all of them (``or`` between two
    words: either), ``"quoted words"`` in that order, ``-word`` excludes. A bare term
    holding '/' or '.' (a URL, a host, a dotted name) is searched as the phrase of its
    parts, so ``reddit.com/r/python`` finds ``https://www.reddit.com/r/python/...``."""
    parts = []
    for match in _TERM.finditer(text):
        sign, phrase, bare = match.groups()
        if bare is None:
            words = phrase.translate(_SPLIT).split()
            if words:
                parts.append(f'{sign}"{" ".join(words)}"')
            continue
        sign = "-" if bare.startswith("-") and len(bare) > 1 else ""
        words = bare[len(sign) :].translate(_SPLIT).split()
        if len(words) > 1:
            parts.append(f'{sign}"{" ".join(words)}"')
        elif words:
            parts.append(sign + words[0])
    return " ".join(parts)


def searchable(text: str) -> bool:
    """Whether ``text`` holds a word the search can look for (letters or digits)."""
    return any(char.isalnum() for char in text)


def to_utc(value: dt.datetime) -> dt.datetime:
    """An aware UTC datetime Postgres accepts (any offset, clamped to years 1..9999)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        return (dt.datetime.min if value.year < 5000 else dt.datetime.max).replace(tzinfo=dt.UTC)


def utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else to_utc(value)


class LogFilter(Schema):
    """What a list of lines is filtered by (also the GET /api/v1/logs query schema)."""

    model_config = ConfigDict(frozen=True)

    service: str = ""
    level: str = ""
    min_level: str = ""
    logger: str = ""
    q: str = ""
    thread_id: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def log_lines(filters: LogFilter) -> QuerySet[LogLine]:
    lines = LogLine.objects.all()
    if filters.service:
        lines = lines.filter(service=filters.service)
    if filters.level in LEVELS:
        lines = lines.filter(level=LEVELS[filters.level])
    if filters.min_level in LEVELS and LEVELS[filters.min_level] > LEVELS["debug"]:
        lines = lines.filter(level__gte=LEVELS[filters.min_level])
    if filters.logger:
        lines = lines.filter(logger=filters.logger)
    if filters.thread_id:
        lines = lines.filter(thread_id=filters.thread_id)
    if filters.q:
        lines = lines.filter(message__words=search_query(filters.q))
    if filters.since:
        lines = lines.filter(ts__gte=utc(filters.since))
    if filters.until:
        lines = lines.filter(ts__lt=utc(filters.until))
    return lines


def log_lines_page(
    filters: LogFilter, *, before: tuple[dt.datetime, int] | None = None, limit: int = 50
) -> tuple[list[LogLine], tuple[dt.datetime, int] | None]:
    """Up to ``limit`` lines newest first, older than the cursor ``before`` (ts, id);
    returns them and the cursor of the next (older) page, or None. One query, except for
    a text search (see ``_search_by_day``)."""
    lines = log_lines(filters.model_copy(update={"q": ""})).order_by("-ts", "-id")
    upper = utc(filters.until)
    if before is not None:
        ts, line_id = to_utc(before[0]), before[1]
        lines = lines.filter(ts__lte=ts).extra(
            where=["(logs_logline.ts, logs_logline.id) < (%s, %s)"], params=[ts, line_id]
        )
        upper = ts if upper is None else min(upper, ts)
    if filters.q:
        rows = _search_by_day(
            lines, search_query(filters.q), since=utc(filters.since), upper=upper, want=limit + 1
        )
    else:
        rows = list(lines[: limit + 1])
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, (rows[-1].ts, rows[-1].id)
    return rows, None


# A text search first reads this many of the day's newest lines in time order and
# filters them: a common word fills the page from those. The planner cannot tell that on
# its own: it takes words as independent, so "timed out" (two words always together)
# looks 60 times rarer than it is, and it would fetch every match of the day by the word
# index and sort them (150 ms at 10 M rows, seconds from a cold cache).
SEARCH_PROBE_LINES = 20_000


def _probe_words(query: str) -> list[str]:
    """ASCII words every match of ``query`` (search_query syntax) contains as a
    substring; none when it has "or". ILIKE on them keeps the probe from computing the
    message's words for all of its lines."""
    if re.search(r"(?i)(^|\s)or(\s|$)", query):
        return []
    words = []
    for sign, phrase, bare in _TERM.findall(query):
        if sign or (bare and bare.startswith("-")):
            continue
        for word in (phrase or bare).split():
            if word.isascii() and word.isalnum():
                words.append(word)
    return words


def _search_by_day(
    lines: QuerySet[LogLine],
    query: str,
    *,
    since: dt.datetime | None,
    upper: dt.datetime | None,
    want: int,
) -> list[LogLine]:
    """A text search, day partition by day partition, newest first, stopping as soon as
    the page is full: its cost follows the days it reads, not the table's size. Per day,
    at most two queries (the probe of the newest lines, then the word index); plus one
    catalog query."""
    patterns = [like_pattern(word) for word in _probe_words(query)]
    prefilter = "".join(" AND recent.message ILIKE %s" for _ in patterns)
    matches = MATCHES_SQL.format(message="recent.message", query="%s")
    rows: list[LogLine] = []
    for day in sorted(partitions_existing(), reverse=True):
        start, end = day_start(day), day_start(day + dt.timedelta(days=1))
        if upper is not None and start > upper:
            continue
        if since is not None and end <= since:
            break
        need = want - len(rows)
        day_lines = lines.filter(ts__gte=start, ts__lt=end)
        sql, params = day_lines[:SEARCH_PROBE_LINES].query.sql_with_params()
        found = list(
            LogLine.objects.raw(
                f"SELECT * FROM ({sql}) AS recent WHERE TRUE{prefilter} AND {matches} "
                "ORDER BY recent.ts DESC, recent.id DESC LIMIT %s",
                [*params, *patterns, query, need],
            )
        )
        if len(found) < need:  # not enough among the newest lines: ask the index
            found = list(day_lines.filter(message__words=query)[:need])
        rows += found
        if len(rows) >= want:
            break
    return rows


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def log_lines_after(filters: LogFilter, *, after_id: int, limit: int = 200) -> list[LogLine]:
    """Lines stored with an id above ``after_id`` (newest first). Ids are taken when a line
    is stored, not when it commits, so under concurrent ingestion this can miss a line;
    the exact tail is ``log_lines_since`` (kept for API callers of ``after_id``)."""
    return list(log_lines(filters).filter(id__gt=after_id).order_by("-id")[:limit])


# The tail's cursor is a Postgres snapshot (pg_current_snapshot() as text, e.g.
# "1020:1024:1021,1023"): which transactions had committed when the reader last looked.
# A line is new to the reader iff its storing transaction (txid) is not visible in that
# snapshot; it is shown once it is visible in the reader's current one. So no line is
# skipped however ingestion transactions interleave, and none is shown twice.
_SNAPSHOT = re.compile(r"^\d{1,20}:\d{1,20}:(\d{1,20}(,\d{1,20})*)?$")


def valid_tail_cursor(cursor: str) -> bool:
    return bool(_SNAPSHOT.match(cursor))


@contextlib.contextmanager
def consistent_reads() -> Iterator[None]:
    """The statements inside see one snapshot (REPEATABLE READ, read only), so a cursor
    taken with ``tail_cursor()`` matches exactly the lines read beside it. Inside an
    already open transaction (a test's) isolation can no longer change: there each
    statement has its own snapshot, and a line committed between the cursor and the read
    may be shown twice, never missed."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def tail_cursor() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_snapshot()::text")
        return str(cursor.fetchone()[0])


@dataclass
class TailPage:
    lines: list[LogLine]  # newest first
    cursor: str  # the next poll's cursor
    more: bool  # more new lines arrived than ``limit``: the oldest of them are not shown


def log_lines_since(filters: LogFilter, *, cursor: str, limit: int = 200) -> TailPage:
    """Lines committed since ``cursor`` (newest first, at most ``limit``) and the next
    cursor. Served by the (txid) index: only transactions at or after the cursor's xmin."""
    with consistent_reads():
        following = tail_cursor()
        lines = list(
            log_lines(filters)
            .extra(
                where=[
                    "txid >= pg_snapshot_xmin(%s::pg_snapshot)",
                    "NOT pg_visible_in_snapshot(txid, %s::pg_snapshot)",
                ],
                params=[cursor, cursor],
            )
            .order_by("-id")[: limit + 1]
        )
    return TailPage(lines[:limit], following, len(lines) > limit)


def log_streams() -> dict[str, list[str]]:
    """Services and loggers seen, for the filters' suggestions."""
    pairs = list(LogStream.objects.values_list("service", "logger")[:2000])
    return {
        "services": sorted({s for s, _ in pairs}),
        "loggers": sorted({lg for _, lg in pairs if lg}),
    }


def drop_counts(day: dt.date | None = None) -> list[dict[str, Any]]:
    """Lines accepted and dropped today, by service and reason (from Redis)."""
    try:
        raw: dict[bytes, bytes] = redis_connection().hgetall(  # type: ignore[assignment]
            drop_counts_key(day or clock.now().date())
        )
    except Exception:
        return []
    counts = []
    for field, value in raw.items():
        service, _, reason = field.decode().partition("|")
        counts.append({"service": service, "reason": reason, "count": int(value)})
    return sorted(counts, key=lambda c: (-c["count"], c["service"]))


def error_rate(*, minutes: int = 30) -> dict[str, Any]:
    """Error and critical lines per minute over the last ``minutes`` (one query through
    the (level, ts) index): the overview tile."""
    now = clock.now().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    start = now - dt.timedelta(minutes=minutes)
    rows = (
        LogLine.objects.filter(level__gte=LEVELS["error"], ts__gte=start, ts__lt=now)
        .annotate(minute=TruncMinute("ts"))
        .values("minute")
        .annotate(n=Count("id"))
        .order_by()
    )
    per_minute = {row["minute"]: row["n"] for row in rows}
    series = [per_minute.get(start + dt.timedelta(minutes=i), 0) for i in range(minutes)]
    last15 = sum(series[-15:])
    return {
        "series": series,
        "per_minute": last15 / 15,
        "last_15m": last15,
        "minutes": minutes,
    }
