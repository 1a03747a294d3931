from __future__ import annotations

import datetime as dt
import re

import pytest

from apps.logs.services import log_lines_ingest
from coreadmin.clock import clock as global_clock

pytestmark = pytest.mark.django_db


def ingest(n: int = 1, *, minutes_ago: float = 0, **fields) -> None:
    base = global_clock.now() - dt.timedelta(minutes=minutes_ago)
    records = []
    for i in range(n):
        line = {
            "ts": base - dt.timedelta(seconds=i),
            "level": "info",
            "logger": "scraper.fetch",
            "message": f"fetched page {i}",
            "service": "reddit",
            "thread_id": "",
            "context": {},
        }
        line.update(fields)
        records.append(line)
    log_lines_ingest(records=records)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr class="log-\w+">', html)


def test_the_logs_page_shows_lines_newest_first_with_badges_context_and_thread_links(
    viewer_client, clock
):
    ingest(message="a line from before", minutes_ago=5)
    ingest(
        level="error",
        message="parse failed",
        thread_id="thr-42",
        context={"url": "https://x.test/a", "exception": "Traceback...\nValueError: bad"},
    )
    html = viewer_client.get("/logs/").content.decode()
    assert html.index("parse failed") < html.index("a line from before")
    assert '<span class="badge badge-error">error</span>' in html
    assert '<span class="badge badge-info">info</span>' in html
    assert 'href="/tracing/threads/thr-42/"' in html
    assert '<pre class="log-traceback">Traceback...\nValueError: bad</pre>' in html
    assert "&quot;url&quot;: &quot;https://x.test/a&quot;" in html
    assert "<details>" in html


def test_filters_by_service_level_logger_and_text(viewer_client, clock):
    ingest(3)
    ingest(2, level="error", message="proxy timed out", minutes_ago=1)
    ingest(1, service="twitter", logger="tw.auth", message="token refreshed", minutes_ago=2)
    get = lambda **params: viewer_client.get("/logs/", params).content.decode()  # noqa: E731
    assert len(rows(get(level="error"))) == 2
    assert len(rows(get(service="twitter"))) == 1
    assert len(rows(get(logger="tw.auth"))) == 1
    html = get(q="TIMED OUT")
    assert len(rows(html)) == 2 and "proxy timed out" in html
    assert len(rows(get(q="100%_"))) == 0  # punctuation is no syntax
    assert len(rows(get(service="reddit", level="info"))) == 3


def test_a_search_without_any_word_is_ignored_and_says_so(viewer_client, clock):
    ingest(2)
    html = viewer_client.get("/logs/", {"q": "%%"}).content.decode()
    assert "Text search looks for words" in html and len(rows(html)) == 2
    html = viewer_client.get("/logs/", {"q": "1"}).content.decode()  # a short word is one
    assert "Text search looks for words" not in html and len(rows(html)) == 1


def test_filters_by_time_range(viewer_client, clock):
    ingest(1, message="just now")
    ingest(1, message="two hours ago", minutes_ago=120)
    ingest(1, message="yesterday", minutes_ago=60 * 24 + 5)
    html = viewer_client.get("/logs/", {"window": "1h"}).content.decode()
    assert "just now" in html and "two hours ago" not in html
    now = global_clock.now()
    html = viewer_client.get(
        "/logs/",
        {
            "since": (now - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S"),
            "until": (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
        },
    ).content.decode()
    assert "two hours ago" in html and "just now" not in html and "yesterday" not in html


def test_pages_go_back_in_time_by_keyset_without_overlap(viewer_client, settings, clock):
    settings.LOGS_PAGE_SIZE = 10
    ingest(25)
    seen: list[str] = []
    url = "/logs/?service=reddit"
    for _ in range(3):
        html = viewer_client.get(url).content.decode()
        seen += re.findall(r"fetched page (\d+)", html)
        older = re.search(r'href="(\?[^"]*before=[^"]+)"', html)
        if not older:
            break
        url = "/logs/" + older.group(1).replace("&amp;", "&")
    assert seen == [str(i) for i in range(25)]


def test_a_filter_change_renders_only_the_results(viewer_client, clock):
    ingest(1)
    html = viewer_client.get("/logs/?level=info", headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith('<div id="log-results">') and "<html" not in html


@pytest.mark.django_db(transaction=True)  # the tail is about committed transactions
def test_live_tail_asks_only_for_lines_committed_since_those_shown(
    viewer_client, clock, truncate_logs
):
    ingest(3)
    html = viewer_client.get("/logs/?tail=1&level=error").content.decode()
    poller = re.search(r'hx-get="(/logs/tail/\?[^"]+)"', html).group(1).replace("&amp;", "&")
    assert "cursor=" in poller and "level=error" in poller
    assert viewer_client.get(poller).status_code == 204  # nothing new yet
    ingest(1, message="new info")  # filtered out by level
    ingest(2, level="error", message="new error")
    response = viewer_client.get(poller)
    html = response.content.decode()
    assert response.status_code == 200
    assert len(rows(html)) == 2 and "new info" not in html and "fetched page" not in html
    assert html.lstrip().startswith('<tr id="log-tail"')
    again = re.search(r'hx-get="(/logs/tail/\?[^"]+)"', html).group(1).replace("&amp;", "&")
    assert again != poller
    assert viewer_client.get(again).status_code == 204
    assert viewer_client.get("/logs/tail/?cursor=drop+table").status_code == 400


def test_the_page_query_count_does_not_grow_with_lines(
    viewer_client, clock, django_assert_max_num_queries
):
    ingest(3, context={"a": 1})
    viewer_client.get("/logs/?tail=1")
    with django_assert_max_num_queries(10) as few:
        viewer_client.get("/logs/?tail=1")
    ingest(120, context={"a": 1}, thread_id="t")
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = viewer_client.get("/logs/?tail=1").content.decode()
    assert len(rows(html)) == 50


def test_the_overview_tile_shows_the_error_log_rate(viewer_client, clock):
    ingest(30, level="error", minutes_ago=1)
    ingest(5, level="critical", minutes_ago=20)
    ingest(50, level="info")
    html = viewer_client.get("/tiles/logs-errors/").content.decode()
    assert "Error-log rate" in html
    assert "2.0" in html and "30 errors or worse in the last 15 min" in html
    assert '<path class="line" d="M' in html


def test_the_logs_pages_need_a_login(client):
    assert client.get("/logs/").status_code == 302
    assert client.get("/logs/tail/").status_code == 302


def test_a_text_search_goes_day_by_day_newest_first_and_stops_when_the_page_is_full(
    clock, django_assert_num_queries
):
    from apps.logs.selectors import LogFilter, log_lines_page

    for days_ago in (0, 1, 2):
        ingest(3, minutes_ago=days_ago * 24 * 60, message=f"needle day {days_ago}")
    ingest(2, message="hay")
    with django_assert_num_queries(2) as queries:  # catalog + today's partition only
        lines, older = log_lines_page(LogFilter(q="needle"), limit=2)
    probe = queries.captured_queries[1]["sql"]  # the newest lines, prefiltered by ILIKE
    assert "AS recent" in probe and "ILIKE '%needle%'" in probe, probe
    assert [line.message for line in lines] == ["needle day 0"] * 2 and older
    seen, cursor = [], None
    for _ in range(6):
        lines, cursor = log_lines_page(LogFilter(q="needle"), before=cursor, limit=2)
        seen += [line.message for line in lines]
        if cursor is None:
            break
    assert seen == ["needle day 0"] * 3 + ["needle day 1"] * 3 + ["needle day 2"] * 3
    since = global_clock.now() - dt.timedelta(hours=30)
    lines, _ = log_lines_page(LogFilter(q="needle", since=since), limit=50)
    assert len(lines) == 6


def test_text_search_matches_whole_words_phrases_url_parts_and_exclusions(clock):
    from apps.logs.selectors import LogFilter, log_lines_page

    messages = [
        "GET https://www.reddit.com/r/python/comments/abc took 88 ms",
        "proxy Timed Out after 30 s",
        "out of time: timed retry",
        "scraper.fetch.worker restarted",
        "timestamp parse error",
    ]
    for i, message in enumerate(messages):
        ingest(message=message, minutes_ago=i)

    def found(q: str) -> list[int]:
        lines, _ = log_lines_page(LogFilter(q=q), limit=50)
        return sorted(messages.index(line.message) for line in lines)

    assert found("timed out") == [1, 2]  # every word, any order, any case
    assert found('"timed out"') == [1]  # a quoted phrase: in that order
    assert found("time") == [2]  # words match whole: not "timestamp", not "Timed"
    assert found("reddit.com/r/python") == [0]  # a URL is searched by its parts, in order
    assert found("python/r") == []
    assert found("reddit") == [0] and found("comments abc") == [0]
    assert found("scraper.fetch") == [3]  # dotted names too
    assert found("timed -proxy") == [2]
    assert found("restarted or parse") == [3, 4]


def test_the_search_query_is_served_by_the_word_index_of_every_partition(clock):
    from django.db import connection

    from apps.logs.selectors import LogFilter, log_lines

    ingest(message="a needle", minutes_ago=0)
    ingest(message="a needle", minutes_ago=3 * 24 * 60)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = log_lines(LogFilter(q="needle")).explain()
    day_scans = re.findall(r"Bitmap Index Scan on (\w+)", plan)
    assert len(day_scans) == 2 and all("search_vector" in name for name in day_scans), plan


def test_a_rare_word_missed_by_the_probe_is_found_through_the_index(clock, monkeypatch):
    from apps.logs import selectors

    monkeypatch.setattr(selectors, "SEARCH_PROBE_LINES", 3)
    ingest(1, minutes_ago=10, message="rare needle")
    ingest(5, message="hay")  # the 3 newest lines of the day hold no needle
    lines, older = selectors.log_lines_page(selectors.LogFilter(q="needle"), limit=5)
    assert [line.message for line in lines] == ["rare needle"] and older is None


def test_the_probe_prefilters_only_on_words_every_match_holds():
    from apps.logs.selectors import _probe_words, search_query

    assert _probe_words(search_query("timed out")) == ["timed", "out"]
    assert _probe_words(search_query('"read timed" -proxy reddit.com/r')) == [
        "read",
        "timed",
        "reddit",
        "com",
        "r",
    ]
    assert _probe_words(search_query("timed or out")) == []
    assert _probe_words(search_query("error:ECONNRESET café")) == []  # split by Postgres
